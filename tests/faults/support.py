"""What the fault suite shares: a Redis that answers INFO as told, the scaling loop in
simulated time over several instances, and the checks that every fault case makes.

Every case runs a faulty instance next to a healthy one in the same collection batch and
the same loop, and asserts what was stored (MetricLog, ScalingAction, Notification rows
and their error texts), what was mailed (django.core.alerts_delivered()) and what was sent to
Heroku (the fake's `calls`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone as dt_timezone


from logs.models import MetricLog
from scaling.models import RedisInstance
from scaling.services.checks import instance_check_scaling
from scaling.services.collection import samples_collect
from scaling.services.heroku_access import heroku_client
from tests.factories import make_instance
from tests.helpers import alerts_delivered
from standins.fake_redis import FakeServer, bulk

MIB = 1024 * 1024
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=dt_timezone.utc)
BUSY = 45 * MIB  # 90 % of premium-0's 50 MB: the engine scales up to premium-1
CALM = 10 * MIB  # 20 % of premium-0


# --- A Redis that says what it is told --------------------------------------------------


def info_text(fields):
    return "".join(f"{name}:{value}\r\n" for name, value in fields.items())


class InfoServer(FakeServer):
    """A stand-in Redis whose INFO says what it is told.

    `fields`: the INFO fields answered (change them between samples). `text`: an INFO body
    sent verbatim instead; `raw`: bytes sent verbatim as the whole reply. `silent`: accept
    connections and never answer (a Redis slower than any read timeout).
    """

    def __init__(self, used_memory=CALM, connected_clients=5, **fields):
        self.fields = {
            "used_memory": used_memory, "maxmemory": 50 * MIB, "connected_clients": connected_clients,
            "maxclients": 40, "evicted_keys": 0, "rejected_connections": 0, "instantaneous_ops_per_sec": 120,
        }
        self.fields.update(fields)
        self.text = None
        self.raw = None
        self.silent = False
        self.on_info = None  # called (in the server's thread) before each INFO is answered
        super().__init__(respond=self._reply, backlog=64)

    def set_memory(self, used_memory):
        self.fields["used_memory"] = used_memory

    def _reply(self, args):
        if self.silent:
            return None
        command = args[0].upper() if args else b""
        if command == b"INFO":
            if self.on_info is not None:
                self.on_info()
            if self.raw is not None:
                return self.raw
            return bulk(self.text if self.text is not None else info_text(self.fields))
        if command == b"PING":
            return b"+PONG\r\n"
        return b"+OK\r\n"


def register(heroku, name, url, *, heroku_url=None, plan="heroku-redis:premium-0", min_plan=None,
             max_plan="heroku-redis:premium-3", metric_rate=30, **fields):
    """An instance as registration leaves it: add-on id, plan and URL known, resolved an hour
    ago; sampled every 30 s and checked every minute, as the Loop drives it. `heroku_url`:
    what the add-on's config var holds now, if not `url`."""
    addon = heroku.add_redis_addon(f"{name}-app", plan=plan, config_var="REDIS_URL", url=heroku_url or url)
    instance = make_instance(
        name=name, app_name=f"{name}-app", plan=plan, min_plan=min_plan or plan, max_plan=max_plan,
        redis_url=url, addon_id=addon["id"], addon_name=addon["name"], resolved_at=T0 - timedelta(hours=1),
        metric_rate=metric_rate, scaling_rate=60, **fields,
    )
    instance.addon = addon
    return instance


# --- The loop in simulated time ---------------------------------------------------------


class Loop:
    """What the dispatcher drives, in simulated time: every 30 s one collection batch with a
    sample of every instance, every 60 s a scaling check of each instance. The fake Heroku
    and the app's Heroku client are put on the same simulated clock, so that back-off
    windows, the rate-limit refill and provisioning delays pass in simulated time."""

    def __init__(self, instances, reader, *, heroku=None, start=T0, between_tasks=None):
        self.instances = list(instances)
        self.reader = reader
        self.between_tasks = between_tasks or (lambda: None)  # what a worker does around each task
        self.now = start
        self.slots = 0
        self.collect_seconds = []
        self.outcomes = defaultdict(list)  # instance name -> [(now, CheckOutcome)]
        if heroku is not None:
            heroku.clock = self.monotonic
            heroku._tokens_at = self.monotonic()
            heroku_client().clock = self.monotonic

    def monotonic(self):
        return 10_000.0 + (self.now - T0).total_seconds()

    def collect(self):
        self.between_tasks()
        started = time.monotonic()
        result = samples_collect(due=[(i.pk, self.now) for i in self.instances], reader=self.reader,
                                 now_fn=lambda: self.now)
        self.collect_seconds.append(time.monotonic() - started)
        self.slots += 1
        return result

    def check(self, instance):
        self.between_tasks()
        outcome = instance_check_scaling(instance_id=instance.pk, now=self.now)
        self.outcomes[instance.name].append((self.now, outcome))
        return outcome

    def step(self, before_checks=None):
        self.now += timedelta(seconds=30)
        self.collect()
        if before_checks is not None:
            before_checks()
        if self.slots % 2 == 0:
            for instance in self.instances:
                self.check(instance)

    def run(self, seconds):
        for _ in range(int(seconds // 30)):
            self.step()
        return self

    def outcome_names(self, instance):
        return [outcome.outcome for _, outcome in self.outcomes[instance.name]]


# --- What every case checks -------------------------------------------------------------


def samples(instance):
    return list(MetricLog.objects.filter(instance=instance).order_by("slot"))


def assert_every_slot_sampled(loop, instance):
    """No lost sample: one stored row (a reading or the reason there is none) per slot."""
    slots = list(MetricLog.objects.filter(instance=instance).order_by("slot").values_list("slot", flat=True))
    assert len(slots) == loop.slots, f"{instance.name}: {len(slots)} samples stored for {loop.slots} slots"
    assert len(set(slots)) == len(slots)


def assert_healthy(loop, instance, *, plan="heroku-redis:premium-0", outcomes=("stay",)):
    """The healthy neighbour: every sample taken and good, its checks ordinary."""
    assert_every_slot_sampled(loop, instance)
    bad = [(log.slot, log.error) for log in samples(instance) if not log.ok]
    assert not bad, f"{instance.name} lost samples to its neighbour's fault: {bad[:3]}"
    assert set(loop.outcome_names(instance)) <= set(outcomes), loop.outcomes[instance.name]
    assert RedisInstance.objects.get(pk=instance.pk).current_plan.plan_name == plan
    assert not [m.subject for m in alerts_delivered() if m.subject.split("] ", 1)[-1].startswith(f"{instance.name}:")
                and ("unreachable" in m.subject or "failed" in m.subject)]


def mails_about(instance, containing=""):
    return [m for m in alerts_delivered()
            if m.subject.split("] ", 1)[-1].startswith(f"{instance.name}:") and containing in m.subject]


def patches(heroku, instance):
    return heroku.count("PATCH", rf"^/apps/{instance.app_name}/")


def calls_for(heroku, instance):
    return [(c.method, c.path) for c in heroku.calls if c.path.startswith(f"/apps/{instance.app_name}/")]
