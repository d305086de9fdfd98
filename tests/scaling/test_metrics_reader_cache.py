"""The reader against a real redis-server used as a cache: an evicting policy, a small
maxmemory, hits, misses and evictions, as the cache workload (DESIGN section 9) reads them."""

from __future__ import annotations

import pytest

from scaling.metrics import RedisInfo, RedisMetricsReader


@pytest.fixture
def reader():
    reader = RedisMetricsReader(connect_timeout=2.0, read_timeout=2.0)
    yield reader
    reader.close_all()


def test_reader_reports_hits_misses_evictions_and_the_eviction_policy_of_an_lru_cache(redis_server_factory, reader):
    server = redis_server_factory(maxmemory="2mb", extra_args=["--maxmemory-policy", "allkeys-lru"])
    client = server.client()
    value = b"x" * 1024
    for i in range(4000):  # 4 MB of values into 2 MB: the oldest are evicted
        client.set(f"key:{i}", value)
    # The newest keys are kept, the oldest mostly evicted (LRU is approximate: count each).
    found = [client.get(f"key:{i}") is not None for i in [*range(3990, 4000), *range(0, 10)]]
    hits, misses = found.count(True), found.count(False)

    info = reader.read("cache", server.url)

    assert info.maxmemory_policy == "allkeys-lru"
    assert info.evicted_keys > 0
    assert (info.keyspace_hits, info.keyspace_misses) == (hits, misses)
    assert misses > 0
    assert not [w for w in info.warnings if "keyspace" in w or "policy" in w]


def test_reader_reports_noeviction_for_a_queue_server(redis_server_factory, reader):
    server = redis_server_factory(extra_args=["--maxmemory-policy", "noeviction"])
    info = reader.read("queue", server.url)
    assert info.maxmemory_policy == "noeviction"
    assert (info.keyspace_hits, info.keyspace_misses) == (0, 0)


@pytest.mark.parametrize(
    "line, warning",
    [
        ("maxmemory_policy:ALLKEYS LRU;rm -rf", "maxmemory_policy: not a policy name"),
        ("keyspace_hits:-5", "keyspace_hits: negative"),
    ],
)
def test_a_garbled_policy_or_hit_counter_is_a_warning_and_the_rest_is_kept(line, warning):
    info = RedisInfo.from_info_text(f"used_memory:100\r\nconnected_clients:2\r\nkeyspace_misses:7\r\n{line}\r\n")
    assert info.used_memory == 100 and info.keyspace_misses == 7
    assert any(w.startswith(warning) for w in info.warnings)
    assert info.maxmemory_policy is None or info.maxmemory_policy == "allkeys-lru"
