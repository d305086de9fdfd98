"""A cache workload live: real redis-servers set to evict (allkeys-lfu, a small maxmemory)
under a cache-like load, sampled and checked in simulated time through the fake Heroku.

A cache with a good hit rate sits full and evicting by design and stays on its plan; one
whose working set outgrows it (hit rate under min-hit-rate while evicting) goes up. The same
good cache registered as a queue goes up at once (every eviction is data lost for a queue),
which shows the load really evicts."""

import random
from datetime import datetime, timezone as dt_timezone

import pytest


from logs.models import MetricLog, ScalingAction
from scaling.models import RedisInstance
from tests.factories import make_instance
from tests.helpers import alerts_delivered
from tests.scaling.live import LiveLoop, reader  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)


class CacheLoad:
    """Get-or-set over a key space, as an application cache does: a read that misses
    fetches the value (elsewhere) and stores it. ``hot_keys`` are read; ``cold_writes`` one-off
    keys a tick are written and never read again (they fill memory and get evicted)."""

    def __init__(self, client, *, hot_keys, reads, cold_writes=0, value_size=1024, seed=1):
        self.client, self.hot_keys, self.reads, self.cold_writes = client, hot_keys, reads, cold_writes
        self.value = b"v" * value_size
        self.random, self.cold = random.Random(seed), 0

    def tick(self):
        keys = [f"hot:{self.random.randrange(self.hot_keys)}" for _ in range(self.reads)]
        values = self.client.mget(keys)
        with self.client.pipeline(transaction=False) as pipe:
            for key, value in zip(keys, values):
                if value is None:
                    pipe.set(key, self.value)
            for _ in range(self.cold_writes):
                self.cold += 1
                pipe.set(f"cold:{self.cold}", b"c" * 4096)
            pipe.execute()


def _watched(heroku, server, *, name, **fields):
    addon = heroku.add_redis_addon(f"{name}-app", plan="heroku-redis:premium-0", url=server.url)
    return make_instance(name=name, app_name=f"{name}-app", plan="heroku-redis:premium-0",
                         min_plan="heroku-redis:mini", max_plan="heroku-redis:premium-5",
                         redis_url=server.url, addon_id=addon["id"], addon_name=addon["name"], **fields)


def _lru_cache(redis_server_factory):
    # LFU, not LRU: simulated time runs in milliseconds, under Redis's 1 s LRU clock, so LRU
    # would evict at random; LFU (counting every access) keeps the keys that are read.
    # maxmemory is premium-0's 50 MiB, as Heroku sets it.
    return redis_server_factory(maxmemory="50mb", extra_args=[
        "--maxmemory-policy", "allkeys-lfu", "--lfu-log-factor", "0", "--maxmemory-samples", "10"])


def _hit_rate_and_evictions(instance):
    logs = list(MetricLog.objects.filter(instance=instance).order_by("collected_at"))
    first, last = logs[len(logs) // 2], logs[-1]  # after warm-up
    hits, misses = last.keyspace_hits - first.keyspace_hits, last.keyspace_misses - first.keyspace_misses
    return 100 * hits / (hits + misses), last.evicted_keys - first.evicted_keys


def test_a_cache_with_a_good_hit_rate_stays_on_its_plan_while_it_evicts(plans, heroku, redis_server_factory, reader):
    server = _lru_cache(redis_server_factory)
    instance = _watched(heroku, server, name="cache", workload="cache")
    # 4 MB of one-off keys a tick fill the 50 MB in about six minutes; then it evicts them.
    load = CacheLoad(server.client(), hot_keys=200, reads=400, cold_writes=1000)

    loop = LiveLoop(instance, reader, start=T0, tick=load.tick).run(25 * 60)

    hit_rate, evicted = _hit_rate_and_evictions(instance)
    assert evicted > 1000 and hit_rate > 95, (evicted, hit_rate)
    assert heroku.count("PATCH") == 0
    assert not ScalingAction.objects.filter(instance=instance).exists()
    assert not [m.subject for m in alerts_delivered() if "over threshold" in m.subject]  # full memory is no breach
    assert loop.plan == "heroku-redis:premium-0"
    assert RedisInstance.objects.get(pk=instance.pk).maxmemory_policy == "allkeys-lfu"
    assert RedisInstance.objects.get(pk=instance.pk).workload_mismatch == ""


def test_the_same_load_on_a_queue_is_data_dropped_and_goes_up(plans, heroku, redis_server_factory, reader):
    server = _lru_cache(redis_server_factory)
    instance = _watched(heroku, server, name="queue", workload="queue")
    load = CacheLoad(server.client(), hot_keys=200, reads=400, cold_writes=1000)

    loop = LiveLoop(instance, reader, start=T0, tick=load.tick).run(9 * 60)

    assert heroku.count("PATCH") >= 1 and loop.plan != "heroku-redis:premium-0"
    assert ScalingAction.objects.filter(instance=instance, direction="up").first().reason.startswith(
        "data is being dropped: evicted keys rose")
    assert "evicts keys, but the workload is queue" in RedisInstance.objects.get(pk=instance.pk).workload_mismatch


def test_a_cache_whose_working_set_outgrows_it_goes_up_on_its_hit_rate(plans, heroku, redis_server_factory, reader):
    server = _lru_cache(redis_server_factory)
    instance = _watched(heroku, server, name="cache", workload="cache", min_hit_rate=90)
    # 20,000 keys of 4 KiB (80 MB) read at random through a 50 MB cache: many reads miss.
    load = CacheLoad(server.client(), hot_keys=20_000, reads=3000, value_size=4096)

    loop = LiveLoop(instance, reader, start=T0, tick=load.tick).run(7 * 60)

    # The fake Heroku does not grow the server, so its hit rate stays poor and it keeps
    # climbing: the first change is the one this load decides.
    assert heroku.count("PATCH") >= 1
    action = ScalingAction.objects.filter(instance=instance).order_by("created_at").first()
    assert action.direction == "up" and action.to_plan.plan_name != "heroku-redis:premium-0"
    assert "cache hit rate" in action.reason and "minimum 90%" in action.reason and "keys were evicted" in action.reason
    assert "cache: cache hit rate under 90% while evicting on premium-0" in [m.subject.split("] ")[-1] for m in alerts_delivered()]
    assert loop.plan != "heroku-redis:premium-0"

