"""The whole loop: a real redis-server, the fake Heroku, simulated time, mails in the outbox."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
import redis

from logs.models import MetricLog, ScalingAction
from notifications.models import Notification
from scaling.models import RedisInstance
from scaling.services.checks import PATCH_SETTLE, instance_check_scaling, plan_change_follow
from scaling.services.collection import samples_collect
from tests.claims import claimed_by_another_worker
from tests.factories import make_instance
from tests.helpers import alerts_delivered
from tests.scaling.live import fill
from tests.scaling.live import reader  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=dt_timezone.utc)


class Loop:
    """Samples every 30 s and checks every 60 s of simulated time against real Redis."""

    def __init__(self, instance, reader, start=T0):
        self.instance, self.reader, self.now = instance, reader, start
        self.outcomes = []

    def run(self, seconds):
        for _ in range(int(seconds // 30)):
            self.now += timedelta(seconds=30)
            samples_collect(due=[(self.instance.pk, self.now)], reader=self.reader, now_fn=lambda: self.now)
            if int((self.now - T0).total_seconds()) % 60 == 0:
                outcome = instance_check_scaling(instance_id=self.instance.pk, now=self.now)
                self.outcomes.append((self.now, outcome))
        return self

    @property
    def plan(self):
        return RedisInstance.objects.get(pk=self.instance.pk).current_plan.plan_name





@pytest.fixture
def queue(plans, heroku, redis_server_factory):
    server = redis_server_factory()
    addon = heroku.add_redis_addon("queue-app", plan="heroku-redis:premium-0", url=server.url)
    instance = make_instance(name="queue", app_name="queue-app", plan="heroku-redis:premium-0",
                             min_plan="heroku-redis:premium-0", max_plan="heroku-redis:premium-3",
                             redis_url=server.url, addon_id=addon["id"], addon_name=addon["name"])
    return instance, server, addon


def test_memory_over_the_threshold_scales_up_through_heroku_and_mails_success(queue, heroku, reader):
    instance, server, addon = queue
    loop = Loop(instance, reader).run(120)
    assert loop.plan == "heroku-redis:premium-0" and heroku.count("PATCH") == 0

    fill(server, 45)  # 90 % of premium-0's 50 MB
    loop.run(180)

    assert heroku.count("PATCH") == 1
    patch = next(c for c in heroku.calls if c.method == "PATCH")
    assert patch.body == {"plan": "heroku-redis:premium-1"}
    assert loop.plan == "heroku-redis:premium-1"
    action = ScalingAction.objects.get(instance=instance, status="succeeded")
    assert action.direction == "up" and "memory" in action.reason and "%" in action.reason
    subjects = [message.subject for message in alerts_delivered()]
    assert any("scaled up to premium-1" in subject for subject in subjects)
    assert any("over threshold" in subject for subject in subjects)
    success = next(m for m in alerts_delivered() if "scaled up" in m.subject)
    assert "queue-app" in success.body and "Monthly cost change: +$15.00" in success.body
    assert f"/admin/scaling/redisinstance/{instance.pk}/change/" in success.body


def test_the_plan_comes_down_after_the_stabilisation_window_and_not_before(queue, heroku, reader):
    instance, server, addon = queue
    fill(server, 45)
    loop = Loop(instance, reader).run(240)
    assert loop.plan == "heroku-redis:premium-1"
    changed_at = RedisInstance.objects.get(pk=instance.pk).plan_changed_at

    server.client().flushall()
    loop.run(10 * 60)
    assert loop.plan == "heroku-redis:premium-1", "down before the 15 min stabilisation window"
    loop.run(12 * 60)

    assert loop.plan == "heroku-redis:premium-0"
    down = ScalingAction.objects.get(instance=instance, direction="down")
    assert down.created_at - changed_at >= timedelta(minutes=15)
    assert heroku.count("PATCH") == 2


def test_a_429_on_the_patch_mails_a_failure_and_a_later_check_succeeds(queue, heroku, reader):
    instance, server, addon = queue
    heroku.fail_next("PATCH", r"/addons/", status=429, headers={"Retry-After": "90"})
    fill(server, 45)
    loop = Loop(instance, reader).run(180)

    failed = ScalingAction.objects.get(instance=instance, status="failed")
    assert "429" in failed.error
    assert any("failed" in m.subject for m in alerts_delivered())
    loop.run(180)
    assert loop.plan == "heroku-redis:premium-1"
    assert heroku.count("PATCH") == 2
    assert ScalingAction.objects.filter(instance=instance, status="succeeded").count() == 1


def test_a_change_heroku_refuses_is_reported_once_and_not_retried_every_minute(queue, heroku, reader):
    instance, server, addon = queue
    heroku.mark_plan_invalid("heroku-redis:premium-1")
    fill(server, 45)
    Loop(instance, reader).run(15 * 60)

    assert heroku.count("PATCH") == 1
    assert ScalingAction.objects.filter(instance=instance, status="failed").count() == 1
    assert sum("failed" in m.subject for m in alerts_delivered()) == 1


def test_at_the_max_plan_one_cannot_scale_alert_is_mailed_not_one_a_minute(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory()
    addon = heroku.add_redis_addon("small-app", plan="heroku-redis:mini", url=server.url)
    instance = make_instance(name="small", app_name="small-app", plan="heroku-redis:mini", min_plan="heroku-redis:mini",
                             max_plan="heroku-redis:mini", redis_url=server.url, addon_id=addon["id"])
    fill(server, 22)  # 88 % of mini's 25 MB
    Loop(instance, reader).run(20 * 60)

    assert heroku.count("PATCH") == 0
    alerts = [m for m in alerts_delivered() if "cannot scale further" in m.subject]
    assert len(alerts) == 1
    assert Notification.objects.filter(instance=instance, kind="cannot-scale").count() == 1


def test_a_dry_run_records_and_mails_would_scale_and_changes_nothing(queue, heroku, reader):
    instance, server, addon = queue
    RedisInstance.objects.filter(pk=instance.pk).update(dry_run=True)
    fill(server, 45)
    loop = Loop(instance, reader).run(300)

    assert heroku.count("PATCH") == 0
    assert loop.plan == "heroku-redis:premium-0"
    assert ScalingAction.objects.filter(instance=instance, status="dry-run").count() == 1  # not one a minute
    would = [m for m in alerts_delivered() if "would scale up" in m.subject]
    assert len(would) == 1


def test_two_checks_of_the_same_instance_act_once(queue, heroku, reader):
    instance, server, addon = queue
    fill(server, 45)
    loop = Loop(instance, reader)
    for _ in range(4):
        loop.now += timedelta(seconds=30)
        samples_collect(due=[(instance.pk, loop.now)], reader=reader, now_fn=lambda: loop.now)
    with claimed_by_another_worker(instance.pk):  # this check stands back
        assert instance_check_scaling(instance_id=instance.pk, now=loop.now).outcome == "busy"
    first = instance_check_scaling(instance_id=instance.pk, now=loop.now)
    second = instance_check_scaling(instance_id=instance.pk, now=loop.now)
    assert first.outcome == "succeeded"
    assert second.outcome == "stay"  # waits for samples on the new plan
    assert heroku.count("PATCH") == 1


def test_a_worker_killed_after_the_patch_is_reconciled_by_the_next_check_not_repeated(queue, heroku, reader):
    instance, server, addon = queue
    fill(server, 45)
    heroku.plan_change_seconds = 3600  # Heroku is still provisioning when the worker dies
    loop = Loop(instance, reader).run(180)
    assert heroku.count("PATCH") == 1
    pending = ScalingAction.objects.get(instance=instance)
    assert pending.status == "pending"

    heroku.addons[addon["id"]]["ready_at"] = 0  # provisioning finished while no worker was looking
    loop.run(60)

    assert heroku.count("PATCH") == 1
    pending.refresh_from_db()
    assert pending.status == "succeeded"
    assert loop.plan == "heroku-redis:premium-1"


def test_a_pending_change_heroku_does_not_show_is_failed_only_once_it_can_no_longer_land(queue, heroku, reader):
    instance, server, addon = queue
    action = ScalingAction.objects.create(
        instance=instance, instance_name=instance.name, created_at=T0, patch_sent_at=T0,
        from_plan=instance.current_plan, to_plan=instance.max_plan, direction="up", reason="test", status="pending",
    )
    # A minute after the PATCH the old plan proves nothing: the PATCH may still be at work.
    assert plan_change_follow(action_id=action.pk, now=T0 + timedelta(minutes=1)).outcome == "pending"
    outcome = plan_change_follow(action_id=action.pk, now=T0 + PATCH_SETTLE)
    assert outcome.outcome == "failed"
    assert heroku.count("PATCH") == 0
    action.refresh_from_db()
    assert "did not reach Heroku" in action.error and action.finished_at >= T0 + PATCH_SETTLE


def test_a_pending_change_never_sent_is_failed_at_once_without_asking_heroku(queue, heroku, reader):
    instance, server, addon = queue
    action = ScalingAction.open(instance=instance, from_plan=instance.current_plan, to_plan=instance.max_plan,
                                direction="up", reason="test", at=T0)
    outcome = plan_change_follow(action_id=action.pk, now=T0 + timedelta(seconds=30))
    assert outcome.outcome == "failed" and "never sent" in outcome.detail
    assert heroku.calls == []


def test_check_scaling_dry_run_command_decides_records_and_changes_nothing(queue, heroku, reader, capsys):
    from django.core.management import call_command
    from django.utils import timezone

    instance, server, addon = queue
    fill(server, 45)
    now = timezone.now()
    for step in range(6):
        samples_collect(due=[(instance.pk, now - timedelta(seconds=30 * step))], reader=reader,
                        now_fn=lambda step=step: now - timedelta(seconds=30 * step))
    call_command("check_scaling", "queue", "--dry-run")
    assert "queue: dry-run: would scale up to heroku-redis:premium-1" in capsys.readouterr().out
    assert heroku.count("PATCH") == 0
    assert ScalingAction.objects.get(instance=instance).status == "dry-run"


def test_check_scaling_names_an_unknown_instance_in_one_line(plans):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no registered instance named nope"):
        call_command("check_scaling", "nope")


def test_a_redis_at_maxclients_that_refuses_our_own_connection_is_scaled_up(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory(maxclients=12)
    addon = heroku.add_redis_addon("storm-app", plan="heroku-redis:premium-0", url=server.url)
    instance = make_instance(name="storm", app_name="storm-app", plan="heroku-redis:premium-0",
                             min_plan="heroku-redis:premium-0", max_plan="heroku-redis:premium-3",
                             redis_url=server.url, addon_id=addon["id"], addon_name=addon["name"])
    loop = Loop(instance, reader)
    for _ in range(4):  # calm, with a fresh connection per sample (as after Heroku's idle timeout)
        reader.close(str(instance.pk))
        loop.run(30)
    storm = []

    def connect_until_full():
        try:
            while True:
                client = server.client()
                client.ping()
                storm.append(client)
        except redis.ConnectionError:  # the server is full now
            pass

    for _ in range(4):
        reader.close(str(instance.pk))
        connect_until_full()  # the app's clients take every slot, ours included
        loop.run(30)

    full = MetricLog.objects.filter(instance=instance, error_kind="server_full")
    assert full.count() >= 3 and "maxclients" in full.first().error
    # Up at once; the real server keeps refusing (its maxclients does not follow the fake's
    # plan), so it may go up again once samples on the new plan show the same.
    assert heroku.count("PATCH") >= 1
    action = ScalingAction.objects.filter(instance=instance).order_by("created_at").first()
    assert action.direction == "up" and "rejected connections" in action.reason
    for client in storm:
        client.close()


def test_a_patch_answered_404_because_the_addon_was_replaced_finds_the_new_one_and_scales_it(queue, heroku, reader):
    instance, server, addon = queue
    # The add-on is replaced (same app and config var, a new id) between samples and the check.
    del heroku.addons[addon["id"]]
    new = heroku.add_redis_addon("queue-app", plan="heroku-redis:premium-0", url=server.url)
    fill(server, 45)
    loop = Loop(instance, reader).run(300)

    failed = ScalingAction.objects.get(instance=instance, status="failed")
    assert "404" in failed.error
    assert str(RedisInstance.objects.get(pk=instance.pk).addon_id) == new["id"]
    assert loop.plan == "heroku-redis:premium-1"
    assert heroku.addons[new["id"]]["plan"] == "heroku-redis:premium-1"
