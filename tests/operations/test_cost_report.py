"""`manage.py cost_report` (operations/cost.py): figures recomputed independently from the
recorded rows agree to the cent, hand changes (adoptions) included."""

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone as dt_timezone
from decimal import ROUND_HALF_UP, Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from logs.models import ScalingAction
from scaling.models import RedisInstance, RedisPlan
from scaling.services.adoption import plan_adopt_if_changed
from tests.factories import make_instance

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
UTC = dt_timezone.utc


def at(day, hour=0, minute=0, second=0):
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


def registered(name, *, created, plan="heroku-redis:premium-0", max_plan="heroku-redis:premium-5"):
    instance = make_instance(name=name, plan=plan, max_plan=max_plan)
    RedisInstance.objects.filter(pk=instance.pk).update(created_at=created)
    instance.refresh_from_db()
    return instance


def change(instance, *, to, finished, status=ScalingAction.Status.SUCCEEDED):
    """A plan change as the check records it: the instance's plan moves only on success."""
    to_plan = RedisPlan.objects.get(plan_name=to)
    from_plan = RedisInstance.objects.get(pk=instance.pk).current_plan
    ScalingAction.objects.create(
        instance=instance, instance_name=instance.name, created_at=finished - timedelta(minutes=2),
        finished_at=finished, from_plan=from_plan, to_plan=to_plan, status=status, reason="test",
        direction="up" if to_plan.mem_limit > from_plan.mem_limit else "down",
    )
    if status == ScalingAction.Status.SUCCEEDED:
        RedisInstance.objects.filter(pk=instance.pk).update(current_plan=to_plan)


def recompute(instance, since, until):
    """Independently: walk the succeeded rows, price each second at monthly / 2,592,000."""
    rows = list(ScalingAction.objects.filter(instance=instance, status="succeeded").order_by("finished_at"))
    plan = rows[0].from_plan if rows else instance.current_plan
    moment, cost, seconds_by_plan = instance.created_at, Decimal(0), {}
    for row in rows + [None]:
        end = row.finished_at if row else until
        lo, hi = max(moment, since), min(end, until)
        if hi > lo:
            seconds = Decimal((hi - lo).total_seconds()).quantize(Decimal("0.000001"))
            cost += plan.cost * seconds / 2592000
            seconds_by_plan[plan] = seconds_by_plan.get(plan, 0) + seconds
        if row:
            plan, moment = row.to_plan, row.finished_at
    total = sum(seconds_by_plan.values())
    highest = max(seconds_by_plan, key=lambda p: (p.mem_limit, p.cost))
    max_cost = RedisInstance.objects.get(pk=instance.pk).max_plan.cost * total / 2592000
    return {
        "cost": cost.quantize(Decimal("0.01"), ROUND_HALF_UP),
        "cost_at_max_plan": max_cost.quantize(Decimal("0.01"), ROUND_HALF_UP),
        "cost_at_highest_plan": (highest.cost * total / 2592000).quantize(Decimal("0.01"), ROUND_HALF_UP),
        "savings": (max_cost - cost).quantize(Decimal("0.01"), ROUND_HALF_UP),
        "highest_plan": highest.plan_name,
    }


def run_json(*args):
    out = StringIO()
    call_command("cost_report", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_costs_agree_with_the_recorded_timeline_to_the_cent_hand_changes_included(plans):
    orders = registered("orders", created=at(1, 9, 30, 15))
    change(orders, to="heroku-redis:premium-2", finished=at(3, 14, 0, 7))
    change(orders, to="heroku-redis:premium-5", finished=at(4, 1), status=ScalingAction.Status.FAILED)
    change(orders, to="heroku-redis:premium-1", finished=at(10, 23, 59, 59))
    # Changed by hand on Heroku to premium-3, noticed and adopted by the reconciliation.
    orders.refresh_from_db()
    assert plan_adopt_if_changed(instance=orders, plan=plans["heroku-redis:premium-3"], now=at(20, 12), found_by="test")
    change(orders, to="heroku-redis:premium-0", finished=at(25, 6, 45))
    steady = registered("steady", created=datetime(2025, 12, 1, tzinfo=UTC), plan="heroku-redis:premium-1")
    late = registered("late", created=at(28, 18), plan="heroku-redis:mini")
    registered("after", created=datetime(2026, 2, 3, tzinfo=UTC))

    report = run_json("--since", "2026-01-01", "--until", "2026-01-31")

    since, until = at(1), datetime(2026, 2, 1, tzinfo=UTC)
    by_name = {row["instance"]: row for row in report["instances"]}
    assert sorted(by_name) == ["late", "orders", "steady"]
    for instance in (orders, steady, late):
        expected = recompute(RedisInstance.objects.get(pk=instance.pk), since, until)
        row = by_name[instance.name]
        for key in ("cost", "cost_at_max_plan", "cost_at_highest_plan", "savings"):
            assert Decimal(str(row[key])) == expected[key], (instance.name, key)
        assert row["highest_plan"] == expected["highest_plan"]
    assert [p["plan"] for p in by_name["orders"]["plans"]] == [
        "heroku-redis:premium-0", "heroku-redis:premium-2", "heroku-redis:premium-1",
        "heroku-redis:premium-3", "heroku-redis:premium-0"]
    assert by_name["orders"]["highest_plan"] == "heroku-redis:premium-3"
    assert report["seconds_per_month"] == 2592000
    for period in by_name["orders"]["plans"]:
        assert Decimal(str(period["monthly_price"])) == plans[period["plan"]].cost
    assert set(report["totals"]) == {"cost", "cost_at_max_plan", "cost_at_highest_plan", "savings", "savings_vs_highest"}
    assert abs(report["totals"]["cost"] - sum(row["cost"] for row in report["instances"])) <= 0.02


def test_a_whole_30_day_stay_costs_the_monthly_price(plans):
    instance = registered("steady", created=datetime(2025, 12, 1, tzinfo=UTC), plan="heroku-redis:premium-2",
                          max_plan="heroku-redis:premium-5")
    report = run_json("--since", "2026-01-01", "--until", "2026-01-30")
    row = report["instances"][0]
    assert Decimal(str(row["cost"])) == instance.current_plan.cost
    assert Decimal(str(row["cost_at_max_plan"])) == instance.max_plan.cost
    assert row["savings"] == float(instance.max_plan.cost - instance.current_plan.cost)


def test_the_default_window_is_this_month_so_far(plans):
    now = timezone.now()
    registered("orders", created=now - timedelta(days=400))
    report = run_json()
    assert report["since"] == now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).isoformat()
    assert report["instances"][0]["seconds"] > 0


def test_the_text_report_has_a_row_per_instance_and_totals(plans):
    registered("orders", created=at(1))
    out = StringIO()
    call_command("cost_report", "--since", "2026-01-01", "--until", "2026-01-02", stdout=out)
    text = out.getvalue()
    assert "orders" in text and "total" in text and "$" in text


@pytest.mark.parametrize("args, says", [
    (["--since", "2026-13-01"], "'2026-13-01' is not a date"),
    (["--until", "yesterday"], "'yesterday' is not a date"),
    (["--since", "2026-02-01", "--until", "2026-01-01"], "the window is empty"),
])
def test_a_bad_date_is_one_line_and_a_non_zero_exit(args, says):
    result = subprocess.run(
        [sys.executable, "manage.py", "cost_report", *args], cwd=ROOT, capture_output=True, text=True,
        env={"DJANGO_SETTINGS_MODULE": "autoscaler.test_settings", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and says in result.stderr
    assert "Traceback" not in result.stderr


def test_a_window_before_a_change_prices_the_plan_it_was_on_then_not_the_current_one(plans):
    orders = registered("orders", created=at(1), plan="heroku-redis:premium-0")
    change(orders, to="heroku-redis:premium-5", finished=at(20))

    row = run_json("--since", "2026-01-02", "--until", "2026-01-11")["instances"][0]

    assert [p["plan"] for p in row["plans"]] == ["heroku-redis:premium-0"]
    assert Decimal(str(row["cost"])) == recompute(RedisInstance.objects.get(pk=orders.pk), at(2), at(12))["cost"]
