"""Following a plan change is its own task: the check sends the PATCH and returns; the
follow task looks at the add-on every PLAN_FOLLOW_SECONDS until Heroku shows the new plan.
No worker waits for Heroku, and each step of the change is stamped when it happens."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from logs.models import MetricLog, ScalingAction
from scaling import tasks
from scaling.models import RedisInstance
from scaling.services.checks import instance_check_scaling, plan_change_follow
from tests.claims import claimed_by_another_worker
from tests.factories import make_instance
from tests.helpers import alerts_delivered

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024
UP = "heroku-redis:premium-1"


@pytest.fixture
def breaching(plans, heroku):
    """An instance at 90 % of premium-0 for three minutes up to `start`, Heroku taking a
    while to provision a new plan."""
    start = timezone.now().replace(microsecond=0)
    addon = heroku.add_redis_addon("queue-app", plan="heroku-redis:premium-0")
    instance = make_instance(name="queue", plan="heroku-redis:premium-0", min_plan="heroku-redis:premium-0",
                             max_plan="heroku-redis:premium-3", addon_id=addon["id"], addon_name=addon["name"])
    for step in range(7):
        at = start - timedelta(seconds=30 * step)
        MetricLog.objects.create(instance=instance, slot=at, collected_at=at, plan=instance.current_plan,
                                 used_memory=45 * MIB, connected_clients=5, evicted_keys=0, rejected_connections=0,
                                 memory_pct=90.0)
    heroku.plan_change_seconds = 3600  # provisioning until the test says it is done
    instance.addon, instance.start = addon, start
    return instance


def _provisioned(heroku, instance):
    heroku.addons[instance.addon["id"]]["ready_at"] = 0


def test_the_check_sends_the_patch_and_leaves_the_provisioning_to_the_follow_task(breaching, heroku):
    scheduled = []
    outcome = instance_check_scaling(instance_id=breaching.pk, now=breaching.start, follow_later=scheduled.append)

    action = ScalingAction.objects.get(instance=breaching)
    assert outcome.outcome == "pending" and action.status == "pending"
    assert scheduled == [action.pk]
    assert [call.method for call in heroku.calls] == ["PATCH"]  # no look at the add-on inside the check

    looked_at = breaching.start + timedelta(seconds=20)
    outcome = plan_change_follow(action_id=action.pk, now=looked_at, follow_later=scheduled.append)
    assert outcome.outcome == "pending" and scheduled == [action.pk, action.pk]

    _provisioned(heroku, breaching)
    done_at = breaching.start + timedelta(seconds=40)
    outcome = plan_change_follow(action_id=action.pk, now=done_at, follow_later=scheduled.append)

    assert outcome.outcome == "succeeded" and scheduled == [action.pk, action.pk]
    assert heroku.count("PATCH") == 1
    action.refresh_from_db()
    stored = RedisInstance.objects.get(pk=breaching.pk)
    assert stored.current_plan.plan_name == UP and stored.plan_changed_at == action.finished_at
    # Each step stamped when it happened, not all with the check's `now`.
    assert action.created_at == breaching.start < action.patch_sent_at < looked_at
    assert done_at <= action.finished_at < done_at + timedelta(seconds=5)
    assert len([m for m in alerts_delivered() if "scaled up to premium-1" in m.subject]) == 1


def test_a_follow_of_a_change_already_completed_does_nothing(breaching, heroku):
    instance_check_scaling(instance_id=breaching.pk, now=breaching.start)
    action = ScalingAction.objects.get(instance=breaching)
    _provisioned(heroku, breaching)
    assert plan_change_follow(action_id=action.pk, now=breaching.start + timedelta(seconds=20)).outcome == "succeeded"
    calls, mails = len(heroku.calls), len(alerts_delivered())

    again = plan_change_follow(action_id=action.pk, now=breaching.start + timedelta(seconds=40))

    assert again.outcome == "followed" and len(heroku.calls) == calls and len(alerts_delivered()) == mails


def test_a_follow_while_the_instance_is_being_checked_comes_back_later_without_asking_heroku(breaching, heroku):
    instance_check_scaling(instance_id=breaching.pk, now=breaching.start)
    action = ScalingAction.objects.get(instance=breaching)
    scheduled, calls = [], len(heroku.calls)

    with claimed_by_another_worker(breaching.pk):
        outcome = plan_change_follow(action_id=action.pk, now=breaching.start + timedelta(seconds=20),
                                     follow_later=scheduled.append)

    assert outcome.outcome == "pending" and scheduled == [action.pk]
    assert len(heroku.calls) == calls
    action.refresh_from_db()
    assert action.status == "pending"


def test_the_check_task_schedules_the_follow_task_every_plan_follow_seconds(breaching, heroku, monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.follow_plan_change, "apply_async", lambda **options: sent.append(options))

    tasks.check_instance(breaching.pk, breaching.start.isoformat())
    action = ScalingAction.objects.get(instance=breaching)
    assert sent == [{"args": [action.pk], "countdown": settings.PLAN_FOLLOW_SECONDS}]

    tasks.follow_plan_change(action.pk)  # still provisioning: scheduled again
    assert sent[-1] == {"args": [action.pk], "countdown": settings.PLAN_FOLLOW_SECONDS} and len(sent) == 2
    _provisioned(heroku, breaching)
    tasks.follow_plan_change(action.pk)

    action.refresh_from_db()
    assert action.status == "succeeded" and len(sent) == 2
    assert heroku.count("PATCH") == 1


def test_a_check_of_an_instance_with_a_change_in_flight_looks_without_starting_another_follow(breaching, heroku):
    scheduled = []
    instance_check_scaling(instance_id=breaching.pk, now=breaching.start, follow_later=scheduled.append)
    action = ScalingAction.objects.get(instance=breaching)
    assert scheduled == [action.pk]

    outcome = instance_check_scaling(instance_id=breaching.pk, now=breaching.start + timedelta(minutes=1),
                                     follow_later=scheduled.append)

    assert outcome.outcome == "pending" and scheduled == [action.pk]  # still one chain of follows
    assert [call.method for call in heroku.calls] == ["PATCH", "GET"]
