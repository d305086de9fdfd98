"""A schedule through the live loop: samples of a real Redis every 30 s and a check every
minute of simulated time, plan changes through the fake Heroku (tests/scaling/live.py's
LiveLoop). The plan is up before the window opens and comes down after it by the down rules."""

from datetime import datetime, timezone

import pytest

from logs.models import ScalingAction
from tests.factories import make_instance
from tests.scaling.live import LiveLoop, reader  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

START = datetime(2026, 11, 30, 5, 30, tzinfo=timezone.utc)  # a Monday


def test_a_scheduled_plan_is_up_before_the_window_and_comes_down_after_it(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory()
    addon = heroku.add_redis_addon("batch-app", plan="heroku-redis:premium-0", url=server.url)
    instance = make_instance(name="batch", app_name="batch-app", plan="heroku-redis:premium-0",
                             min_plan="heroku-redis:premium-0", max_plan="heroku-redis:premium-3",
                             redis_url=server.url, addon_id=addon["id"], addon_name=addon["name"],
                             schedules=["mon-fri 06:00-06:30 Europe/London heroku-redis:premium-2"],
                             schedule_lead_minutes=10)
    loop = LiveLoop(instance, reader, start=START)

    loop.run_until(5, 46)
    assert heroku.count("PATCH") == 0 and loop.plan == "heroku-redis:premium-0"  # a quiet Redis stays put
    loop.run_until(5, 50)
    # Raised at 05:47 (10 min lead + 1 min check + 2 min change time before 06:00), up by 05:50.
    assert heroku.count("PATCH") == 1 and loop.plan == "heroku-redis:premium-2"
    up = ScalingAction.objects.get(instance=instance, direction="up")
    assert up.created_at == START.replace(hour=5, minute=47) and up.status == "succeeded"
    assert up.reason.startswith("the schedule 'mon-fri 06:00-06:30 Europe/London heroku-redis:premium-2' asks for "
                                "at least heroku-redis:premium-2 from 2026-11-30 06:00 UTC")

    loop.run_until(6, 29)
    # Held through the window although the load is tiny.
    assert heroku.count("PATCH") == 1 and loop.plan == "heroku-redis:premium-2"

    loop.run_until(6, 35)
    # After the window the ordinary down rules (15 quiet minutes observed, peak with margin) bring it down.
    assert heroku.count("PATCH") == 2 and loop.plan == "heroku-redis:premium-0"
    down = ScalingAction.objects.get(instance=instance, direction="down")
    assert down.created_at == START.replace(hour=6, minute=30) and "every metric stayed under its threshold" in down.reason
