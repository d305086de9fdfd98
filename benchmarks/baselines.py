"""Baselines the engine is measured against in ``simulate_traces.py``: the original
product's rule and the cheapest timeline possible in hindsight. Used by the benchmarks (and
the acceptance tests that hold the engine to them), never by the product.

Standard library and :mod:`scaling.simulation` only (no Django).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Sequence

from scaling.engine import Plan, Policy, ScheduleWindows, sort_ladder
from scaling.simulation import HOURS_PER_MONTH, SimulationResult, TracePoint, over_limits, replay_rule

__all__ = ["Judgement", "baseline_original_rule", "hindsight_floor_cost", "judge"]

COST_WITHIN_FLOOR = 1.25
"""The judging bar: the engine's cost at most this multiple of the hindsight floor."""
MANY_CHANGES = 8
"""Where the original rule makes this many plan changes or more, the engine may make half."""


def baseline_original_rule(
    *,
    trace: Sequence[TracePoint],
    ladder: Sequence[Plan],
    start_plan: Plan,
    policy: Policy,
    min_plan: Plan,
    max_plan: Plan,
    metric_rate: timedelta,
    scaling_interval: timedelta,
    change_delay: timedelta,
) -> SimulationResult:
    """The original product's rule, replayed the same way, for comparison.

    Every scaling interval: average memory % and connection % (each sample against the
    plan it was taken on; 0 % on a plan with unlimited connections) over the last
    ``2 * scaling_interval``; skip the check if a change was decided within that window.
    If the memory average is above its threshold, one step to the next plan with more
    memory; else if the connection average is, one step to the next plan with a higher
    connection limit (never past ``max_plan``; nothing at ``max_plan``). Otherwise, unless
    at ``min_plan``, one step down to the next plan with less memory if both averages,
    rescaled to that plan, stay under their thresholds. No trend, no data-drop signal, no
    margin. Only ``policy``'s thresholds are used.
    """
    plans = sort_ladder(ladder)
    by_name = {p.name: p for p in plans}
    rank = {p.name: i for i, p in enumerate(plans)}
    lo, hi = rank[min_plan.name], rank[max_plan.name]
    window = 2 * scaling_interval
    mem_thr, conn_thr = policy.memory_threshold, policy.connection_threshold
    inf = float("inf")

    def conn_cap(p: Plan) -> float:
        return inf if p.connection_limit is None else p.connection_limit

    def original(current, samples, _last_change_at, last_decision_at, now):
        start = now - window
        if last_decision_at is not None and last_decision_at >= start:
            return "stay", None, "a change was made recently; giving it time"
        recent = [s for s in samples if s.at >= start and s.usable]
        if not recent:
            return "stay", None, "no samples"
        mem_avg = sum(by_name[s.plan_name].memory_pct(s.used_memory) for s in recent) / len(recent)
        conn_avg = sum(by_name[s.plan_name].connection_pct(s.connected_clients) or 0.0 for s in recent) / len(recent)
        cur = rank[current.name]
        if mem_avg > mem_thr or conn_avg > conn_thr:
            if cur >= hi:
                return "stay", None, "upgrade required but at the max plan"
            if mem_avg > mem_thr:
                above = [p for p in plans if p.memory_bytes > current.memory_bytes]
                target = min(above, key=lambda p: (p.memory_bytes, rank[p.name])) if above else None
                why = f"memory averaged {mem_avg:.1f}%"
            else:
                above = [p for p in plans if conn_cap(p) > conn_cap(current)]
                target = min(above, key=lambda p: (conn_cap(p), rank[p.name])) if above else None
                why = f"connections averaged {conn_avg:.1f}%"
            if target is None:
                return "stay", None, "no higher plan"
            if rank[target.name] > hi:
                target = plans[hi]
            return "up", target, f"{why} over {window.total_seconds() / 60:g} min; one step up"
        if cur <= lo:
            return "stay", None, "at the min plan"
        below = [p for p in plans if p.memory_bytes < current.memory_bytes]
        if not below:
            return "stay", None, "no lower plan"
        down = max(below, key=lambda p: (p.memory_bytes, rank[p.name]))
        if rank[down.name] < lo:
            return "stay", None, "at the min plan"
        if current.connection_limit is not None and down.connection_limit is not None:
            if conn_avg * current.connection_limit / down.connection_limit > conn_thr:
                return "stay", None, "connections would exceed the threshold on the lower plan"
        if mem_avg * current.memory_bytes / down.memory_bytes >= mem_thr:
            return "stay", None, "memory would exceed the threshold on the lower plan"
        return "down", down, f"averages memory {mem_avg:.1f}% and connections {conn_avg:.1f}% fit one step down"

    return replay_rule(
        original,
        trace=trace,
        ladder=plans,
        start_plan=start_plan,
        min_plan=min_plan,
        max_plan=max_plan,
        memory_threshold=mem_thr,
        connection_threshold=conn_thr,
        metric_rate=metric_rate,
        scaling_interval=scaling_interval,
        change_delay=change_delay,
        keep=window + metric_rate,
    )


def hindsight_floor_cost(
    *,
    trace: Sequence[TracePoint],
    ladder: Sequence[Plan],
    min_plan: Plan,
    max_plan: Plan,
    memory_limit_pct: float = 100.0,
    connection_limit_pct: float = 100.0,
    schedules: Sequence[ScheduleWindows] = (),
    scale_down: bool = True,
    cache_min_hit_rate: float | None = None,
    recorded_on: Plan | None = None,
) -> float:
    """The cheapest cost possible in hindsight: for each trace point (held until the
    next), the cheapest plan within ``min_plan..max_plan`` that holds its load under
    capacity (``used_memory <= memory``, ``connected_clients <= limit``), or ``max_plan``
    if none does, switched instantly and free. No real scaler can reach it: it knows the
    future, changes plans with no delay and keeps no headroom.

    With ``memory_limit_pct``/``connection_limit_pct`` below 100 (e.g. the thresholds),
    the plan must hold the load under those percentages instead: the floor for a scaler
    that never exceeds its thresholds (the issue's "hindsight floor", which
    ``simulate_traces.py`` judges against).

    ``schedules`` (:func:`scaling.schedules.parse_schedule`, plans named in full) are
    honoured while their windows are open: the operator asked for at least that plan then
    (capped at ``max_plan``), so the floor pays for it too. Not during the lead: that is the
    scaler's own way of being on time. ``scale_down=False`` (scale-in switched off): the
    floor never steps down either, each moment on the highest plan needed so far.

    A cache (``cache_min_hit_rate`` set; pass ``memory_limit_pct=100``, as a cache is full
    by design) whose trace was recorded on ``recorded_on`` and shows, between two points,
    keys evicted while the hit rate was under the minimum, needed more memory than it had
    there: the floor takes a plan with more memory than ``recorded_on`` at that point (its
    working set outgrew the plan; how much more, no trace can tell, so the least).
    """
    plans = sort_ladder(ladder)
    rank = {p.name: i for i, p in enumerate(plans)}
    for label, plan in (("min", min_plan), ("max", max_plan)):
        if plan.name not in rank:
            raise ValueError(f"{label} plan {plan.name} is not in the plan ladder")
    allowed = plans[rank[min_plan.name]:rank[max_plan.name] + 1]
    if not allowed:
        raise ValueError(f"min plan {min_plan.name} is above max plan {max_plan.name}")
    top = plans[rank[max_plan.name]]
    cost = 0.0
    highest_so_far = rank[min_plan.name]
    previous = None
    for point, nxt in zip(trace, trace[1:]):
        outgrown = cache_min_hit_rate is not None and previous is not None and _missing(previous, point, cache_min_hit_rate)
        previous = point
        lowest = max([highest_so_far if not scale_down else rank[min_plan.name]] + [min(rank[s.plan], rank[max_plan.name]) for s in schedules
                                              if s.window_around(point.at, timedelta(0)) is not None])
        fitting = [p for p in allowed if rank[p.name] >= lowest
                   and not over_limits(point, p, memory_limit_pct, connection_limit_pct)
                   and not (outgrown and p.memory_bytes <= recorded_on.memory_bytes)]
        plan = min(fitting, key=lambda p: (p.monthly_cost, rank[p.name])) if fitting else top
        highest_so_far = max(highest_so_far, rank[plan.name])
        cost += plan.monthly_cost / HOURS_PER_MONTH * (nxt.at - point.at).total_seconds() / 3600
    return cost


def _missing(before: TracePoint, after: TracePoint, min_hit_rate: float) -> bool:
    """Keys evicted between two trace points while the hit rate was under the minimum."""
    def rise(column):
        a, b = getattr(before, column), getattr(after, column)
        return 0 if a is None or b is None or b < a else b - a
    lookups = rise("keyspace_hits") + rise("keyspace_misses")
    return bool(rise("evicted_keys")) and lookups > 0 and rise("keyspace_hits") / lookups * 100 < min_hit_rate


@dataclass(frozen=True)
class Judgement:
    """One trace judged (issue 13): the engine's run against the original rule's and the
    hindsight floor. Each bar is a field; ``passed`` is all three.

    capacity_ok
        (a) No seconds over capacity where the original rule drops none; at most half of
        the original's where it drops data.
    changes_ok
        (b) No more plan changes than the original; at most half of its where it makes
        ``MANY_CHANGES`` or more.
    cost_ok
        (c) Cost within ``COST_WITHIN_FLOOR`` times the hindsight floor.
    """

    seconds_over_capacity: float
    original_seconds_over_capacity: float
    plan_changes: int
    original_plan_changes: int
    cost: float
    floor_cost: float

    @property
    def capacity_allowed(self) -> float:
        return self.original_seconds_over_capacity / 2

    @property
    def changes_allowed(self) -> int:
        if self.original_plan_changes >= MANY_CHANGES:
            return self.original_plan_changes // 2
        return self.original_plan_changes

    @property
    def cost_allowed(self) -> float:
        return self.floor_cost * COST_WITHIN_FLOOR

    @property
    def capacity_ok(self) -> bool:
        return self.seconds_over_capacity <= self.capacity_allowed

    @property
    def changes_ok(self) -> bool:
        return self.plan_changes <= self.changes_allowed

    @property
    def cost_ok(self) -> bool:
        return self.cost <= self.cost_allowed + 1e-9

    @property
    def passed(self) -> bool:
        return self.capacity_ok and self.changes_ok and self.cost_ok


def judge(*, result: SimulationResult, original: SimulationResult, floor_cost: float) -> Judgement:
    """The engine's run (``result``) judged against the original rule's and the floor."""
    return Judgement(
        seconds_over_capacity=result.seconds_over_capacity,
        original_seconds_over_capacity=original.seconds_over_capacity,
        plan_changes=len(result.plan_changes), original_plan_changes=len(original.plan_changes),
        cost=result.cost, floor_cost=floor_cost,
    )
