"""Faults of the Heroku Platform API: on the PATCH of a scale-up, on the GET that follows it,
on the refresh of an instance's URL and on the bulk reconciliation: 401, 403, 404, 422,
429 (with and without a drained budget), 500, 503, a timeout, a body that is not JSON.

The fake Heroku (standins/heroku.py) checks every request against Heroku's schema and
plays each fault on the calls of the faulty instance's app only; its clock, the app's
client clock and the loop share simulated time. The healthy neighbour needs the same
scale-up at the same check and must get it as if nothing happened.
"""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse

from logs.models import MetricLog, ScalingAction
from scaling.heroku import HerokuError, HerokuRateLimited
from scaling.models import RedisInstance
from scaling.services.heroku_access import heroku_client
from scaling.services.reconcile import addons_reconcile
from tests.faults.support import (
    BUSY, CALM, Loop, assert_every_slot_sampled, assert_healthy, calls_for, mails_about, patches, register,
    samples,
)
from tests.helpers import alerts_delivered

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

UP = "heroku-redis:premium-1"
# How the app's client reports each fault (the stored and mailed reason).
REASON = {
    401: "401 unauthorized", 403: "403 forbidden", 404: "404 not_found", 422: "422 invalid_params",
    429: "429 rate_limit", 500: "500 internal_server_error", 503: "503 service_unavailable",
    "timeout": "no answer in time", "malformed": "body is not JSON",
}
# A 401 or 429 is about the whole Heroku account (its key refused, its pool drained): one
# alert of its own, besides what the instance's fault mails (tests/scaling/test_heroku_accounts.py).
ACCOUNT_ALERT = {401: "Heroku account default: key refused (401)", 429: "Heroku account default: rate limit drained"}
RETRIED = {500, 503, "timeout"}  # GETs are retried 3 times with back-off; a PATCH never


def _scene(heroku, info_server, reader, *, faulty_memory=BUSY, healthy_memory=BUSY):
    faulty_redis, healthy_redis = info_server(used_memory=faulty_memory), info_server(used_memory=healthy_memory)
    faulty = register(heroku, "faulty", faulty_redis.url)
    healthy = register(heroku, "healthy", healthy_redis.url)
    loop = Loop([faulty, healthy], reader, heroku=heroku)
    return SimpleNamespace(faulty=faulty, healthy=healthy, loop=loop, redis=faulty_redis)


def _plan(instance):
    return RedisInstance.objects.get(pk=instance.pk).current_plan.plan_name


def _actions(instance):
    return list(ScalingAction.objects.filter(instance=instance).order_by("created_at"))


def _assert_scaled_up_once_after_waiting(scene, heroku):
    """The faulty instance's change, left pending by a doubtful look, succeeded at the next:
    one PATCH, one success mail, no failure mail; samples and the healthy neighbour untouched."""
    assert patches(heroku, scene.faulty) == 1
    [action] = _actions(scene.faulty)
    assert action.status == "succeeded" and _plan(scene.faulty) == UP
    assert scene.loop.outcome_names(scene.faulty)[:4] == ["stay", "pending", "pending", "succeeded"]
    assert not mails_about(scene.faulty, "failed")
    assert len(mails_about(scene.faulty, "scaled up")) == 1
    _assert_samples_untouched(scene)
    _assert_healthy_scaled_up(scene, heroku)


def _assert_healthy_scaled_up(scene, heroku):
    """The neighbour breached at the same check and was scaled up once, normally."""
    assert_healthy(scene.loop, scene.healthy, plan=UP, outcomes=("stay", "pending", "succeeded"))
    assert patches(heroku, scene.healthy) == 1
    assert [a.status for a in _actions(scene.healthy)] == ["succeeded"]
    assert len(mails_about(scene.healthy, "scaled up to premium-1")) == 1
    assert len(mails_about(scene.healthy)) == 2  # the breach, the success


def _assert_samples_untouched(scene):
    """Heroku's troubles never cost a sample: both instances sampled at every slot."""
    for instance in (scene.faulty, scene.healthy):
        assert_every_slot_sampled(scene.loop, instance)
        assert all(log.ok for log in samples(instance))


# --- The PATCH of a scale-up ------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 422])
def test_a_refused_patch_fails_once_and_is_paused_for_an_hour(plans, heroku, info_server, reader, status, admin_client):
    """Permanent refusals: recorded, mailed once, not tried again for an hour."""
    scene = _scene(heroku, info_server, reader)
    heroku.fail_next("PATCH", r"^/apps/faulty-app/", status=status)
    scene.loop.run(8 * 60)

    assert patches(heroku, scene.faulty) == 1
    [action] = _actions(scene.faulty)
    assert action.status == "failed"
    assert f"Heroku PATCH /apps/faulty-app/addons/{scene.faulty.addon['id']}: {REASON[status]}" in action.error
    assert action.retry_not_before == action.created_at + timedelta(hours=1)
    page = admin_client.get(reverse("admin:logs_scalingaction_changelist"), {"q": "faulty"}).content.decode()
    assert REASON[status] in page
    assert _plan(scene.faulty) == "heroku-redis:premium-0"
    outcomes = scene.loop.outcome_names(scene.faulty)
    assert outcomes[:2] == ["stay", "failed"] and set(outcomes[2:]) == {"paused"}

    failed = mails_about(scene.faulty, "failed")
    assert len(failed) == 1 and REASON[status] in failed[0].body
    assert len(mails_about(scene.faulty)) == 2  # the breach, the failure: not one a minute
    _assert_samples_untouched(scene)
    _assert_healthy_scaled_up(scene, heroku)


def test_patch_429_backs_off_for_retry_after_then_scales(plans, heroku, info_server, reader):
    scene = _scene(heroku, info_server, reader)
    heroku.fail_next("PATCH", r"^/apps/faulty-app/", status=429, headers={"Retry-After": "150"})
    scene.loop.run(6 * 60)

    refused, done = _actions(scene.faulty)
    assert refused.status == "failed" and REASON[429] in refused.error
    assert done.status == "succeeded" and done.to_plan.plan_name == UP
    # The second PATCH only after Heroku's Retry-After; checks in between stand back.
    assert done.created_at - refused.created_at >= timedelta(seconds=150)
    assert scene.loop.outcome_names(scene.faulty)[:5] == ["stay", "failed", "paused", "paused", "succeeded"]
    assert patches(heroku, scene.faulty) == 2
    assert _plan(scene.faulty) == UP
    assert len(mails_about(scene.faulty, "failed")) == 1 and len(mails_about(scene.faulty, "scaled up")) == 1
    _assert_samples_untouched(scene)
    _assert_healthy_scaled_up(scene, heroku)


def test_patch_429_with_the_account_budget_drained(plans, heroku, info_server, reader):
    """The account's 4,500 calls are spent: Heroku answers 429 to everything until the pool
    refills (75 calls a minute). One PATCH, a back-off, then the scale-up; ordinary reads
    are not even sent meanwhile."""
    scene = _scene(heroku, info_server, reader, healthy_memory=CALM)
    scene.loop.run(90)
    scene.loop.step(before_checks=lambda: heroku.drain_rate_limit(to=0))  # 2:00, the scale-up check

    [refused] = _actions(scene.faulty)
    assert refused.status == "failed" and REASON[429] in refused.error
    sent = len(heroku.calls)
    with pytest.raises(HerokuRateLimited, match="not sent"):
        addons_reconcile(now=scene.loop.now)
    assert len(heroku.calls) == sent

    scene.loop.run(3 * 60)
    refused, done = _actions(scene.faulty)
    assert done.status == "succeeded" and done.created_at - refused.created_at >= timedelta(seconds=60)
    assert patches(heroku, scene.faulty) == 2
    assert _plan(scene.faulty) == UP
    assert len(mails_about(scene.faulty, "failed")) == 1 and len(mails_about(scene.faulty, "scaled up")) == 1
    _assert_samples_untouched(scene)
    assert_healthy(scene.loop, scene.healthy)
    assert calls_for(heroku, scene.healthy) == []


def test_patch_with_the_budget_down_to_the_reserve(plans, heroku, info_server, reader):
    """Below the reserve, ordinary reads are kept back and the scale-up still goes out."""
    scene = _scene(heroku, info_server, reader, healthy_memory=CALM)
    scene.loop.run(90)
    scene.loop.step(before_checks=lambda: heroku.drain_rate_limit(to=100))  # the client keeps 500 back
    scene.loop.run(3 * 60)

    assert patches(heroku, scene.faulty) == 1
    assert [a.status for a in _actions(scene.faulty)] == ["succeeded"]
    sent = len(heroku.calls)
    with pytest.raises(HerokuRateLimited, match="kept for scaling actions"):
        addons_reconcile(now=scene.loop.now)
    assert len(heroku.calls) == sent
    assert len(mails_about(scene.faulty, "scaled up")) == 1 and not mails_about(scene.faulty, "failed")
    _assert_samples_untouched(scene)
    assert_healthy(scene.loop, scene.healthy)


@pytest.mark.parametrize("status", [500, 503, "timeout", "malformed"])
def test_an_unanswered_patch_not_applied_is_followed_until_it_cannot_land_then_decided_again(plans, heroku, info_server,
                                                                                            reader, status):
    """The PATCH may or may not have landed: the next checks look (GET) before anything else.
    The old plan a minute after the PATCH proves nothing (Heroku may still be at work); two
    minutes after it, the change can no longer land: the failure is recorded with its reason
    and the engine decides again."""
    scene = _scene(heroku, info_server, reader)
    heroku.fail_next("PATCH", r"^/apps/faulty-app/", status=status)
    scene.loop.run(7 * 60)

    addon_path = f"/apps/faulty-app/addons/{scene.faulty.addon['id']}"
    assert calls_for(heroku, scene.faulty)[:4] == [
        ("PATCH", addon_path), ("GET", addon_path), ("GET", addon_path), ("PATCH", addon_path)]
    assert scene.loop.outcome_names(scene.faulty)[:4] == ["stay", "pending", "pending", "failed"]
    assert patches(heroku, scene.faulty) == 2
    unknown, done = _actions(scene.faulty)
    assert unknown.status == "failed" and "did not reach Heroku" in unknown.error
    assert REASON[status] in unknown.error
    assert done.status == "succeeded" and _plan(scene.faulty) == UP
    failed = mails_about(scene.faulty, "failed")
    assert len(failed) == 1 and REASON[status] in failed[0].body
    assert len(mails_about(scene.faulty, "scaled up")) == 1
    _assert_samples_untouched(scene)
    _assert_healthy_scaled_up(scene, heroku)


def test_a_patch_answered_after_the_clients_timeout_is_never_sent_again(plans, heroku, info_server, reader):
    """Heroku is still at work when the client gives up on the PATCH; the check a minute
    later finds the old plan and waits; then the change lands: one PATCH, one success, no
    failure mail."""
    scene = _scene(heroku, info_server, reader)
    heroku.fail_next("PATCH", r"^/apps/faulty-app/", status="timeout")  # not applied (yet)
    scene.loop.run(180)  # the PATCH at 2:00, the look at 3:00 finds premium-0
    assert heroku.addons[scene.faulty.addon["id"]]["plan"] == "heroku-redis:premium-0"
    [action] = _actions(scene.faulty)
    assert action.status == "pending" and REASON["timeout"] in action.error
    heroku.set_plan_by_hand(scene.faulty.addon["id"], UP)  # the PATCH lands, 70 s after it was sent
    scene.loop.run(3 * 60)

    _assert_scaled_up_once_after_waiting(scene, heroku)


def test_after_the_provisioning_timeout_an_addon_on_the_target_plan_is_a_success(plans, heroku, info_server, reader):
    """Heroku shows the new plan still provisioning 30 minutes on: the plan is what was asked
    for, so the change succeeded; not a failure, a second PATCH and two failure mails."""
    scene = _scene(heroku, info_server, reader, healthy_memory=CALM)
    heroku.plan_change_seconds = 3600
    scene.loop.run(36 * 60)

    assert patches(heroku, scene.faulty) == 1
    [action] = _actions(scene.faulty)
    assert action.status == "succeeded" and _plan(scene.faulty) == UP
    assert action.finished_at - action.patch_sent_at > timedelta(minutes=30)
    assert not mails_about(scene.faulty, "failed")
    assert len(mails_about(scene.faulty, "scaled up")) == 1
    _assert_samples_untouched(scene)
    assert_healthy(scene.loop, scene.healthy)


@pytest.mark.parametrize("status", ["timeout", 500, "malformed"])
def test_an_applied_patch_whose_answer_was_lost_is_confirmed_without_a_second_patch(plans, heroku, info_server, reader, status):
    """Heroku changed the plan and the answer never came (or came garbled): followed by a
    GET, completed, and never sent a second time."""
    scene = _scene(heroku, info_server, reader)
    heroku.fail_next("PATCH", r"^/apps/faulty-app/", status=status, applied=True)
    scene.loop.run(120)
    if status != "timeout":  # the fake applies only timeouts; the others took effect too
        heroku.set_plan_by_hand(scene.faulty.addon["id"], UP)
    [action] = _actions(scene.faulty)
    assert action.status == "pending" and REASON[status] in action.error
    scene.loop.run(4 * 60)

    assert patches(heroku, scene.faulty) == 1
    [action] = _actions(scene.faulty)
    assert action.status == "succeeded" and _plan(scene.faulty) == UP
    assert scene.loop.outcome_names(scene.faulty)[:3] == ["stay", "pending", "succeeded"]
    assert not mails_about(scene.faulty, "failed")
    assert len(mails_about(scene.faulty, "scaled up")) == 1
    _assert_samples_untouched(scene)
    _assert_healthy_scaled_up(scene, heroku)


# --- The GET that follows a plan change --------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 422, 429, 500, 503, "timeout", "malformed"])
def test_following_read_fails_while_the_plan_is_provisioning(plans, heroku, info_server, reader, status):
    """The PATCH was accepted and Heroku is provisioning: a failed look at the add-on leaves
    the change pending (with the reason on the row); the next look completes it. Never a
    second PATCH for a change Heroku accepted."""
    scene = _scene(heroku, info_server, reader)
    heroku.plan_change_seconds = 90
    heroku.fail_next("GET", r"^/apps/faulty-app/addons/", status=status, times=4 if status in RETRIED else 1)
    scene.loop.run(180)  # PATCH at 2:00 (provisioning), the failing look at 3:00

    [action] = _actions(scene.faulty)
    assert action.status == "pending" and REASON[status] in action.error
    scene.loop.run(3 * 60)

    _assert_scaled_up_once_after_waiting(scene, heroku)


def test_the_refresh_after_a_plan_change_fails(plans, heroku, info_server, reader):
    """Scaled up; reading the add-on and URL again afterwards fails: the change stands, the
    old URL keeps working, nothing is sent twice."""
    scene = _scene(heroku, info_server, reader)
    heroku.fail_next("GET", r"^/apps/faulty-app/addons/", status=503, times=4)
    scene.loop.run(5 * 60)

    assert patches(heroku, scene.faulty) == 1
    assert [a.status for a in _actions(scene.faulty)] == ["succeeded"] and _plan(scene.faulty) == UP
    assert heroku.client_sleeps[:3] == [0.5, 1.0, 2.0]
    assert not mails_about(scene.faulty, "failed")
    _assert_samples_untouched(scene)
    _assert_healthy_scaled_up(scene, heroku)


# --- Refreshing an instance's URL ---------------------------------------------------------


@pytest.fixture
def rotated(plans, heroku, info_server, redis_server_factory, reader):
    """The faulty Redis had its password rotated: the stored URL fails, Heroku has the new one."""
    server = redis_server_factory(password="rotated-new-pw")
    faulty = register(heroku, "faulty", server.url_with_password("stale-old-pw"), heroku_url=server.url)
    healthy = register(heroku, "healthy", info_server(used_memory=CALM).url)
    loop = Loop([faulty, healthy], reader, heroku=heroku)
    return SimpleNamespace(faulty=faulty, healthy=healthy, loop=loop)


@pytest.mark.parametrize("status", [401, 403, 422, 429, 500, 503, "timeout", "malformed"])
def test_a_failing_refresh_is_retried_after_a_growing_cool_down(heroku, rotated, status):
    """Heroku cannot tell the new URL: the samples fail with both reasons stored (the Redis
    refusal and why Heroku could not help), Heroku is asked again after the cool-down, and
    the samples come back."""
    heroku.fail_next("GET", r"^/apps/faulty-app/addons/", status=status, times=4 if status in RETRIED else 1)
    rotated.loop.run(6 * 60)

    assert_every_slot_sampled(rotated.loop, rotated.faulty)
    logs = samples(rotated.faulty)
    failed = [log for log in logs if not log.ok]
    assert logs[0] in failed and logs[-1].ok
    assert {log.error_kind for log in failed} == {"auth"}
    assert "rejected the credentials" in logs[0].error and REASON[status] in logs[0].error
    # Asked once at the first failure (retried inside the client where that is allowed),
    # then once after the 5-minute cool-down, which found the new URL.
    attempts = 4 if status in RETRIED else 1
    assert len(calls_for(heroku, rotated.faulty)) == attempts + 2
    assert len(failed) == 10  # the cool-down: 5 minutes of 30-second slots
    assert heroku.count("PATCH") == 0
    unreachable = mails_about(rotated.faulty, "unreachable")
    assert len(unreachable) == 1 and "rejected the credentials" in unreachable[0].body
    assert _account_alerts() == ([ACCOUNT_ALERT[status]] if status in ACCOUNT_ALERT else [])
    # and one when the samples came back
    assert len(alerts_delivered()) == 2 + len(_account_alerts())
    assert len(mails_about(rotated.faulty, "reachable again")) == 1
    assert_healthy(rotated.loop, rotated.healthy)


def test_refresh_read_with_the_account_budget_drained(heroku, rotated):
    """The account's calls are spent: the refresh gets a 429, the next one is kept back for
    scaling actions while the pool refills (not sent), the one after finds the new URL.
    Every failed sample says why."""
    rotated.loop.now += timedelta(seconds=30)
    heroku.drain_rate_limit(to=0)
    rotated.loop.collect()  # 0:30, the first failure: the refresh gets a 429
    rotated.loop.run(10 * 60 + 30)

    assert_every_slot_sampled(rotated.loop, rotated.faulty)
    logs = samples(rotated.faulty)
    assert REASON[429] in logs[0].error
    assert "not sent" in logs[10].error and "kept for scaling actions" in logs[10].error
    assert not logs[19].ok and logs[20].ok and logs[-1].ok
    # The 429, nothing at 5:30 (kept back), then the add-on and its config vars at 10:30.
    assert [method for method, _ in calls_for(heroku, rotated.faulty)] == ["GET", "GET", "GET"]
    assert len(mails_about(rotated.faulty, "unreachable")) == 1 and len(mails_about(rotated.faulty, "reachable again")) == 1
    assert _account_alerts() == [ACCOUNT_ALERT[429]]
    assert len(alerts_delivered()) == 3
    assert_healthy(rotated.loop, rotated.healthy)


@pytest.mark.parametrize("status", [404, 500, "timeout"])
def test_refresh_read_fails_once_and_the_sample_is_still_taken(heroku, rotated, status):
    """A 404 (add-on replaced: found again by its config var) or one 5xx/timeout (retried
    inside the client): the URL is refreshed and the sample of that same slot is taken."""
    heroku.fail_next("GET", rf"^/apps/faulty-app/addons/{rotated.faulty.addon['id']}", status=status)
    rotated.loop.run(2 * 60)

    assert_every_slot_sampled(rotated.loop, rotated.faulty)
    assert all(log.ok for log in samples(rotated.faulty))
    assert "rotated-new-pw" in RedisInstance.objects.get(pk=rotated.faulty.pk).redis_url
    assert heroku.client_sleeps == ([] if status == 404 else [0.5])
    assert alerts_delivered() == [] and heroku.count("PATCH") == 0
    assert_healthy(rotated.loop, rotated.healthy)


def test_a_slow_refresh_does_not_hold_back_the_neighbours_sample(heroku, rotated, monkeypatch):
    """Heroku times out (with retries, minutes in production) while the faulty instance's
    URL is refreshed: the healthy instance's sample of that slot is already stored, with the
    time it was read."""
    stored_when_heroku_was_asked = []
    client = heroku_client()
    get_addon = client.get_addon

    def watched_get_addon(*args, **kwargs):
        stored_when_heroku_was_asked.append(
            list(MetricLog.objects.filter(instance=rotated.healthy).values_list("slot", "collected_at")))
        return get_addon(*args, **kwargs)

    monkeypatch.setattr(client, "get_addon", watched_get_addon)
    heroku.fail_next("GET", r"^/apps/faulty-app/addons/", status="timeout", times=4)
    rotated.loop.run(30)

    slot = rotated.loop.now
    assert stored_when_heroku_was_asked == [[(slot, slot)]]
    [faulty_sample] = samples(rotated.faulty)
    assert not faulty_sample.ok and REASON["timeout"] in faulty_sample.error
    assert_healthy(rotated.loop, rotated.healthy)


# --- The bulk reconciliation --------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 422, 429, 500, 503, "timeout", "malformed"])
def test_a_failing_reconciliation_changes_nothing_and_the_next_run_adopts(plans, heroku, info_server, reader, status):
    """`GET /addons` fails: nothing is changed on a partial view, the reason is in the error
    the task fails with, a 429 is not retried (and the next run inside the back-off is not
    even sent), 5xx and timeouts are retried with back-off; the next run adopts."""
    scene = _scene(heroku, info_server, reader, faulty_memory=CALM, healthy_memory=CALM)
    heroku.set_plan_by_hand(scene.faulty.addon["id"], "heroku-redis:premium-2")
    heroku.fail_next("GET", r"^/addons$", status=status, times=4 if status in RETRIED else 1)

    with pytest.raises(HerokuError) as caught:
        addons_reconcile(now=scene.loop.now)
    assert REASON[status] in str(caught.value) and "GET /addons" in str(caught.value)
    assert heroku.count("GET", r"^/addons$") == (4 if status in RETRIED else 1)
    assert heroku.client_sleeps == ([0.5, 1.0, 2.0] if status in RETRIED else [])
    assert ScalingAction.objects.count() == 0 and _plan(scene.faulty) == "heroku-redis:premium-0"

    if status == 429:
        with pytest.raises(HerokuRateLimited, match="not sent"):
            addons_reconcile(now=scene.loop.now)
        assert heroku.count("GET", r"^/addons$") == 1
    scene.loop.run(90)  # past the default 60 s back-off
    result = addons_reconcile(now=scene.loop.now)

    assert result.adopted == 1 and _plan(scene.faulty) == "heroku-redis:premium-2"
    assert _account_alerts() == ([ACCOUNT_ALERT[status]] if status in ACCOUNT_ALERT else [])
    assert heroku.count("PATCH") == 0
    assert len(alerts_delivered()) == 1 + len(_account_alerts())
    assert len(mails_about(scene.faulty, "plan changed outside the app")) == 1
    _assert_samples_untouched(scene)
    assert_healthy(scene.loop, scene.healthy)


def _account_alerts():
    return [message.subject.split("]", 1)[-1].strip() for message in alerts_delivered()
            if "Heroku account" in message.subject]
