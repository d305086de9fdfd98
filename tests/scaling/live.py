"""Simulated time against a real Redis, for the live tests: a sample every 30 s and a check
every minute, plan changes through the fake Heroku."""

from datetime import timedelta

import pytest

from scaling.metrics import RedisMetricsReader
from scaling.models import RedisInstance
from scaling.services.checks import instance_check_scaling
from scaling.services.collection import samples_collect

STEP = timedelta(seconds=30)
MIB = 1024 * 1024


def fill(server, megabytes):
    """Real keys until Redis reports `megabytes` MiB in use (allocator overhead included)."""
    client = server.client()
    key = 0
    while client.info("memory")["used_memory"] < megabytes * MIB:
        client.set(f"job:{key}", b"x" * (256 * 1024))
        key += 1


class LiveLoop:
    """`start` on a whole minute; `tick` (e.g. a load's) runs before every step."""

    def __init__(self, instance, reader, *, start, tick=None):
        self.instance, self.reader, self.now, self.tick = instance, reader, start, tick
        self.outcomes = []  # (now, CheckOutcome) of each check
        self.plans = []  # (now, plan) after each check

    def step(self):
        if self.tick is not None:
            self.tick()
        self.now += STEP
        samples_collect(due=[(self.instance.pk, self.now)], reader=self.reader, now_fn=lambda: self.now)
        if self.now.second == 0:
            self.outcomes.append((self.now, instance_check_scaling(instance_id=self.instance.pk, now=self.now)))
            self.plans.append((self.now, self.plan))

    def run(self, seconds):
        for _ in range(int(seconds // STEP.total_seconds())):
            self.step()
        return self

    def run_until(self, hour, minute):
        end = self.now.replace(hour=hour, minute=minute, second=0)
        while self.now < end:
            self.step()
        return self

    @property
    def plan(self):
        return RedisInstance.objects.get(pk=self.instance.pk).current_plan.plan_name


@pytest.fixture
def reader():
    with RedisMetricsReader(connect_timeout=2, read_timeout=2) as reader:
        yield reader
