"""A schedule through the live loop: samples of a real Redis every 30 s and a check every
minute of simulated time, plan changes through the fake Heroku (tests/scaling/test_reconcile.py's
Loop). The plan is up before the window opens and comes down after it by the down rules."""

from datetime import datetime, timedelta, timezone

import pytest

from logs.models import ScalingAction
from scaling.metrics import RedisMetricsReader
from scaling.models import RedisInstance
from scaling.services.checks import instance_check_scaling
from scaling.services.collection import samples_collect
from tests.factories import make_instance

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

START = datetime(2026, 11, 30, 5, 30, tzinfo=timezone.utc)  # a Monday


class Loop:
    def __init__(self, instance, reader, start=START):
        self.instance, self.reader, self.now = instance, reader, start
        self.plans = []  # (now, plan) after each check

    def run_until(self, hour, minute):
        end = self.now.replace(hour=hour, minute=minute, second=0)
        while self.now < end:
            self.now += timedelta(seconds=30)
            samples_collect(due=[(self.instance.pk, self.now)], reader=self.reader, now_fn=lambda: self.now)
            if self.now.second == 0:
                instance_check_scaling(instance_id=self.instance.pk, now=self.now)
                self.plans.append((self.now, self.plan))
        return self

    @property
    def plan(self):
        return RedisInstance.objects.get(pk=self.instance.pk).current_plan.plan_name


@pytest.fixture
def reader():
    with RedisMetricsReader(connect_timeout=2, read_timeout=2) as reader:
        yield reader


def test_a_scheduled_plan_is_up_before_the_window_and_comes_down_after_it(plans, heroku, redis_server_factory, reader):
    server = redis_server_factory()
    addon = heroku.add_redis_addon("batch-app", plan="heroku-redis:premium-0", url=server.url)
    instance = make_instance(name="batch", app_name="batch-app", plan="heroku-redis:premium-0",
                             min_plan="heroku-redis:premium-0", max_plan="heroku-redis:premium-3",
                             redis_url=server.url, addon_id=addon["id"], addon_name=addon["name"],
                             schedules=["mon-fri 06:00-06:30 Europe/London heroku-redis:premium-2"],
                             schedule_lead_minutes=10)
    loop = Loop(instance, reader)

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
