"""The weekly summary mail (WEEKLY_SUMMARY=true): the past week, Monday to Monday UTC.

Per instance: plan changes (succeeded, adoptions included), time breaching (each sample over
a threshold counts its metric rate), alerts mailed, cost and savings (operations.cost). Sent
once per week: the week is claimed on the `weekly_summary` heartbeat by compare-and-set, so
an hourly task run twice, or by two workers, mails once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, F, Q

from logs.models import MetricLog, ScalingAction
from notifications.models import Notification
from notifications.services import summary_send
from operations.cost import cents, cost_report_build
from operations.cost_text import unconfirmed_prices_lines
from operations.heartbeats import WEEKLY_SUMMARY
from operations.models import Heartbeat
from scaling.models import RedisInstance

NEVER = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)


@dataclass(frozen=True)
class WeeklySummaryResult:
    sent: bool
    reason: str


def week_bounds(now):
    """The last whole week before `now`: (Monday 00:00 UTC a week ago, this Monday 00:00 UTC)."""
    today = now.astimezone(dt_timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    end = today - timedelta(days=today.weekday())
    return end - timedelta(days=7), end


def _claim_week(week_end):
    Heartbeat.objects.bulk_create([Heartbeat(name=WEEKLY_SUMMARY, at=NEVER)], ignore_conflicts=True)
    return bool(Heartbeat.objects.filter(name=WEEKLY_SUMMARY, at__lt=week_end).update(at=week_end))


def _fmt_duration(seconds):
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def weekly_summary_lines(*, since, until):
    cost_report = cost_report_build(since=since, until=until)
    report = {row.instance: row for row in cost_report.instances}
    window = {"collected_at__gte": since, "collected_at__lt": until}
    breaching = dict(
        MetricLog.objects.filter(instance__isnull=False, error="", **window)
        .filter(Q(memory_pct__gt=F("instance__memory_threshold")) | Q(connection_pct__gt=F("instance__connection_threshold")))
        .values("instance_id").annotate(n=Count("pk")).values_list("instance_id", "n")
    )
    changes = {}
    for instance_id, direction, n in (
        ScalingAction.objects.filter(status=ScalingAction.Status.SUCCEEDED, finished_at__gte=since, finished_at__lt=until)
        .values("instance_id", "direction").annotate(n=Count("pk")).values_list("instance_id", "direction", "n")
    ):
        changes.setdefault(instance_id, {})[direction] = n
    alerts = dict(
        Notification.objects.filter(instance__isnull=False, created_at__gte=since, created_at__lt=until)
        .values("instance_id").annotate(n=Count("pk")).values_list("instance_id", "n")
    )
    lines = [f"The week from {since:%Y-%m-%d} to {until - timedelta(seconds=1):%Y-%m-%d} (UTC).", ""]
    total_cost = total_savings = Decimal(0)
    for instance in RedisInstance.objects.filter(created_at__lt=until).order_by("name"):
        moved = changes.get(instance.pk, {})
        cost = report.get(instance.name)
        lines.append(
            f"{instance.name} ({instance.app_name}): "
            f"{moved.get('up', 0)} up / {moved.get('down', 0)} down, "
            f"breaching {_fmt_duration(breaching.get(instance.pk, 0) * instance.metric_rate)}, "
            f"{alerts.get(instance.pk, 0)} alert(s), "
            + (f"cost ${cents(cost.cost)}, saved ${cents(cost.savings)} against {cost.max_plan}" if cost else "no cost")
        )
        if cost:
            total_cost += cost.cost
            total_savings += cost.savings
    if len(lines) == 2:
        lines.append("No instance is registered.")
    lines += ["", f"Total: cost ${cents(total_cost)}, saved ${cents(total_savings)}."]
    return lines + unconfirmed_prices_lines(cost_report)


def weekly_summary_send(*, now):
    if not settings.WEEKLY_SUMMARY:
        return WeeklySummaryResult(False, "WEEKLY_SUMMARY is off")
    since, until = week_bounds(now)
    if not _claim_week(until):
        return WeeklySummaryResult(False, f"the week to {until:%Y-%m-%d} was already summarised")
    summary_send(
        kind=Notification.Kind.WEEKLY_SUMMARY, fingerprint=f"weekly-summary:{since:%Y-%m-%d}",
        subject=f"weekly summary {since:%Y-%m-%d} to {until - timedelta(seconds=1):%Y-%m-%d}",
        lines=weekly_summary_lines(since=since, until=until), now=now,
    )
    return WeeklySummaryResult(True, "sent")
