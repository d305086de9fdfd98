"""Sampling real redis-server processes, with Heroku faked at the HTTP level."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from logs.models import MetricLog
from notifications.models import Notification
from scaling.models import RedisInstance
from scaling.services.collection import samples_collect
from scaling.services.instances import addon_resolve
from scaling.metrics import RedisMetricsReader
from tests.factories import make_instance
from tests.helpers import alerts_delivered

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
MIB = 1024 * 1024


@pytest.fixture
def reader():
    with RedisMetricsReader(connect_timeout=2, read_timeout=1) as reader:
        yield reader


def _register(heroku, server, *, name="queue", plan="heroku-redis:premium-0", **fields):
    """An instance as registration leaves it: resolved through the fake Heroku."""
    addon = heroku.add_redis_addon(f"{name}-app", plan=plan, config_var="REDIS_URL", url=server.url)
    resolved = addon_resolve(app_name=f"{name}-app", config_var="REDIS_URL")
    instance = make_instance(name=name, plan=plan, redis_url=resolved.redis_url, **fields)
    RedisInstance.objects.filter(pk=instance.pk).update(addon_id=addon["id"], addon_name=addon["name"], resolved_at=timezone.now())
    return RedisInstance.objects.get(pk=instance.pk), addon


def _rotate_password(server, new):
    """As Heroku does: a new password, and every client connection dropped."""
    server.set_password(new)
    with server.client() as admin:
        admin.client_kill_filter(_type="normal", skipme=True)


def _collect(instance, reader, slot=None):
    samples_collect(due=[(instance.pk, slot or timezone.now())], reader=reader)
    return MetricLog.objects.filter(instance=instance).order_by("-collected_at").first()


def test_a_sample_stores_memory_and_connections_as_shares_of_the_plan(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory()
    instance, _ = _register(heroku, server)
    client = server.client()
    for key in range(10):
        client.set(f"payload:{key}", b"x" * (MIB // 2))
    extra = [server.client() for _ in range(9)]
    for connection in extra:
        connection.ping()

    sample = _collect(instance, reader)

    assert sample.ok, sample.error
    assert sample.used_memory >= 5 * MIB
    assert sample.memory_pct == pytest.approx(100 * sample.used_memory / (50 * MIB), abs=0.01)
    assert sample.connected_clients >= 11  # ours, the filler and nine more
    assert sample.connection_pct == pytest.approx(100 * sample.connected_clients / 40, abs=0.01)
    assert sample.plan.plan_name == "heroku-redis:premium-0"
    assert sample.evicted_keys == 0 and sample.rejected_connections == 0


def test_a_plan_with_unlimited_connections_has_no_connection_percentage(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory()
    instance, _ = _register(heroku, server, plan="rediscloud:10000", min_plan="rediscloud:30", max_plan="rediscloud:10000",
                            config_var="REDISCLOUD_URL")
    sample = _collect(instance, reader)
    assert sample.ok and sample.connected_clients >= 1
    assert sample.connection_pct is None


def test_a_slot_sampled_twice_stores_one_sample(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory()
    instance, _ = _register(heroku, server)
    slot = timezone.now().replace(microsecond=0)
    samples_collect(due=[(instance.pk, slot)], reader=reader)
    result = samples_collect(due=[(instance.pk, slot)], reader=reader)
    assert result.skipped == 1
    assert MetricLog.objects.filter(instance=instance, slot=slot).count() == 1


def test_an_unresolved_instance_is_resolved_through_heroku_once_then_sampled(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory()
    heroku.add_redis_addon("fresh-app", config_var="HEROKU_REDIS_BLUE_URL", url=server.url)
    instance = make_instance(name="fresh", app_name="fresh-app", config_var="HEROKU_REDIS_BLUE_URL")

    first = _collect(instance, reader)
    calls_after_first = len(heroku.calls)
    second = _collect(instance, reader, slot=timezone.now() + timedelta(seconds=30))

    assert first.ok and second.ok
    assert calls_after_first == 2  # the app's add-ons, then its config vars
    assert len(heroku.calls) == calls_after_first  # nothing more once resolved
    assert RedisInstance.objects.get(pk=instance.pk).addon_id is not None


def test_a_server_that_goes_away_gives_failed_samples_and_then_recovers(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory(password="hunter2-secret")
    instance, _ = _register(heroku, server)
    assert _collect(instance, reader).ok

    server.stop()
    down = _collect(instance, reader, slot=timezone.now() + timedelta(seconds=30))
    assert not down.ok and down.error_kind == "refused"
    assert "hunter2-secret" not in down.error
    assert RedisInstance.objects.get(pk=instance.pk).consecutive_failures == 1

    server.start()
    up = _collect(instance, reader, slot=timezone.now() + timedelta(seconds=60))
    assert up.ok, up.error
    assert RedisInstance.objects.get(pk=instance.pk).consecutive_failures == 0


def test_a_password_change_refreshes_the_url_through_heroku_once_not_in_a_loop(plans, heroku, redis_server_factory, reader, caplog):
    caplog.set_level(logging.DEBUG)
    server = redis_server_factory(password="old-password-1")
    instance, addon = _register(heroku, server)
    RedisInstance.objects.filter(pk=instance.pk).update(resolved_at=timezone.now() - timedelta(hours=1))
    assert _collect(instance, reader).ok
    calls_before = len(heroku.calls)

    _rotate_password(server, "new-password-2")
    heroku.rotate_url(addon["id"], server.url_with_password("new-password-2"))
    after_rotation = _collect(instance, reader, slot=timezone.now() + timedelta(seconds=30))

    assert after_rotation.ok, after_rotation.error  # refreshed and read again in the same slot
    assert len(heroku.calls) - calls_before == 2  # the add-on, then its config vars
    assert RedisInstance.objects.get(pk=instance.pk).redis_url.endswith(server.url_with_password("new-password-2").split("@")[1])

    # Heroku does not know the next password: failed samples, but Heroku is asked once only.
    _rotate_password(server, "unknown-password-3")
    calls_before = len(heroku.calls)
    for step in range(2, 6):
        sample = _collect(instance, reader, slot=timezone.now() + timedelta(seconds=30 * step))
        assert not sample.ok and sample.error_kind == "auth"
    assert len(heroku.calls) - calls_before <= 2
    text = caplog.text + " ".join(MetricLog.objects.values_list("error", flat=True))
    for secret in ("old-password-1", "new-password-2", "unknown-password-3"):
        assert secret not in text


def test_a_slow_instance_does_not_stop_the_others_being_sampled(plans, heroku, redis_server_factory, reader):
    healthy = [_register(heroku, redis_server_factory(), name=f"ok-{n}")[0] for n in range(3)]
    slow_server = redis_server_factory()
    slow, _ = _register(heroku, slow_server, name="slow")
    slow_server.stop()
    # A listener that accepts and never answers: the read times out.
    import socket

    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(8)
    slow.redis_url = f"redis://127.0.0.1:{blackhole.getsockname()[1]}"
    slow.save(update_fields=["redis_url_encrypted"])
    try:
        slot = timezone.now()
        result = samples_collect(due=[(i.pk, slot) for i in healthy + [slow]], reader=reader)
    finally:
        blackhole.close()
    assert result.stored == 4 and result.failed == 1
    assert all(MetricLog.objects.get(instance=i, slot=slot).ok for i in healthy)
    assert MetricLog.objects.get(instance=slow, slot=slot).error_kind == "timeout"


def test_odd_info_fields_are_stored_as_warnings_not_failures(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory()
    instance, _ = _register(heroku, server)
    sample = _collect(instance, reader)
    assert sample.ok
    assert sample.warnings == ""


def test_an_instance_unreachable_for_several_samples_is_mailed_once(plans, heroku, redis_server_factory, reader):

    server = redis_server_factory()
    instance, _ = _register(heroku, server)
    server.stop()
    for step in range(6):
        _collect(instance, reader, slot=timezone.now() + timedelta(seconds=30 * step))
    alerts = [m for m in alerts_delivered() if "unreachable" in m.subject]
    assert len(alerts) == 1
    assert "3 samples in a row" in alerts[0].subject and "refused" in alerts[0].body


def test_an_unreachable_instance_answering_again_is_alerted_as_recovered_in_the_samples_transaction(
        plans, heroku, redis_server_factory, reader):
    server = redis_server_factory()
    instance, _ = _register(heroku, server)
    server.stop()
    start = timezone.now()
    for step in range(4):
        _collect(instance, reader, slot=start + timedelta(seconds=30 * step))
    server.start()
    for step in range(4, 6):
        _collect(instance, reader, slot=start + timedelta(seconds=30 * step))
    events = list(Notification.objects.filter(instance=instance).order_by("created_at").values_list("event", flat=True))
    assert events == ["instance.unreachable", "instance.recovered"]
    assert RedisInstance.objects.get(pk=instance.pk).consecutive_failures == 0


def _pointed_at(instance, url):
    instance.redis_url = url
    instance.save(update_fields=["redis_url_encrypted"])
    return instance


INFO_TEXT = "# Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\n# Clients\r\nconnected_clients:3\r\nmaxclients:10000\r\n"


def test_a_trickling_instance_fails_as_slow_and_its_healthy_neighbours_are_stored_first(plans, heroku, redis_server_factory, reader):
    from standins.fake_redis import FakeServer, bulk

    healthy = [_register(heroku, redis_server_factory(), name=f"ok-{n}")[0] for n in range(2)]
    slow, _ = _register(heroku, redis_server_factory(), name="slow")
    trickler = FakeServer(lambda args: bulk(INFO_TEXT), trickle=0.1)  # 100 bytes would take 10 s
    _pointed_at(slow, trickler.url)
    try:
        slot = timezone.now()
        result = samples_collect(due=[(slow.pk, slot)] + [(i.pk, slot) for i in healthy], reader=reader)
    finally:
        trickler.close()

    assert result.stored == 3 and result.failed == 1
    slow_sample = MetricLog.objects.get(instance=slow, slot=slot)
    assert slow_sample.error_kind == "slow"
    assert "within its 3 s deadline" in slow_sample.error
    assert trickler.sent < len(bulk(INFO_TEXT))
    for instance in healthy:
        sample = MetricLog.objects.get(instance=instance, slot=slot)
        assert sample.ok, sample.error
        # Stored in an earlier transaction than the slow one's, not held back by it.
        assert sample.pk < slow_sample.pk and sample.collected_at < slow_sample.collected_at


def test_an_oversized_info_reply_is_a_failed_sample_of_its_own_kind(plans, heroku, redis_server_factory, reader):
    from standins.fake_redis import FakeServer

    def huge(args):
        yield b"$%d\r\n" % (64 << 20)
        for _ in range(64):
            yield b"x" * (1 << 20)

    instance, _ = _register(heroku, redis_server_factory())
    server = FakeServer(huge)
    _pointed_at(instance, server.url)
    try:
        sample = _collect(instance, reader)
    finally:
        server.close()

    assert sample.error_kind == "too_large"
    assert RedisInstance.objects.get(pk=instance.pk).consecutive_failures == 1


@pytest.mark.parametrize("text", [
    "used_memory:garbage\r\nconnected_clients:4\r\n",
    "used_memory:1024\r\nconnected_clients:\r\n",
])
def test_a_sample_without_a_readable_used_memory_or_connected_clients_is_a_failed_read_that_counts_toward_unreachable(
    plans, heroku, redis_server_factory, reader, text
):

    from standins.fake_redis import FakeServer, bulk

    instance, _ = _register(heroku, redis_server_factory())
    server = FakeServer(lambda args: bulk(text))
    _pointed_at(instance, server.url)
    try:
        samples = [_collect(instance, reader, slot=timezone.now() + timedelta(seconds=30 * step)) for step in range(3)]
    finally:
        server.close()

    assert all(not s.ok and s.error_kind == "incomplete" for s in samples)
    assert RedisInstance.objects.get(pk=instance.pk).consecutive_failures == 3
    assert len([m for m in alerts_delivered() if "unreachable" in m.subject]) == 1


class _MeetingReader:
    """Lets two collections of the same slot read before either stores (a task delivered twice)."""

    def __init__(self, reader, parties):
        import threading

        self.reader = reader
        self.barrier = threading.Barrier(parties, timeout=30)

    def read(self, key, url):
        try:
            return self.reader.read(key, url)
        finally:
            self.barrier.wait()


def test_the_same_failed_slot_collected_twice_at_once_counts_one_failure(plans, heroku, redis_server_factory, reader):
    import threading

    from django.db import connection

    server = redis_server_factory()
    instance, _ = _register(heroku, server)
    RedisInstance.objects.filter(pk=instance.pk).update(consecutive_failures=2)  # the next failure alerts
    server.stop()
    meeting = _MeetingReader(reader, parties=2)
    slot = timezone.now()
    results = []

    def deliver():
        try:
            results.append(samples_collect(due=[(instance.pk, slot)], reader=meeting))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(results) == 2
    assert MetricLog.objects.filter(instance=instance, slot=slot).count() == 1
    assert RedisInstance.objects.get(pk=instance.pk).consecutive_failures == 3
    assert sorted(r.failed for r in results) == [0, 1]


class _RemovingReader:
    """Removes one instance while the batch is being read (an operator's --remove)."""

    def __init__(self, reader, doomed_pk):
        self.reader, self.doomed_pk = reader, doomed_pk

    def read(self, key, url):
        from django.db import connection

        if key == str(self.doomed_pk):
            try:
                RedisInstance.objects.filter(pk=self.doomed_pk).delete()
            finally:
                connection.close()
        return self.reader.read(key, url)


def test_an_instance_removed_while_its_batch_is_read_does_not_cost_the_others_their_samples(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory()
    kept = [_register(heroku, server, name=f"kept-{n}")[0] for n in range(3)]
    doomed, _ = _register(heroku, server, name="doomed")
    slot = timezone.now()

    result = samples_collect(due=[(i.pk, slot) for i in kept + [doomed]], reader=_RemovingReader(reader, doomed.pk))

    assert all(MetricLog.objects.get(instance=i, slot=slot).ok for i in kept)
    assert not MetricLog.objects.filter(instance_id=doomed.pk).exists()
    assert result.failed == 0
