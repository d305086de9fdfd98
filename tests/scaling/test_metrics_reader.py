"""The Redis metrics reader against real redis-server processes (and a few fake servers
that speak broken protocol or never answer, which a real server will not do on demand)."""

from __future__ import annotations

import os
import pickle
import socket
import threading
import time
import traceback

import pytest

from scaling.metrics import MetricsReadError, RedisInfo, RedisMetricsReader
from standins.fake_redis import FakeServer, bulk
from standins.redis_servers import redis_tls_support

slow = pytest.mark.slow

SECRET = "correct-horse-battery-staple-0xC0FFEE"
WRONG = "wrong-password-Tr0ub4dor&3"


@pytest.fixture
def reader():
    reader = RedisMetricsReader(connect_timeout=2.0, read_timeout=2.0)
    yield reader
    reader.close_all()


@pytest.fixture
def quick_reader():
    reader = RedisMetricsReader(connect_timeout=0.5, read_timeout=0.5)
    yield reader
    reader.close_all()


def other_connections(admin) -> list[dict]:
    """The server's client connections other than the admin's own."""
    own = admin.client_id()
    return [client for client in admin.client_list() if int(client["id"]) != own]


def wait_until(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    texts = [str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))]
    for secret in secrets:
        for text in texts:
            assert secret not in text


# ---------------------------------------------------------------------------------------
# Fake servers (standins/fake_redis.py)
# ---------------------------------------------------------------------------------------
@pytest.fixture
def fake_server():
    servers = []

    def start(respond=None, backlog=16, trickle=None):
        server = FakeServer(respond, backlog, trickle=trickle)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# ---------------------------------------------------------------------------------------
# Figures from a real server
# ---------------------------------------------------------------------------------------
@slow
def test_used_memory_grows_by_about_the_size_of_the_values_written(redis_server_factory, reader):
    server = redis_server_factory()
    before = reader.read("q", server.url).used_memory
    written = 50 * 100_000  # 5 MB of values
    with server.client() as admin:
        pipe = admin.pipeline(transaction=False)
        for i in range(50):
            pipe.set(f"job:{i}", b"x" * 100_000)
        pipe.execute()

    after = reader.read("q", server.url).used_memory

    assert written <= after - before <= written * 1.5


@slow
def test_connected_clients_counts_every_open_client_connection(redis_server_factory, reader):
    server = redis_server_factory()
    extra = [server.client(single_connection_client=True) for _ in range(6)]
    try:
        for client in extra:
            client.ping()
        info = reader.read("q", server.url)
    finally:
        for client in extra:
            client.close()

    assert info.connected_clients >= len(extra) + 1


@slow
def test_maxmemory_and_maxclients_are_read_from_the_server(redis_server_factory, reader):
    server = redis_server_factory(maxmemory="64mb", maxclients=50)

    info = reader.read("q", server.url)

    assert info.maxmemory == 64 * 1024 * 1024
    assert info.maxclients == 50
    assert info.evicted_keys == 0
    assert info.rejected_connections == 0
    assert info.ops_per_sec >= 0
    assert info.warnings == ()


@slow
def test_evictions_are_counted_when_a_full_server_evicts_keys(redis_server_factory, reader):
    server = redis_server_factory(maxmemory="8mb", extra_args=("--maxmemory-policy", "allkeys-lru"))
    assert reader.read("q", server.url).evicted_keys == 0
    with server.client() as admin:
        for i in range(200):  # 20 MB into 8 MB
            admin.set(f"job:{i}", b"x" * 100_000)

    info = reader.read("q", server.url)

    assert info.evicted_keys > 0
    assert info.used_memory <= info.maxmemory * 1.1


@slow
def test_rejected_connections_are_counted_when_maxclients_is_exceeded(redis_server_factory, reader):
    server = redis_server_factory(maxclients=3)
    reader.read("q", server.url)  # the reader's own connection is one of the three
    sockets, refused = [], 0
    try:
        for _ in range(6):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=2)
            sockets.append(sock)
            sock.sendall(b"PING\r\n")
            if b"max number of clients reached" in sock.recv(200):
                refused += 1

        info = reader.read("q", server.url)
    finally:
        for sock in sockets:
            sock.close()

    assert refused >= 1
    assert info.rejected_connections == refused
    assert info.connected_clients == 3


@slow
def test_a_new_connection_to_a_full_server_is_refused_as_server_full_not_as_a_stale_url(redis_server_factory, reader):
    server = redis_server_factory(maxclients=2)
    with server.client(single_connection_client=True) as first, server.client(single_connection_client=True) as second:
        first.ping()
        second.ping()

        with pytest.raises(MetricsReadError) as caught:
            reader.read("q", server.url)

    error = caught.value
    assert error.kind == "refused"
    assert error.server_full
    assert not error.needs_refresh
    assert f"127.0.0.1:{server.port}" in str(error) and "maxclients" in str(error)


# ---------------------------------------------------------------------------------------
# Connections kept, replaced, closed
# ---------------------------------------------------------------------------------------
@slow
def test_one_connection_is_kept_between_reads(redis_server_factory, reader):
    server = redis_server_factory()
    with server.client() as admin:
        reader.read("q", server.url)
        first = other_connections(admin)
        reader.read("q", server.url)
        second = other_connections(admin)
        connections_received = admin.info("stats")["total_connections_received"]
        reader.read("q", server.url)
        assert admin.info("stats")["total_connections_received"] == connections_received

    assert len(first) == 1
    assert [c["id"] for c in second] == [first[0]["id"]]
    assert second[0]["cmd"] == "info"


@slow
def test_a_changed_url_for_the_same_key_opens_a_new_connection_and_closes_the_old_one(redis_server_factory, reader):
    old, new = redis_server_factory(), redis_server_factory()
    with old.client() as old_admin, new.client() as new_admin:
        reader.read("q", old.url)
        assert len(other_connections(old_admin)) == 1

        reader.read("q", new.url)

        assert len(other_connections(new_admin)) == 1
        assert wait_until(lambda: other_connections(old_admin) == [])


@slow
def test_a_different_url_spelling_for_the_same_server_also_reconnects(redis_server_factory, reader):
    server = redis_server_factory()
    with server.client() as admin:
        reader.read("q", server.url)
        first = other_connections(admin)[0]["id"]
        reader.read("q", server.url + "/0")
        assert wait_until(lambda: [c["id"] for c in other_connections(admin)] not in ([first], []))


@slow
def test_a_connection_the_server_closed_while_idle_is_replaced_without_a_failed_read(redis_server_factory, reader):
    # Heroku Redis closes clients idle for longer than its `timeout` (300 s by default).
    server = redis_server_factory(extra_args=("--timeout", "1"))
    with server.client() as admin:
        reader.read("q", server.url)
        first = other_connections(admin)[0]["id"]
        admin.ping()
        assert wait_until(lambda: other_connections(admin) == [], timeout=5)

        assert reader.read("q", server.url).used_memory > 0
        assert [c["id"] for c in other_connections(admin)] not in ([first], [])


@slow
def test_close_and_close_all_drop_the_kept_connections(redis_server_factory, reader):
    server = redis_server_factory()
    with server.client() as admin:
        for key in ("a", "b", "c"):
            reader.read(key, server.url)
        assert len(other_connections(admin)) == 3

        reader.close("a")
        assert wait_until(lambda: len(other_connections(admin)) == 2)
        reader.close("never-read")
        reader.close_all()
        assert wait_until(lambda: other_connections(admin) == [])


@slow
def test_reads_from_many_threads_share_one_connection_per_key(redis_server_factory, reader):
    server = redis_server_factory()
    results, errors = [], []

    def work(key):
        for _ in range(5):
            try:
                results.append(reader.read(key, server.url))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"key-{i % 3}",)) for i in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert len(results) == 45
    with server.client() as admin:
        assert len(other_connections(admin)) == 3


@slow
def test_a_forked_worker_reads_over_its_own_connection_and_leaves_the_parents_intact(redis_server_factory, reader):
    # Celery prefork: a reader made before the fork must not share its socket.
    server = redis_server_factory()
    with server.client() as admin:
        reader.read("q", server.url)
        parent_id = other_connections(admin)[0]["id"]
        received = admin.info("stats")["total_connections_received"]

        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                reader.read("q", server.url)
                reader.read("q", server.url)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)

        assert os.waitstatus_to_exitcode(status) == 0
        assert admin.info("stats")["total_connections_received"] == received + 1  # the child's own
        assert reader.read("q", server.url).used_memory > 0
        assert [c["id"] for c in other_connections(admin)] == [parent_id]


# ---------------------------------------------------------------------------------------
# The server goes away and comes back
# ---------------------------------------------------------------------------------------
@slow
def test_a_stopped_server_is_refused_and_the_same_reader_reconnects_when_it_is_back(redis_server_factory, reader):
    server = redis_server_factory()
    reader.read("q", server.url)
    server.stop()

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", server.url)
    assert caught.value.kind == "refused"
    assert caught.value.needs_refresh
    assert f"127.0.0.1:{server.port}" in str(caught.value)

    server.start()
    assert reader.read("q", server.url).connected_clients >= 1


@slow
def test_a_server_restarted_between_samples_is_read_without_an_error(redis_server_factory, reader):
    server = redis_server_factory()
    reader.read("q", server.url)
    server.stop()
    server.start()

    assert reader.read("q", server.url).used_memory > 0


# ---------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------
@slow
def test_a_wrong_password_is_an_auth_error_that_never_shows_a_password(redis_server_factory, reader):
    server = redis_server_factory(password=SECRET)

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", server.url_with_password(WRONG))

    error = caught.value
    assert error.kind == "auth"
    assert error.needs_refresh
    assert f"127.0.0.1:{server.port}" in str(error)
    assert "\n" not in str(error)
    assert_no_secret(error, SECRET, WRONG)


@slow
def test_a_missing_password_is_an_auth_error(redis_server_factory, reader):
    server = redis_server_factory(password=SECRET)

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", server.url_with_password(None))

    assert caught.value.kind == "auth"
    assert "requires a password and the URL has none" in str(caught.value)


@slow
def test_the_right_password_reads_and_the_legacy_heroku_user_h_is_accepted(redis_server_factory, reader):
    server = redis_server_factory(password=SECRET)

    assert reader.read("q", server.url).used_memory > 0
    assert reader.read("legacy", f"redis://h:{SECRET}@127.0.0.1:{server.port}").used_memory > 0


@slow
def test_after_a_password_rotation_the_old_url_fails_on_reconnect_and_the_new_one_works(redis_server_factory, reader):
    server = redis_server_factory(password=SECRET)
    old_url = server.url
    reader.read("q", old_url)
    server.set_password("rotated-" + SECRET)

    reader.read("q", old_url)  # the kept connection stays logged in: Redis does not log it out
    reader.close("q")
    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", old_url)
    assert caught.value.kind == "auth" and caught.value.needs_refresh

    assert reader.read("q", server.url).used_memory > 0


# ---------------------------------------------------------------------------------------
# Slow and silent servers
# ---------------------------------------------------------------------------------------
@slow
def test_a_busy_server_gives_a_timeout_within_the_read_timeout_then_reads_again(redis_server_factory, quick_reader):
    server = redis_server_factory(extra_args=("--enable-debug-command", "yes"))
    quick_reader.read("q", server.url)
    admin = server.client()
    sleeper = threading.Thread(target=admin.execute_command, args=("DEBUG", "SLEEP", "1.5"))
    sleeper.start()
    try:
        time.sleep(0.2)
        started = time.monotonic()
        with pytest.raises(MetricsReadError) as caught:
            quick_reader.read("q", server.url)
        elapsed = time.monotonic() - started
    finally:
        sleeper.join(10)
        admin.close()

    assert caught.value.kind == "timeout"
    assert str(caught.value) == f"timeout: no INFO reply from 127.0.0.1:{server.port} within 0.5 s"
    assert not caught.value.needs_refresh
    assert elapsed < 1.5
    assert quick_reader.read("q", server.url).used_memory > 0


def test_a_server_that_accepts_and_never_answers_gives_a_timeout(fake_server, quick_reader):
    server = fake_server(respond=None)
    started = time.monotonic()

    with pytest.raises(MetricsReadError) as caught:
        quick_reader.read("q", server.url)

    assert caught.value.kind == "timeout"
    assert not caught.value.during_connect
    assert time.monotonic() - started < 1.5


def test_a_host_that_never_completes_the_connection_is_a_connect_timeout_that_needs_refresh(quick_reader):
    # A listener whose accept queue is full drops further SYNs: connect() hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(MetricsReadError) as caught:
            quick_reader.read("q", f"redis://127.0.0.1:{port}")
        elapsed = time.monotonic() - started
    finally:
        for filler in fillers:
            filler.close()
        listener.close()

    assert caught.value.kind == "timeout"
    assert caught.value.during_connect and caught.value.needs_refresh
    assert str(caught.value) == f"timeout: could not connect to 127.0.0.1:{port} within 0.5 s"
    assert elapsed < 1.5


INFO_TEXT = "# Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\n# Clients\r\nconnected_clients:3\r\nmaxclients:10000\r\n"


def test_a_server_trickling_its_info_reply_is_cut_at_the_deadline_as_a_slow_read(fake_server, quick_reader):
    # A byte every 0.1 s never trips the per-read socket timeout (0.5 s); only a deadline for
    # the whole exchange (connect + read timeouts: 1 s) stops it, long before the last byte.
    server = fake_server(lambda args: bulk(INFO_TEXT), trickle=0.1)

    with pytest.raises(MetricsReadError) as caught:
        quick_reader.read("q", server.url)

    assert caught.value.kind == "slow"
    assert str(caught.value) == (
        f"slow: 127.0.0.1:{server.port} did not finish the INFO exchange within its 1 s deadline"
    )
    assert not caught.value.needs_refresh
    assert wait_until(server.cut_off.is_set)
    assert server.sent < len(bulk(INFO_TEXT))


def test_a_server_trickling_its_login_reply_is_cut_at_the_same_deadline(fake_server, quick_reader):
    server = fake_server(lambda args: b"+OK\r\n" if args[0].upper() == b"AUTH" else bulk(INFO_TEXT), trickle=0.3)

    with pytest.raises(MetricsReadError) as caught:
        quick_reader.read("q", f"redis://:pw@127.0.0.1:{server.port}")

    assert caught.value.kind == "slow"
    assert caught.value.during_connect


def test_a_kept_connection_gets_a_fresh_deadline_for_each_read(fake_server, quick_reader):
    server = fake_server(lambda args: bulk(INFO_TEXT))

    for _ in range(3):
        assert quick_reader.read("q", server.url).used_memory == 1048576
        time.sleep(0.6)  # longer than the read timeout between reads, well within each deadline

    assert len(server.connections) == 1


def test_an_info_reply_larger_than_the_cap_is_refused_without_reading_it_whole(fake_server, reader):
    chunk = b"x" * (1 << 20)
    total = 400 * len(chunk)

    def huge(args):
        yield b"$%d\r\n" % total
        for _ in range(400):
            yield chunk

    server = fake_server(huge)

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", server.url)

    assert caught.value.kind == "too_large"
    assert str(caught.value) == f"too_large: the INFO reply from 127.0.0.1:{server.port} is over 1 MiB"
    assert wait_until(server.cut_off.is_set)
    # What the kernel's buffers held when we hung up, not the 400 MiB offered.
    assert server.sent < 32 * len(chunk)


def test_an_info_reply_announcing_a_huge_length_is_refused(fake_server, reader):
    server = fake_server(lambda args: b"$400000000\r\n" + b"x" * (2 << 20))

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", server.url)

    assert caught.value.kind == "too_large"


def test_a_huge_reply_to_the_login_is_refused_by_the_same_cap(fake_server, reader):
    def respond(args):
        if args[0].upper() == b"AUTH":
            return [b"$%d\r\n" % (400 << 20)] + [b"x" * (1 << 20)] * 400
        return bulk(INFO_TEXT)

    server = fake_server(respond)

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", f"redis://:pw@127.0.0.1:{server.port}")

    assert caught.value.kind == "too_large" and caught.value.during_connect
    assert wait_until(server.cut_off.is_set)
    assert server.sent < 32 << 20


def test_a_reply_just_under_the_cap_is_read(fake_server, reader):
    padding = "# Padding\r\n" + "".join(f"pad{i}:{'y' * 80}\r\n" for i in range(10000))  # ~ 900 KiB
    server = fake_server(lambda args: bulk(INFO_TEXT + padding))

    assert reader.read("q", server.url).connected_clients == 3


# ---------------------------------------------------------------------------------------
# Odd replies
# ---------------------------------------------------------------------------------------
def test_odd_and_missing_info_fields_are_tolerated_with_warnings(fake_server, reader):
    text = "# Memory\r\nused_memory:2048\r\nmaxmemory:-1\r\n# Clients\r\nconnected_clients:7\r\nmaxclients:lots\r\n"
    server = fake_server(lambda args: bulk(text))

    info = reader.read("q", server.url)

    assert info.connected_clients == 7 and info.used_memory == 2048
    assert info.maxclients is None and info.maxmemory is None and info.evicted_keys is None
    assert "maxclients: not a whole number ('lots')" in info.warnings
    assert "maxmemory: negative (-1)" in info.warnings
    assert "evicted_keys: missing" in info.warnings
    assert "instantaneous_ops_per_sec: missing" in info.warnings


def test_an_info_reply_with_nothing_usable_is_a_failed_read(fake_server, reader):
    server = fake_server(lambda args: bulk("# Memory\r\nused_memory:lots\r\nmaxmemory:0\r\n"))

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", server.url)

    assert caught.value.kind == "incomplete"
    assert "used_memory" in str(caught.value)
    assert not caught.value.needs_refresh


@pytest.mark.parametrize("text, missing", [
    ("used_memory:abc\r\nconnected_clients:7\r\n", "used_memory: not a whole number ('abc')"),
    ("used_memory:1024\r\n", "connected_clients: missing"),
    ("used_memory:1024\r\nconnected_clients:99999999999\r\n", "connected_clients: out of range (99999999999)"),
])
def test_an_info_reply_without_a_readable_used_memory_or_connected_clients_is_an_incomplete_read(
    fake_server, reader, text, missing
):
    server = fake_server(lambda args: bulk(text))

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", server.url)

    assert caught.value.kind == "incomplete"
    assert missing in str(caught.value)


def test_a_server_speaking_garbage_is_a_protocol_error(fake_server, reader):
    server = fake_server(lambda args: b"HTTP/1.1 400 Bad Request\r\n\r\n")

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", server.url)

    assert caught.value.kind == "protocol"
    assert f"127.0.0.1:{server.port}" in str(caught.value)


def test_an_info_reply_that_is_not_text_is_a_protocol_error(fake_server, reader):
    server = fake_server(lambda args: b":5\r\n")

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", server.url)

    assert caught.value.kind == "protocol"


def test_a_server_that_refuses_several_info_sections_is_read_with_plain_info(fake_server, reader):
    full = "# Memory\r\nused_memory:1000\r\n# Clients\r\nconnected_clients:3\r\n# Stats\r\nevicted_keys:0\r\n"

    def respond(args):
        return b"-ERR syntax error\r\n" if len(args) > 2 else bulk(full)

    server = fake_server(respond)

    first = reader.read("q", server.url)
    second = reader.read("q", server.url)

    assert first.used_memory == second.used_memory == 1000
    assert server.commands == [[b"INFO", b"memory", b"clients", b"stats"], [b"INFO"], [b"INFO"]]


@slow
def test_a_real_redis_7_answers_info_with_several_sections_in_one_round_trip(redis_server_factory, reader):
    server = redis_server_factory()
    with server.client() as admin:
        reader.read("q", server.url)
        calls = admin.info("commandstats").get("cmdstat_info", {}).get("calls")

    assert calls == 1


def test_redis_info_parses_a_real_looking_reply():
    text = (
        "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:26214400\r\n"
        "maxmemory_policy:noeviction\r\n\r\n# Clients\r\nconnected_clients:12\r\nmaxclients:40\r\n\r\n"
        "# Stats\r\ninstantaneous_ops_per_sec:250\r\nrejected_connections:2\r\nevicted_keys:17\r\n"
        "keyspace_hits:900\r\nkeyspace_misses:100\r\n"
    )

    assert RedisInfo.from_info_text(text.encode()) == RedisInfo(
        used_memory=1048576,
        maxmemory=26214400,
        connected_clients=12,
        maxclients=40,
        evicted_keys=17,
        rejected_connections=2,
        ops_per_sec=250,
        keyspace_hits=900,
        keyspace_misses=100,
        maxmemory_policy="noeviction",
        warnings=(),
    )


# ---------------------------------------------------------------------------------------
# Names, URLs, TLS
# ---------------------------------------------------------------------------------------
def test_an_unresolvable_host_is_a_dns_error_that_needs_refresh(reader):
    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", f"redis://:{SECRET}@no-such-host.invalid:6379")

    assert caught.value.kind == "dns"
    assert caught.value.needs_refresh
    assert "no-such-host.invalid" in str(caught.value)
    assert_no_secret(caught.value, SECRET)


@pytest.mark.parametrize(
    "url",
    [
        f"http://:{SECRET}@example.com:6379",
        f"redis://:{SECRET}@127.0.0.1:port",
        f"redis://:{SECRET}@:6379",
        f"redis://:{SECRET}@127.0.0.1:6379/0?socket_timeout=soon",
        f"{SECRET}",
        "",
    ],
    ids=["http-scheme", "bad-port", "no-host", "bad-query", "bare-password", "empty"],
)
def test_a_url_redis_py_cannot_use_is_a_bad_url_error_without_the_password(reader, url):
    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", url)

    assert caught.value.kind == "bad_url"
    assert caught.value.needs_refresh
    assert_no_secret(caught.value, SECRET)


@slow
def test_rediss_reads_a_tls_server_with_a_self_signed_certificate(redis_server_factory, reader):
    supported, reason = redis_tls_support()
    if not supported:
        pytest.skip(reason)
    server = redis_server_factory(tls=True, password=SECRET)
    assert server.url.startswith("rediss://")

    first = reader.read("q", server.url)
    second = reader.read("q", server.url)

    assert first.used_memory > 0 and second.connected_clients >= 1


@slow
def test_rediss_to_a_plain_server_is_a_tls_error(redis_server_factory, quick_reader):
    server = redis_server_factory()

    with pytest.raises(MetricsReadError) as caught:
        quick_reader.read("q", server.url.replace("redis://", "rediss://"))

    assert caught.value.kind == "tls"
    assert caught.value.needs_refresh


@slow
def test_plain_redis_to_a_tls_only_server_is_a_tls_error_with_a_hint(redis_server_factory, reader):
    supported, reason = redis_tls_support()
    if not supported:
        pytest.skip(reason)
    server = redis_server_factory(tls=True)

    with pytest.raises(MetricsReadError) as caught:
        reader.read("q", server.url.replace("rediss://", "redis://"))

    assert caught.value.kind == "tls"
    assert caught.value.needs_refresh
    assert f"127.0.0.1:{server.port}" in str(caught.value) and "rediss://" in str(caught.value)


# ---------------------------------------------------------------------------------------
# The error object
# ---------------------------------------------------------------------------------------
def test_a_metrics_read_error_survives_pickling_with_its_kind_and_flags():
    error = MetricsReadError("refused", "refused: 10.0.0.1:6379 has reached maxclients", server_full=True)

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.kind, str(copy), copy.server_full, copy.needs_refresh) == ("refused", str(error), True, False)


def test_a_metrics_read_error_rejects_an_unknown_kind():
    with pytest.raises(ValueError):
        MetricsReadError("cosmic-rays", "cosmic-rays: ...")


def test_reader_timeouts_must_be_positive():
    with pytest.raises(ValueError):
        RedisMetricsReader(connect_timeout=0)
