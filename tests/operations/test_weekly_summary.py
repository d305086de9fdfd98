"""The weekly summary mail (operations/weekly_summary.py): off by default, once per week."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django_celery_beat.models import PeriodicTask

from logs.models import MetricLog, ScalingAction
from notifications.models import Notification
from operations import tasks
from operations.weekly_summary import week_bounds, weekly_summary_send
from scaling.models import RedisInstance, RedisPlan
from scaling.services.periodic import periodic_tasks_setup
from tests.factories import make_instance
from tests.helpers import alerts_delivered

pytestmark = pytest.mark.django_db
UTC = dt_timezone.utc
MONDAY = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # a Monday
WEEK_START = datetime(2026, 11, 23, tzinfo=UTC)


def test_the_week_is_the_last_whole_monday_to_monday_in_utc():
    assert week_bounds(MONDAY) == (WEEK_START, datetime(2026, 11, 30, tzinfo=UTC))
    assert week_bounds(datetime(2026, 12, 6, 23, 59, tzinfo=UTC)) == (WEEK_START, datetime(2026, 11, 30, tzinfo=UTC))


def test_no_summary_is_mailed_by_default(plans, settings):
    assert settings.WEEKLY_SUMMARY is False
    assert weekly_summary_send(now=MONDAY).sent is False
    assert alerts_delivered() == []


def week_of(instance):
    RedisInstance.objects.filter(pk=instance.pk).update(created_at=WEEK_START - timedelta(days=30))
    # 10 samples a minute apart on Tuesday, 3 of them over the 80 % memory threshold.
    tuesday = WEEK_START + timedelta(days=1)
    MetricLog.objects.bulk_create([
        MetricLog(instance=instance, plan=instance.current_plan, slot=tuesday + timedelta(minutes=i),
                  collected_at=tuesday + timedelta(minutes=i), used_memory=1, memory_pct=90.0 if i < 3 else 50.0,
                  connection_pct=10.0)
        for i in range(10)
    ])
    premium_1 = RedisPlan.objects.get(plan_name="heroku-redis:premium-1")
    ScalingAction.objects.create(
        instance=instance, instance_name=instance.name, created_at=tuesday, finished_at=tuesday + timedelta(minutes=3),
        from_plan=instance.current_plan, to_plan=premium_1, direction="up", status="succeeded", reason="memory",
    )
    Notification.objects.create(instance=instance, kind="breach", fingerprint="x", subject="s", body="b",
                                recipients="ops@example.com", created_at=tuesday)


def test_the_summary_gives_each_instance_its_changes_breaching_time_alerts_cost_and_savings(plans, settings):
    settings.WEEKLY_SUMMARY = True
    orders = make_instance(name="orders", metric_rate=60)
    week_of(orders)

    assert weekly_summary_send(now=MONDAY).sent is True

    [message] = alerts_delivered()
    assert "weekly summary 2026-11-23 to 2026-11-29" in message.subject
    line = next(line for line in message.body.splitlines() if line.startswith("orders"))
    assert "1 up / 0 down" in line and "breaching 3 min" in line and "1 alert(s)" in line
    assert "cost $" in line and "saved $" in line
    assert Notification.objects.filter(kind=Notification.Kind.WEEKLY_SUMMARY, sent_at__isnull=False).count() == 1


def test_the_summary_is_mailed_once_per_week_however_often_the_task_runs(plans, settings):
    settings.WEEKLY_SUMMARY = True
    make_instance(name="orders")
    assert weekly_summary_send(now=MONDAY).sent is True
    assert weekly_summary_send(now=MONDAY + timedelta(hours=1)).sent is False
    assert weekly_summary_send(now=MONDAY + timedelta(days=7)).sent is True
    assert len(alerts_delivered()) == 2


def test_the_hourly_task_is_in_the_beat_schedule_and_sends_through_the_service(plans, settings):
    periodic_tasks_setup()
    assert PeriodicTask.objects.filter(task="operations.weekly_summary").exists()
    settings.WEEKLY_SUMMARY = True
    assert tasks.weekly_summary()["sent"] is True
    assert len(alerts_delivered()) == 1
