"""One way into the scaling engine: its policy, plan ladder and samples, built from the
app's records.

The live check (``scaling.services.checks``) and the offline simulation
(``scaling.services.simulate``) both call these, so what the engine sees offline is what
it sees in production:

- ``engine_policy(instance)``: the thresholds and scaling rate of an instance (the
  simulation describes its options as an unsaved instance);
- ``engine_ladder(plan)`` and ``engine_plan(plan)``: the plans an add-on can move between;
  ``engine_plans_by_name()`` and ``engine_ladder_named(name, plans)``: every known plan, from
  the database or, on a fresh clone with none loaded, from the bundled plan data;
- ``engine_samples(logs)``: stored samples as the engine reads them, and
  ``instance_engine_samples(instance, policy=, now=)`` those of an instance's look-back;
- ``instance_engine_period_ago(instance, policy=, now=)``: the peaks of its stored samples
  one pattern period ago (rule ``daily_pattern``);
- ``instance_engine_decide(instance=, now=)``: all of it put together, the live check's
  decision;
- ``METRIC_RATES`` and ``SCALING_RATES``: the rates an instance may have, by their labels
  (defined once, by the model's choices).
"""

import time
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Max

from logs.models import MetricLog
from scaling import engine
from scaling.models import RedisInstance, RedisPlan
from scaling.services.collection import SERVER_FULL
from scaling.services.plans import DEFAULT_PLANS_CSV, plan_family, plan_ladder, plan_name_family, plan_rows_parse

METRIC_RATES = {label: seconds for seconds, label in RedisInstance.MetricRate.choices}  # "30s" -> 30
SCALING_RATES = {label: seconds for seconds, label in RedisInstance.ScalingRate.choices}  # "1m" -> 60

ENGINE_LADDER_TTL = 60.0  # seconds; plan data changes by hand, rarely
_engine_ladders = {}


def engine_policy(instance):
    """The engine's policy for an instance (saved or not): its thresholds, scaling rate and
    schedules."""
    return engine.Policy(
        memory_threshold=instance.memory_threshold,
        connection_threshold=instance.connection_threshold,
        scaling_interval=timedelta(seconds=instance.scaling_rate),
        schedules=instance.parsed_schedules,
        schedule_lead=timedelta(minutes=instance.schedule_lead_minutes),
        workload=instance.workload,
        min_hit_rate=instance.min_hit_rate,
        scale_down=instance.scale_down_enabled,
    )


def engine_plan(plan):
    """A stored plan as the engine sees it (memory in bytes, unlimited connections as None)."""
    return engine.Plan.from_limits(plan.plan_name, plan.mem_limit, plan.conn_limit, float(plan.cost))


def engine_ladder(plan, *, clock=None):
    """The engine's view of `plan`'s ladder, kept per process for a minute (checks run often)."""
    now = (clock or time.monotonic)()
    key = (plan.service_name, plan_family(plan))
    cached = _engine_ladders.get(key)
    if cached is None or now - cached[0] > ENGINE_LADDER_TTL:
        cached = (now, tuple(engine_plan(candidate) for candidate in plan_ladder(plan=plan)))
        _engine_ladders[key] = cached
    return cached[1]


def engine_ladders_forget():
    """Drop the kept ladders (the plan data changed)."""
    _engine_ladders.clear()


def engine_plans_by_name():
    """Every known plan: name -> (service, ladder family, engine plan). From the database;
    from the bundled plan data where the database has none (a fresh clone, offline)."""
    try:
        plans = list(RedisPlan.objects.all())
    except DatabaseError:
        plans = []
    if plans:
        return {plan.plan_name: (plan.service_name, plan_family(plan), engine_plan(plan)) for plan in plans}
    rows = plan_rows_parse(text=DEFAULT_PLANS_CSV.read_text())
    return {
        row.plan_name: (row.service_name, plan_name_family(row.plan_name),
                        engine.Plan.from_limits(row.plan_name, row.mem_limit, row.conn_limit, float(row.cost)))
        for row in rows
    }


def engine_ladder_named(plan_name, plans_by_name):
    """The ladder of a plan among ``engine_plans_by_name()``: its provider's plans of its family."""
    service, family, _ = plans_by_name[plan_name]
    return [plan for s, f, plan in plans_by_name.values() if (s, f) == (service, family)]


def plan_range_position(*, plan, min_plan, max_plan):
    """'below' or 'above' when `plan` lies outside min_plan..max_plan in the engine's ladder
    order, else None."""
    position = engine.ladder_position
    if position(engine_plan(plan)) < position(engine_plan(min_plan)):
        return "below"
    if position(engine_plan(plan)) > position(engine_plan(max_plan)):
        return "above"
    return None


def engine_samples(logs):
    """The engine's samples from stored ones (MetricLog rows with their plan, oldest first).

    A read refused because Redis is at maxclients is what the app's own clients meet too:
    it becomes a sample at the connection limit with one more rejected connection (and the
    last known memory), so the engine sees data drop and scales up, instead of a failed
    read that it would ignore. Without an earlier good sample it stays a failed read.
    """
    samples, last_good, extra_rejections = [], None, 0
    for log in logs:
        if log.error_kind == SERVER_FULL and last_good is not None and log.plan.conn_limit > 0:
            extra_rejections += 1
            samples.append(engine.Sample(
                at=log.collected_at, plan_name=log.plan.plan_name, used_memory=last_good.used_memory,
                connected_clients=log.plan.conn_limit, evicted_keys=last_good.evicted_keys,
                rejected_connections=(last_good.rejected_connections or 0) + extra_rejections, ok=True,
                keyspace_hits=last_good.keyspace_hits, keyspace_misses=last_good.keyspace_misses,
            ))
            continue
        if log.ok and log.used_memory is not None and log.connected_clients is not None:
            last_good, extra_rejections = log, 0
        samples.append(engine.Sample(
            at=log.collected_at, plan_name=log.plan.plan_name, used_memory=log.used_memory,
            connected_clients=log.connected_clients, evicted_keys=log.evicted_keys,
            rejected_connections=log.rejected_connections, ok=log.ok,
            keyspace_hits=log.keyspace_hits, keyspace_misses=log.keyspace_misses,
        ))
    return samples


def instance_engine_samples(instance, *, policy, now):
    """The engine's samples of an instance: those of the policy's look-back, oldest first."""
    logs = (
        MetricLog.objects.filter(instance=instance, collected_at__gte=now - policy.lookback, collected_at__lte=now)
        .select_related("plan").order_by("collected_at")
    )
    return engine_samples(logs)


def _window_peaks(instance, since, until):
    """(peak used memory, peak connected clients) of an instance's good samples in a window."""
    peaks = MetricLog.objects.filter(
        instance=instance, collected_at__gte=since, collected_at__lte=until, error="",
        used_memory__isnull=False, connected_clients__isnull=False,
    ).aggregate(memory=Max("used_memory"), connections=Max("connected_clients"))
    return peaks["memory"], peaks["connections"]


def instance_engine_period_ago(instance, *, policy, now):
    """The engine's :class:`~scaling.engine.PeriodAgo`: two aggregates over the stored
    samples (the index on instance and time), not the samples themselves."""
    since, until = policy.pattern_window(now)
    memory, connections = _window_peaks(instance, since, until)
    then_memory, then_connections = _window_peaks(instance, *policy.pattern_down_window(now))
    return engine.PeriodAgo(since=since, until=until, peak_memory=memory, peak_connections=connections,
                            then_peak_memory=then_memory, then_peak_connections=then_connections)


def instance_engine_decide(*, instance, now):
    """The engine's decision on an instance's recent samples (no side effects)."""
    policy = engine_policy(instance)
    # Only a step down reads the load a period ago (rule daily_pattern): where none can
    # happen, the check skips those two queries.
    can_step_down = instance.scale_down_enabled and instance.current_plan_id != instance.min_plan_id
    return engine.decide(
        current=engine_plan(instance.current_plan),
        ladder=engine_ladder(instance.current_plan),
        min_plan=engine_plan(instance.min_plan),
        max_plan=engine_plan(instance.max_plan),
        samples=instance_engine_samples(instance, policy=policy, now=now),
        policy=policy,
        last_change_at=instance.plan_changed_at,
        now=now,
        period_ago=instance_engine_period_ago(instance, policy=policy, now=now) if can_step_down else None,
    )
