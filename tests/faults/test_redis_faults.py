"""Faults of a watched Redis: down, slower than the read timeout, refusing our password, TLS
failing, INFO with missing or garbage fields. Real redis-server processes where a real
server can play the fault; a tiny RESP server where it cannot (late or crafted replies).

In every case a healthy second instance is sampled in the same batch and checked in the
same loop, and must not notice anything.
"""

import logging

import pytest
from django.urls import reverse

from logs.models import MetricLog, ScalingAction
from scaling.models import RedisInstance
from tests.faults.support import (
    Loop, assert_every_slot_sampled, assert_healthy, bulk, calls_for, mails_about, register, samples,
)
from tests.helpers import alerts_delivered
from standins.redis_servers import redis_tls_support

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def healthy(plans, heroku, redis_server_factory):
    server = redis_server_factory(password="healthy-neighbour-pw")
    return register(heroku, "healthy", server.url)


def _no_secret_anywhere(caplog, *secrets):
    texts = [caplog.text]
    texts += list(MetricLog.objects.values_list("error", flat=True))
    texts += [m.subject + m.body for m in alerts_delivered()]
    for secret in secrets:
        assert not any(secret in text for text in texts), f"{secret!r} leaked"


def test_redis_down_stores_every_slot_as_failed_and_mails_once(plans, heroku, redis_server_factory, reader, healthy, caplog, admin_client):
    caplog.set_level(logging.INFO)
    server = redis_server_factory(password="down-secret-pw")
    faulty = register(heroku, "faulty", server.url)
    loop = Loop([faulty, healthy], reader, heroku=heroku).run(60)

    server.stop()
    loop.run(15 * 60)
    server.start()
    loop.run(90)

    # Stored: every slot, the down ones with the reason.
    assert_every_slot_sampled(loop, faulty)
    logs = samples(faulty)
    down, after = logs[2:32], logs[32:]
    assert all(log.ok for log in logs[:2] + after), [log.error for log in after]
    assert {log.error_kind for log in down} == {"refused"}
    assert f"127.0.0.1:{server.port} refused the connection" in down[0].error
    assert RedisInstance.objects.get(pk=faulty.pk).consecutive_failures == 0
    # Visible in the admin with its reason.
    page = admin_client.get(reverse("admin:logs_metriclog_changelist"), {"q": "faulty"}).content.decode()
    assert f"127.0.0.1:{server.port} refused the connection" in page

    # Mailed: one "unreachable", not one per sample, and one when it answered again.
    [unreachable] = mails_about(faulty, "unreachable")
    assert "3 samples in a row" in unreachable.subject and "refused" in unreachable.body
    assert len(mails_about(faulty, "reachable again")) == 1 and len(alerts_delivered()) == 2

    # Sent to Heroku: a refresh (add-on, config vars) on the first failure and then only
    # after each cool-down (5 min, then 10 min): never a call per sample, never a PATCH.
    assert heroku.count("PATCH") == 0
    assert 2 <= len(calls_for(heroku, faulty)) <= 6
    assert ScalingAction.objects.count() == 0
    assert set(loop.outcome_names(faulty)) == {"stay"}

    assert_healthy(loop, healthy)
    _no_secret_anywhere(caplog, "down-secret-pw", "healthy-neighbour-pw")


def test_redis_slower_than_the_read_timeout_fails_its_sample_without_delaying_the_batch(plans, heroku, info_server, reader, healthy):
    slow = info_server()
    faulty = register(heroku, "faulty", slow.url)
    loop = Loop([faulty, healthy], reader, heroku=heroku).run(60)

    slow.silent = True  # accepts, reads INFO, never answers
    loop.run(3 * 30)
    slow.silent = False
    loop.run(60)

    assert_every_slot_sampled(loop, faulty)
    logs = samples(faulty)
    assert [log.ok for log in logs] == [True, True, False, False, False, True, True]
    assert {log.error_kind for log in logs[2:5]} == {"timeout"}
    assert logs[2].error == f"timeout: no INFO reply from 127.0.0.1:{slow.port} within 1 s"
    # The slow read held one thread for the read timeout; the batch (and the healthy
    # instance's sample in it) waited once, not once per slow instance or longer.
    assert max(loop.collect_seconds) < 1.8, loop.collect_seconds

    assert len(mails_about(faulty, "unreachable")) == 1 and len(mails_about(faulty, "reachable again")) == 1
    assert len(alerts_delivered()) == 2
    assert "no INFO reply" in alerts_delivered()[0].body
    # A busy server is not a stale URL: Heroku is not asked.
    assert heroku.calls == []
    assert ScalingAction.objects.count() == 0
    assert_healthy(loop, healthy)


def test_redis_trickling_its_reply_fails_as_slow_at_the_deadline_and_the_healthy_sample_is_stored_first(
    plans, heroku, info_server, reader, healthy
):
    """A byte every 0.1 s never trips the 1 s socket timeout; the whole exchange's deadline
    (connect + read timeout: 2 s) cuts it, and the batch's healthy sample does not wait for it."""
    trickler = info_server()
    faulty = register(heroku, "faulty", trickler.url)
    loop = Loop([faulty, healthy], reader, heroku=heroku).run(30)

    trickler.trickle = 0.1
    loop.run(3 * 30)
    trickler.trickle = None
    loop.run(60)

    assert_every_slot_sampled(loop, faulty)
    logs = samples(faulty)
    assert [log.ok for log in logs] == [True, False, False, False, True, True]
    assert {log.error_kind for log in logs[1:4]} == {"slow"}
    assert logs[1].error == f"slow: 127.0.0.1:{trickler.port} did not finish the INFO exchange within its 2 s deadline"
    # Each slow slot: the healthy sample was stored before the slow one, in its own transaction.
    for slow_log in logs[1:4]:
        neighbour = MetricLog.objects.get(instance=healthy, slot=slow_log.slot)
        assert neighbour.ok and neighbour.pk < slow_log.pk
    assert len(mails_about(faulty, "unreachable")) == 1 and len(mails_about(faulty, "reachable again")) == 1
    assert len(alerts_delivered()) == 2
    assert heroku.calls == []
    assert ScalingAction.objects.count() == 0
    assert_healthy(loop, healthy)


def test_redis_refusing_auth_when_heroku_knows_the_new_password(plans, heroku, redis_server_factory, reader, healthy):
    """Credentials rotated by Heroku: the first failed read asks Heroku, gets the new URL and
    reads again in the same slot, so not one sample is lost."""
    server = redis_server_factory(password="rotated-new-pw")
    faulty = register(heroku, "faulty", server.url_with_password("stale-old-pw"), heroku_url=server.url)
    loop = Loop([faulty, healthy], reader, heroku=heroku).run(5 * 60)

    assert_every_slot_sampled(loop, faulty)
    assert all(log.ok for log in samples(faulty))
    assert calls_for(heroku, faulty) == [("GET", f"/apps/faulty-app/addons/{faulty.addon['id']}"),
                                         ("GET", "/apps/faulty-app/config-vars")]
    assert "rotated-new-pw" in RedisInstance.objects.get(pk=faulty.pk).redis_url
    assert alerts_delivered() == []
    assert_healthy(loop, healthy)


def test_redis_refusing_auth_asks_heroku_a_bounded_number_of_times(plans, heroku, redis_server_factory, reader, healthy, caplog):
    caplog.set_level(logging.INFO)
    server = redis_server_factory(password="the-real-pw")
    wrong = server.url_with_password("a-wrong-pw")
    faulty = register(heroku, "faulty", wrong, heroku_url=wrong)  # Heroku has it wrong too
    loop = Loop([faulty, healthy], reader, heroku=heroku).run(12 * 60)

    assert_every_slot_sampled(loop, faulty)
    logs = samples(faulty)
    assert {log.error_kind for log in logs} == {"auth"}
    assert f"127.0.0.1:{server.port} rejected the credentials in the URL" in logs[0].error
    # One refresh at the first failure, then one per cool-down: 2 calls each.
    assert len(calls_for(heroku, faulty)) <= 6
    assert heroku.count("PATCH") == 0
    assert len(mails_about(faulty, "unreachable")) == 1 and len(alerts_delivered()) == 1
    assert "rejected the credentials" in alerts_delivered()[0].body
    assert_healthy(loop, healthy)
    _no_secret_anywhere(caplog, "the-real-pw", "a-wrong-pw", "healthy-neighbour-pw")


def _tls_or_skip():
    supported, reason = redis_tls_support()
    if not supported:
        pytest.skip(reason)


def test_tls_failing_on_a_stale_plain_url_is_healed_by_heroku_in_the_same_slot(plans, heroku, redis_server_factory,
                                                                                reader, healthy):
    """The add-on moved to TLS only: the stored redis:// URL fails, Heroku's config var has
    the rediss:// one; the sample of that slot is taken over TLS."""
    _tls_or_skip()
    server = redis_server_factory(tls=True, password="tls-pw")
    faulty = register(heroku, "faulty", server.url.replace("rediss://", "redis://"), heroku_url=server.url)
    loop = Loop([faulty, healthy], reader, heroku=heroku).run(3 * 60)

    assert_every_slot_sampled(loop, faulty)
    assert all(log.ok for log in samples(faulty))
    assert RedisInstance.objects.get(pk=faulty.pk).redis_url.startswith("rediss://")
    assert len(calls_for(heroku, faulty)) == 2
    assert alerts_delivered() == []
    assert_healthy(loop, healthy)


@pytest.mark.parametrize("mismatch", ["rediss-to-plain-port", "plain-to-tls-port"])
def test_tls_failing_is_stored_with_its_reason(plans, heroku, redis_server_factory, reader, healthy, mismatch):
    if mismatch == "plain-to-tls-port":
        _tls_or_skip()
        server = redis_server_factory(tls=True)
        url, reason = server.url.replace("rediss://", "redis://"), "dropped a new plain-text connection"
    else:
        server = redis_server_factory()
        url, reason = server.url.replace("redis://", "rediss://"), "no answer to the TLS handshake"
    faulty = register(heroku, "faulty", url)  # and Heroku has the same URL
    loop = Loop([faulty, healthy], reader, heroku=heroku).run(3 * 30)

    assert_every_slot_sampled(loop, faulty)
    logs = samples(faulty)
    assert {log.error_kind for log in logs} == {"tls"}
    assert reason in logs[0].error and f"127.0.0.1:{server.port}" in logs[0].error
    assert max(loop.collect_seconds) < 1.8
    assert len(calls_for(heroku, faulty)) == 2  # one refresh (it did not help); cool-down after
    assert heroku.count("PATCH") == 0
    assert len(mails_about(faulty, "unreachable")) == 1 and len(alerts_delivered()) == 1
    assert reason in alerts_delivered()[0].body
    assert_healthy(loop, healthy)


# INFO replies a real server would not give: (reply, sample ok?, error kind, texts stored).
ODD_INFO = {
    "fields-missing-or-odd": (
        bulk("# Memory\r\nused_memory:1024\r\nmaxmemory:-1\r\n# Clients\r\nconnected_clients:7\r\nmaxclients:abc\r\n"),
        True, "", ["maxclients: not a whole number ('abc')", "maxmemory: negative (-1)", "evicted_keys: missing"],
    ),
    "used-memory-unreadable": (
        bulk("# Memory\r\nused_memory:abc\r\nmaxmemory:-1\r\n# Clients\r\nconnected_clients:7\r\n"),
        False, "incomplete", ["lacks a readable used_memory or connected_clients", "used_memory: not a whole number ('abc')"],
    ),
    "connected-clients-missing": (
        bulk("# Memory\r\nused_memory:1024\r\n"),
        False, "incomplete", ["connected_clients: missing"],
    ),
    "nul-and-control-bytes": (
        bulk(b"used_memory:12\x0034\r\nconnected_clients:\x1b[31m9\r\nevicted_keys:0\r\n"),
        False, "incomplete", ["used_memory: not a whole number ('12?34')", "connected_clients: not a whole number"],
    ),
    "numbers-out-of-range": (
        bulk("used_memory:1024\r\nconnected_clients:7\r\nmaxclients:4294967296\r\n"
             "evicted_keys:18446744073709551615\r\ninstantaneous_ops_per_sec:99999999999\r\n"),
        True, "", ["maxclients: out of range", "evicted_keys: out of range", "instantaneous_ops_per_sec: out of range"],
    ),
    "used-memory-out-of-range": (
        bulk("used_memory:99999999999999999999\r\nconnected_clients:7\r\n"),
        False, "incomplete", ["used_memory: out of range"],
    ),
    "nothing-usable": (
        bulk("# Memory\r\nused_memory:lots\r\nmaxmemory:0\r\n"),
        False, "incomplete", ["lacks a readable used_memory or connected_clients", "used_memory: not a whole number"],
    ),
    "not-redis-at-all": (b"HTTP/1.1 400 Bad Request\r\n\r\n", False, "protocol", ["unexpected reply from"]),
    "info-not-text": (b":5\r\n", False, "protocol", ["is a int, not text"]),
    "reply-over-the-cap": (
        bulk("used_memory:1024\r\nconnected_clients:7\r\n" + "pad:" + "x" * (2 << 20) + "\r\n"),
        False, "too_large", ["is over 1 MiB"],
    ),
}


@pytest.mark.parametrize("case", list(ODD_INFO))
def test_info_with_missing_or_garbage_fields_is_tolerated_or_fails_alone(plans, heroku, info_server, reader, healthy, case):
    reply, ok, kind, texts = ODD_INFO[case]
    odd = info_server()
    faulty = register(heroku, "faulty", odd.url)
    odd.raw = reply
    loop = Loop([faulty, healthy], reader, heroku=heroku).run(5 * 30)

    assert_every_slot_sampled(loop, faulty)
    logs = samples(faulty)
    assert {log.ok for log in logs} == {ok}
    assert {log.error_kind for log in logs} == {kind}
    stored = logs[-1].warnings if ok else logs[-1].error
    for text in texts:
        assert text in stored, stored
    assert "\x00" not in stored and "\x1b" not in stored
    if ok:
        assert logs[-1].connected_clients == 7 and logs[-1].used_memory == 1024
        assert alerts_delivered() == []
    else:
        assert f"127.0.0.1:{odd.port}" in logs[-1].error
        assert len(mails_about(faulty, "unreachable")) == 1 and len(alerts_delivered()) == 1
    # The server answered: a new URL would not help, so Heroku is not asked.
    assert heroku.calls == []
    assert ScalingAction.objects.count() == 0
    assert_healthy(loop, healthy)


def test_redis_failing_for_changing_reasons_is_mailed_once(plans, heroku, info_server, reader, healthy):
    """A dying Redis fails one sample by a timeout, the next by a garbled reply, and so on:
    still one "unreachable" mail, not one per change of reason."""
    dying = info_server()
    faulty = register(heroku, "faulty", dying.url)
    loop = Loop([faulty, healthy], reader, heroku=heroku)
    for slot in range(6):
        dying.silent, dying.raw = (True, None) if slot % 2 else (False, b"-ERR LOADING garbled\r\n")
        loop.step()

    assert_every_slot_sampled(loop, faulty)
    logs = samples(faulty)
    assert not any(log.ok for log in logs)
    assert {log.error_kind for log in logs} == {"timeout", "protocol"}
    assert len(mails_about(faulty, "unreachable")) == 1 and len(alerts_delivered()) == 1
    assert heroku.calls == []
    assert_healthy(loop, healthy)


def test_stored_url_that_cannot_be_decrypted_is_replaced_from_heroku(plans, heroku, redis_server_factory, reader,
                                                                     healthy):
    """The stored URL was encrypted with a key no longer configured (a rotation gone wrong):
    Heroku's config var gives it again, and the sample of that slot is taken."""
    server = redis_server_factory(password="re-read-pw")
    faulty = register(heroku, "faulty", server.url)
    RedisInstance.objects.filter(pk=faulty.pk).update(redis_url_encrypted="gAAAAABnot-a-valid-token")
    loop = Loop([faulty, healthy], reader, heroku=heroku).run(2 * 60)

    assert_every_slot_sampled(loop, faulty)
    assert all(log.ok for log in samples(faulty))
    assert RedisInstance.objects.get(pk=faulty.pk).redis_url == server.url
    assert len(calls_for(heroku, faulty)) == 2
    assert alerts_delivered() == []
    assert_healthy(loop, healthy)
