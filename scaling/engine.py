"""The scaling engine: which plan a Redis instance should be on, given its recent samples.

Pure: standard library only, no I/O, no clock (``now`` is an argument), no Django. The
Celery workers, the ``check_scaling`` command and the offline simulation
(:mod:`scaling.simulation`) all call :func:`decide` with the same inputs.

Units
    Plan memory is in bytes (plan data gives MiB, 1,048,576 bytes, as Redis counts
    ``maxmemory``; see :meth:`Plan.from_limits`). Thresholds are percentages (``80`` means
    80 %). A plan whose connection limit is ``None`` (``-1`` in the plan data) has no
    connection limit: its connection percentage is ``None`` and the connection threshold
    never applies to it.

The rules, in the order :func:`decide` applies them
    1. Only samples on the current plan count (``plan_name == current.name``), and after a
       plan change only those taken after ``last_change_at``; none yet means *stay*
       ("waiting for samples on the new plan"). Samples older than the longest window
       (plus a little slack for slow metric rates) and samples from the future are ignored.
    2. A current plan outside ``min_plan..max_plan`` is moved into the range (to the
       cheapest plan of the range that holds the recent load, or to the nearest end of
       the range when there is no load to judge by).
    3. Data drop -- evicted keys or rejected connections rising between consecutive
       samples of the up window (a counter that goes *down* is a Redis restart, not a
       rise), or used memory at the plan's limit (``memory_full``, 99 %) -- means *up* at
       once, even on one or two samples and whatever the averages say. It counts as a
       breach (``breaching=True``). Redis reports at most its limits while dropping, so
       the dropping metric is sized at ``data_drop_factor`` (2x) its capped reading.
    4. Fewer than ``min_samples`` good samples means *stay*.
    5. Breach: the up-window average of memory % or connection % above its threshold
       means *up*.
    6. Early ("premature") scaling: a least-squares line through the trend window's
       samples, projected ``trend_horizon`` ahead, above the threshold means *up* now --
       but only when the rise is meaningful: at least ``trend_min_samples`` samples
       spanning at least a quarter of the trend window, slope t-statistic at least
       ``trend_min_t`` (twice that while they span less than half the window), a projected rise larger than the residual noise, and the fitted
       current level at least ``trend_min_level`` of the threshold. Flat noisy load does
       not pass these tests.
    7. Down only when, for the whole stabilisation window (the samples must reach back
       to its start, with no hole longer than the up window or 5 min), every metric stayed
       under its threshold, no counter rose and no read failed; judged on the window's *peak*, which must fit under
       ``threshold * (1 - down_margin)`` of the lower plan. A rising metric (slope
       t-statistic >= 2) must also fit there when projected one stabilisation window
       ahead, so a rising load is never moved to a plan it would outgrow before the
       engine could notice. The cheapest plan that fits is chosen (possibly several steps
       down), never below ``min_plan``. When the window's last half already fits a
       cheaper plan than the whole window does (the load fell recently), the engine waits
       for the window to confirm that deeper step instead of stepping down twice (each
       change restarts the stabilisation clock).
    8. Otherwise *stay*.

Up targets
    The cheapest plan above the current one (at least one step) and within the range that
    keeps every metric under its threshold, judged on the larger of the up-window peak and
    the trend projection (when the trend is meaningful). If none does, ``max_plan`` with
    ``cannot_scale_further=True``; already at ``max_plan`` and breaching means *stay* with
    ``cannot_scale_further=True`` and ``breaching=True``. A projected (not yet actual)
    breach at ``max_plan`` stays without the flag: nothing is wrong yet.

The ladder
    Plans are ordered by memory, then cost, then name (:func:`sort_ladder`); "one step" is
    one position in that order. Among plans that fit, the cheapest wins, so of two plans
    with equal memory the cheaper is chosen.

The windows, when a slow metric rate leaves them nearly empty
    The up window always reaches back far enough to include the last ``min_samples`` good
    samples, and the trend window the last ``trend_min_samples``, as long as they are
    within the look-back; so a 5-minute metric rate with a 1-minute scaling rate still
    works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Sequence

__all__ = [
    "MIB",
    "Plan",
    "Sample",
    "Policy",
    "Decision",
    "decide",
    "sort_ladder",
]

MIB = 1_048_576
"""Bytes in the plan data's "MB" (Redis counts ``maxmemory`` in bytes; plans are in MiB)."""

# The slowest metric rate the product offers: how far before a window's start a sample
# may lie and still tell what the load was at the start of the window.
_SLOWEST_METRIC_RATE = timedelta(minutes=5)
# A slope with this t-statistic or more counts as "rising" when sizing a scale-down
# (looser than the trend_min_t that scales up early: caution costs little there).
_RISING_T = 2.0

Action = Literal["stay", "up", "down"]


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One add-on plan: limits and monthly price.

    ``connection_limit=None`` means unlimited connections.
    """

    name: str
    memory_bytes: int
    connection_limit: int | None
    monthly_cost: float

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a plan needs a name")
        if self.memory_bytes <= 0:
            raise ValueError(f"plan {self.name}: memory must be positive, got {self.memory_bytes}")
        if self.connection_limit is not None and self.connection_limit <= 0:
            raise ValueError(
                f"plan {self.name}: connection limit must be positive or None (unlimited), "
                f"got {self.connection_limit}"
            )
        if self.monthly_cost < 0 or math.isnan(self.monthly_cost):
            raise ValueError(f"plan {self.name}: monthly cost must be >= 0, got {self.monthly_cost}")

    @classmethod
    def from_limits(cls, name: str, mem_limit_mb: float, conn_limit: int | None, cost: float) -> "Plan":
        """Build a plan from plan-data units: memory in MiB, ``-1`` (or ``None``) connections
        for unlimited, monthly cost in dollars."""
        if conn_limit is not None and conn_limit == -1:
            conn_limit = None
        return cls(
            name=name,
            memory_bytes=int(round(float(mem_limit_mb) * MIB)),
            connection_limit=None if conn_limit is None else int(conn_limit),
            monthly_cost=float(cost),
        )

    @property
    def unlimited_connections(self) -> bool:
        return self.connection_limit is None

    def memory_pct(self, used_memory: float) -> float:
        return used_memory / self.memory_bytes * 100.0

    def connection_pct(self, connected_clients: float) -> float | None:
        """Connections as % of the limit; ``None`` on a plan with unlimited connections."""
        if self.connection_limit is None:
            return None
        return connected_clients / self.connection_limit * 100.0


@dataclass(frozen=True)
class Sample:
    """One metric reading. A failed read has ``ok=False`` and ``None`` values.

    ``evicted_keys`` and ``rejected_connections`` are Redis's cumulative counters
    (``INFO stats``); they restart from zero when Redis restarts.
    """

    at: datetime
    plan_name: str
    used_memory: int | None
    connected_clients: int | None
    evicted_keys: int | None
    rejected_connections: int | None
    ok: bool = True

    @property
    def usable(self) -> bool:
        """A good reading: ``ok`` and with the memory and connection figures."""
        return self.ok and self.used_memory is not None and self.connected_clients is not None


@dataclass(frozen=True)
class Policy:
    """How eagerly to scale. Thresholds are percentages; the windows left unset derive
    from ``scaling_interval`` as described here.

    memory_threshold, connection_threshold
        The percentage of the plan's limit to stay under (the registration fields
        "average memory % to maintain", "average connection % to maintain").
    scaling_interval
        How often the engine runs (1, 5 or 10 min).
    up_window
        Averaging window for a breach. Default ``2 * scaling_interval``, the original
        product's window, so an instance breaching for one check is acted on by the next.
    stabilisation_window
        How long every metric must have stayed low before a scale-down. Default
        ``max(15 min, 5 * scaling_interval)``: longer than a queue's typical drain/refill
        cycle so that one quiet moment does not shed capacity that is needed again minutes
        later.
    down_margin
        The lower plan must hold the stabilisation window's *peak* under
        ``threshold * (1 - down_margin)``. Default 0.2 (80 % threshold -> 64 %), the
        hysteresis that keeps a scale-down from bouncing straight back up.
    plan_change_time
        How long a plan change takes to land on Heroku (the PATCH until the add-on is
        provisioned on the new plan). Default 2 min, a small data set's change; callers
        that measure their instance's real provisioning time should pass it.
    trend_horizon
        How far ahead the trend is projected. Default ``plan_change_time +
        scaling_interval``: a breach projected within that time cannot be avoided unless
        the change is decided now.
    trend_window
        Samples the trend line is fitted to. Default ``max(10 min, 5 * scaling_interval)``:
        long enough to average out queue noise, short enough to follow a change of pace.
    min_samples
        Good samples needed before any breach or down decision. Default 3.
    trend_min_samples
        Samples needed before the trend counts; they must also span at least a quarter
        of the trend window (and under half of it, the slope needs twice ``trend_min_t``).
        Default 5.
    trend_min_t
        t-statistic of the fitted slope needed to scale up early. Default 3.0.
    trend_min_level
        The fitted current level must be at least this fraction of the threshold for an
        early scale-up. Default 0.5: a metric at 20 % is not scaled for a projection.
    memory_full
        Used memory at or above this fraction of the plan's memory counts as data drop
        (Redis is at ``maxmemory``: evicting or refusing writes). Default 0.99.
    data_drop_factor
        While data is being dropped Redis reports at most its limits (used memory stops at
        ``maxmemory``, clients at the connection limit), so the real demand is unknown.
        The target must then hold this multiple of the dropping metric's observed peak
        under its threshold. Default 2.0: doubling finds the demand in a few steps (one
        more plan step on Heroku's ladder than the bare observation), and the surplus is
        shed by the normal scale-down once the stabilisation window has passed.
    """

    memory_threshold: float
    connection_threshold: float
    scaling_interval: timedelta
    up_window: timedelta | None = None
    stabilisation_window: timedelta | None = None
    down_margin: float = 0.2
    plan_change_time: timedelta = timedelta(minutes=2)
    trend_horizon: timedelta | None = None
    trend_window: timedelta | None = None
    min_samples: int = 3
    trend_min_samples: int = 5
    trend_min_t: float = 3.0
    trend_min_level: float = 0.5
    memory_full: float = 0.99
    data_drop_factor: float = 2.0

    def __post_init__(self) -> None:
        for label, value in (
            ("memory threshold", self.memory_threshold),
            ("connection threshold", self.connection_threshold),
        ):
            if not (0 < value <= 100):
                raise ValueError(f"{label} must be a percentage in (0, 100], got {value}")
        if self.scaling_interval <= timedelta(0):
            raise ValueError("scaling interval must be positive")
        if self.up_window is None:
            object.__setattr__(self, "up_window", 2 * self.scaling_interval)
        if self.stabilisation_window is None:
            object.__setattr__(
                self, "stabilisation_window", max(timedelta(minutes=15), 5 * self.scaling_interval)
            )
        if self.trend_window is None:
            object.__setattr__(self, "trend_window", max(timedelta(minutes=10), 5 * self.scaling_interval))
        if self.trend_horizon is None:
            object.__setattr__(self, "trend_horizon", self.plan_change_time + self.scaling_interval)
        for label, td in (
            ("up window", self.up_window),
            ("stabilisation window", self.stabilisation_window),
            ("trend window", self.trend_window),
        ):
            if td <= timedelta(0):
                raise ValueError(f"{label} must be positive")
        if self.trend_horizon < timedelta(0) or self.plan_change_time < timedelta(0):
            raise ValueError("trend horizon and plan change time must not be negative")
        if not (0 <= self.down_margin < 1):
            raise ValueError(f"down margin must be in [0, 1), got {self.down_margin}")
        if self.min_samples < 1:
            raise ValueError("min samples must be at least 1")
        if self.trend_min_samples < 3:
            raise ValueError("trend min samples must be at least 3 (a line and its noise)")
        if not (0 < self.memory_full <= 1):
            raise ValueError(f"memory full must be a fraction in (0, 1], got {self.memory_full}")
        if self.data_drop_factor < 1:
            raise ValueError(f"data drop factor must be at least 1, got {self.data_drop_factor}")

    @property
    def lookback(self) -> timedelta:
        """How far back samples can matter; older ones are ignored."""
        return max(self.up_window, self.stabilisation_window, self.trend_window) + max(
            self.up_window, _SLOWEST_METRIC_RATE
        )


@dataclass(frozen=True)
class Decision:
    """What to do, and why (``reason`` is a sentence for people, with the numbers).

    ``memory_pct``/``connection_pct`` are the up-window averages against the current plan
    (``None`` when there was nothing to average, or, for connections, when the plan has
    unlimited connections).
    """

    action: Action
    target: Plan | None
    reason: str
    breaching: bool
    data_drop: bool
    cannot_scale_further: bool
    memory_pct: float | None
    connection_pct: float | None


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def sort_ladder(ladder: Sequence[Plan]) -> list[Plan]:
    """The ladder in scaling order: by memory, then cost, then name (duplicates by name
    are an error)."""
    plans = sorted(ladder, key=lambda p: (p.memory_bytes, p.monthly_cost, p.name))
    names = [p.name for p in plans]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"plan ladder names a plan twice: {', '.join(dupes)}")
    if not plans:
        raise ValueError("the plan ladder is empty")
    return plans


def _fmt_pct(value: float) -> str:
    return f"{value:.1f}%"


def _fmt_threshold(value: float) -> str:
    return f"{value:g}%"


def _fmt_duration(td: timedelta) -> str:
    seconds = int(round(td.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" if sec == 0 else f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" if minutes == 0 else f"{hours} h {minutes} min"


def _fmt_minutes(td: timedelta) -> str:
    minutes = td.total_seconds() / 60
    if minutes < 1:
        return f"{int(round(td.total_seconds()))} s"
    return f"{minutes:.0f} min" if abs(minutes - round(minutes)) < 0.05 else f"{minutes:.1f} min"


def _fmt_count(n: int) -> str:
    return f"{n:,}"


def _counter_rise(samples: Sequence[Sample], attr: str) -> int:
    """Sum of the increases of a cumulative counter between consecutive readings.

    A counter that went down is a Redis restart: that step is not a rise.
    """
    rise = 0
    previous: int | None = None
    for s in samples:
        value = getattr(s, attr)
        if value is None:
            continue
        if previous is not None and value > previous:
            rise += value - previous
        previous = value
    return rise


@dataclass(frozen=True)
class _Trend:
    n: int
    slope: float  # units per second
    level: float  # fitted value at now
    projected: float  # fitted value at now + horizon
    noise: float  # residual standard deviation
    t_stat: float

    @property
    def rise(self) -> float:
        return self.projected - self.level


def _fit(points: Sequence[tuple[float, float]], horizon_s: float) -> _Trend | None:
    """Least-squares line through (seconds relative to now, value)."""
    n = len(points)
    if n < 3:
        return None
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    sxx = sum((t - mean_t) ** 2 for t, _ in points)
    if sxx <= 0:
        return None
    sxy = sum((t - mean_t) * (v - mean_v) for t, v in points)
    slope = sxy / sxx
    level = mean_v - slope * mean_t  # at t = 0, i.e. now
    ssr = sum((v - (level + slope * t)) ** 2 for t, v in points)
    noise = math.sqrt(ssr / (n - 2))
    se = noise / math.sqrt(sxx)
    if se > 0:
        t_stat = slope / se
    else:
        t_stat = math.inf if slope > 0 else (-math.inf if slope < 0 else 0.0)
    return _Trend(n=n, slope=slope, level=level, projected=level + slope * horizon_s, noise=noise, t_stat=t_stat)


@dataclass(frozen=True)
class _MetricView:
    """One metric (memory or connections) over the windows, in raw units."""

    name: str  # "memory" | "connections"
    avg: float | None  # up-window average
    peak: float | None  # up-window peak
    trend: _Trend | None
    min_t: float = 0.0  # the slope's t-statistic needed (see decide: stricter on a short span)

    def meaningful_rise(self, policy: Policy) -> bool:
        """The trend rises for real: a significant slope (t-statistic at least
        ``min_t``) and a projected rise over the horizon larger than the residual noise."""
        tr = self.trend
        if tr is None or tr.slope <= 0 or tr.t_stat < max(self.min_t, policy.trend_min_t):
            return False
        return tr.rise > tr.noise

    def need(self, policy: Policy, dropping: bool = False) -> float | None:
        """What a plan must hold: the up-window peak, or the projection if the trend is
        meaningfully rising and higher; times ``data_drop_factor`` while this metric is
        dropping data (its readings are capped at the limit)."""
        if self.peak is None:
            return None
        need = self.peak
        if self.meaningful_rise(policy):
            need = max(need, self.trend.projected)
        if dropping:
            need = max(need, self.peak * policy.data_drop_factor)
        return need


def _fits(plan: Plan, need_mem: float | None, need_conn: float | None, mem_limit_pct: float, conn_limit_pct: float) -> bool:
    if need_mem is not None and plan.memory_pct(need_mem) > mem_limit_pct:
        return False
    if need_conn is not None and plan.connection_limit is not None:
        if plan.connection_pct(need_conn) > conn_limit_pct:
            return False
    return True


def _cheapest(plans: Sequence[Plan], rank: dict[str, int]) -> Plan | None:
    if not plans:
        return None
    return min(plans, key=lambda p: (p.monthly_cost, rank[p.name]))


def _keeps(plan: Plan, need_mem: float | None, need_conn: float | None) -> str:
    """'memory at 17.2% and connections at 12.0%' of ``plan`` for the needs."""
    parts = []
    if need_mem is not None:
        parts.append(f"memory at {_fmt_pct(plan.memory_pct(need_mem))}")
    if plan.connection_limit is None:
        parts.append("connections unlimited")
    elif need_conn is not None:
        parts.append(f"connections at {_fmt_pct(plan.connection_pct(need_conn))}")
    return " and ".join(parts) if parts else "no load measured"


# --------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------


def decide(
    *,
    current: Plan,
    ladder: Sequence[Plan],
    min_plan: Plan,
    max_plan: Plan,
    samples: Sequence[Sample],
    policy: Policy,
    last_change_at: datetime | None,
    now: datetime,
) -> Decision:
    """Decide whether to stay on ``current`` or move up or down. See the module docstring
    for the rules. ``current``, ``min_plan`` and ``max_plan`` must be in ``ladder`` (by
    name); ``min_plan`` must not be above ``max_plan``."""
    plans = sort_ladder(ladder)
    rank = {p.name: i for i, p in enumerate(plans)}
    for label, plan in (("current", current), ("min", min_plan), ("max", max_plan)):
        if plan.name not in rank:
            raise ValueError(f"{label} plan {plan.name} is not in the plan ladder")
    current = plans[rank[current.name]]
    lo, hi, cur = rank[min_plan.name], rank[max_plan.name], rank[current.name]
    if lo > hi:
        raise ValueError(f"min plan {min_plan.name} is above max plan {max_plan.name}")
    min_plan, max_plan = plans[lo], plans[hi]
    mem_thr, conn_thr = policy.memory_threshold, policy.connection_threshold
    conn_limited = current.connection_limit is not None

    def decision(action: Action, target: Plan | None, reason: str, *, breaching=False, data_drop=False,
                 cannot=False, mem_pct=None, conn_pct=None) -> Decision:
        return Decision(
            action=action,
            target=target,
            reason=reason,
            breaching=breaching,
            data_drop=data_drop,
            cannot_scale_further=cannot,
            memory_pct=mem_pct,
            connection_pct=conn_pct if conn_limited else None,
        )

    # 1. The samples that count.
    oldest = now - policy.lookback
    relevant = sorted(
        (
            s
            for s in samples
            if s.plan_name == current.name
            and oldest <= s.at <= now
            and (last_change_at is None or s.at > last_change_at)
        ),
        key=lambda s: s.at,
    )
    good = [s for s in relevant if s.usable]

    # Up window: at least the last min_samples good samples.
    up_start = now - policy.up_window
    recent = [s for s in good if s.at > up_start]
    if len(recent) < policy.min_samples:
        recent = good[-policy.min_samples:]
    recent_span = (now - recent[0].at) if recent else timedelta(0)
    up_span = max(policy.up_window, recent_span)

    # Trend window: at least the last trend_min_samples good samples. A few readings just
    # after a start or a change are mostly noise, so a span under half the window needs a
    # twice as significant slope, and under a quarter of it the trend does not count: a
    # steep ramp (a queue filling in minutes) is still caught early, flat noise is not.
    trend_start = now - policy.trend_window
    trend_samples = [s for s in good if s.at > trend_start]
    if len(trend_samples) < policy.trend_min_samples:
        trend_samples = good[-policy.trend_min_samples:]
    trend_span = trend_samples[-1].at - trend_samples[0].at if trend_samples else timedelta(0)
    if len(trend_samples) < policy.trend_min_samples or trend_span < policy.trend_window / 4:
        trend_samples = []
    min_t = policy.trend_min_t * (2 if trend_span < policy.trend_window / 2 else 1)
    horizon_s = policy.trend_horizon.total_seconds()

    def view(name: str, attr: str) -> _MetricView:
        values = [getattr(s, attr) for s in recent]
        avg = sum(values) / len(values) if values else None
        peak = max(values) if values else None
        trend = None
        if len(trend_samples) >= policy.trend_min_samples:
            trend = _fit([((s.at - now).total_seconds(), float(getattr(s, attr))) for s in trend_samples], horizon_s)
        return _MetricView(name=name, avg=avg, peak=peak, trend=trend, min_t=min_t)

    mem = view("memory", "used_memory")
    conn = view("connections", "connected_clients")
    mem_pct = current.memory_pct(mem.avg) if mem.avg is not None else None
    conn_pct = current.connection_pct(conn.avg) if conn.avg is not None else None
    need_mem = mem.need(policy)
    need_conn = conn.need(policy)

    def fitting(candidates: Sequence[Plan], nm: float | None, nc: float | None) -> Plan | None:
        return _cheapest([p for p in candidates if _fits(p, nm, nc, mem_thr, conn_thr)], rank)

    if last_change_at is not None and not relevant:
        return decision(
            "stay", None,
            f"waiting for samples on the new plan {current.name} (changed {_fmt_duration(now - last_change_at)} ago)",
        )

    # 2. Outside min..max: move into the range.
    if cur < lo or cur > hi:
        in_range = plans[lo:hi + 1]
        have_load = need_mem is not None
        target = fitting(in_range, need_mem, need_conn) if have_load else None
        cannot = False
        if target is None:
            if have_load:
                target, cannot = max_plan, True
            else:
                target = min_plan if cur < lo else max_plan
        where = f"below the minimum plan {min_plan.name}" if cur < lo else f"above the maximum plan {max_plan.name}"
        load = f"; {target.name} keeps {_keeps(target, need_mem, need_conn)}" if have_load else "; no recent samples to size it by"
        if cannot:
            load += f" (above the thresholds, but {max_plan.name} is the maximum)"
        return decision(
            "up" if cur < lo else "down", target,
            f"{current.name} is {where}; moving into the allowed range{load}",
            cannot=cannot, mem_pct=mem_pct, conn_pct=conn_pct,
        )

    if not relevant:
        return decision(
            "stay", None,
            f"no samples on {current.name} in the last {_fmt_duration(policy.lookback)}; nothing to decide on",
        )

    def go_up(why: str, *, breaching: bool, data_drop: bool, nm: float | None = need_mem,
              nc: float | None = need_conn) -> Decision:
        if cur >= hi:
            if breaching or data_drop:
                return decision(
                    "stay", None,
                    f"{why}; cannot scale further: {current.name} is the maximum plan",
                    breaching=breaching, data_drop=data_drop, cannot=True, mem_pct=mem_pct, conn_pct=conn_pct,
                )
            return decision(
                "stay", None,
                f"{why}; {current.name} is already the maximum plan",
                mem_pct=mem_pct, conn_pct=conn_pct,
            )
        target = fitting(plans[cur + 1:hi + 1], nm, nc)
        if target is None:
            return decision(
                "up", max_plan,
                f"{why}; no plan up to the maximum {max_plan.name} keeps every metric under its threshold, "
                f"going to {max_plan.name} ({_keeps(max_plan, nm, nc)}); cannot scale further",
                breaching=breaching, data_drop=data_drop, cannot=True, mem_pct=mem_pct, conn_pct=conn_pct,
            )
        return decision(
            "up", target, f"{why}; {target.name} keeps {_keeps(target, nm, nc)}",
            breaching=breaching, data_drop=data_drop, mem_pct=mem_pct, conn_pct=conn_pct,
        )

    # 3. Data drop, at once.
    window_text = _fmt_duration(up_span)
    drops = []
    evicted = _counter_rise(recent, "evicted_keys")
    rejected = _counter_rise(recent, "rejected_connections")
    memory_full = mem.peak is not None and mem.peak >= policy.memory_full * current.memory_bytes
    if evicted > 0:
        drops.append(f"evicted keys rose by {_fmt_count(evicted)}")
    if rejected > 0:
        drops.append(f"rejected connections rose by {_fmt_count(rejected)}")
    if memory_full:
        drops.append(f"memory reached {_fmt_pct(current.memory_pct(mem.peak))} of {current.name}'s limit")
    if drops:
        # Dropping data is worse than a breach: it counts as one whatever the averages.
        # The readings are capped at the limits, so size for data_drop_factor times them.
        why = (
            f"data is being dropped: {', '.join(drops)} in the last {window_text} "
            f"(sized for {policy.data_drop_factor:g}x the capped readings)"
        )
        return go_up(
            why, breaching=True, data_drop=True,
            nm=mem.need(policy, dropping=bool(evicted) or memory_full),
            nc=conn.need(policy, dropping=bool(rejected)),
        )

    # 4. Enough samples?
    if len(recent) < policy.min_samples:
        return decision(
            "stay", None,
            f"too few samples on {current.name}: {len(recent)} of the {policy.min_samples} needed",
            mem_pct=mem_pct, conn_pct=conn_pct,
        )

    # 5. Breach on the up-window average.
    breaches = []
    if mem_pct is not None and mem_pct > mem_thr:
        breaches.append(f"memory averaged {_fmt_pct(mem_pct)} of {current.name} (threshold {_fmt_threshold(mem_thr)})")
    if conn_pct is not None and conn_pct > conn_thr:
        breaches.append(
            f"connections averaged {_fmt_pct(conn_pct)} of {current.name} (threshold {_fmt_threshold(conn_thr)})"
        )
    if breaches:
        return go_up(f"{' and '.join(breaches)} over {window_text}", breaching=True, data_drop=False)

    # 6. Early: the trend crosses a threshold within the horizon.
    early = []
    for metric, limit, thr in (
        (mem, current.memory_bytes, mem_thr),
        (conn, current.connection_limit, conn_thr),
    ):
        if limit is None or not metric.meaningful_rise(policy):
            continue
        tr = metric.trend
        level_pct, projected_pct = tr.level / limit * 100, tr.projected / limit * 100
        if projected_pct > thr and level_pct >= policy.trend_min_level * thr:
            early.append(
                f"{metric.name} is projected to reach {_fmt_pct(projected_pct)} of {current.name} "
                f"(threshold {_fmt_threshold(thr)}) in {_fmt_minutes(policy.trend_horizon)} "
                f"(now {_fmt_pct(level_pct)}, rising {tr.slope * 60 / limit * 100:.2f} points/min)"
            )
    if early:
        return go_up(" and ".join(early), breaching=False, data_drop=False)

    # 7. Down?
    averages = f"memory averaged {_fmt_pct(mem_pct)}"
    if conn_pct is not None:
        averages += f" and connections {_fmt_pct(conn_pct)}"
    averages += f" of {current.name} over {window_text} (thresholds {_fmt_threshold(mem_thr)}/{_fmt_threshold(conn_thr)})"

    def stay(why: str) -> Decision:
        return decision("stay", None, f"{averages}; {why}", mem_pct=mem_pct, conn_pct=conn_pct)

    if cur <= lo:
        return stay(f"{current.name} is the minimum plan")
    stab = policy.stabilisation_window
    window_start = now - stab
    anchors = [s for s in relevant if s.at <= window_start]
    if not anchors:
        observed = now - relevant[0].at
        return stay(
            f"observed {current.name} for {_fmt_duration(observed)} of the {_fmt_duration(stab)} needed before scaling down"
        )
    down_window = [s for s in relevant if s.at >= anchors[-1].at]
    # "Observed the whole window" also means no hole in it: a stopped collector leaves
    # gaps (a failed read is recorded as a sample with ok=False and caught below).
    max_gap = max(policy.up_window, _SLOWEST_METRIC_RATE)
    times = [s.at for s in down_window] + [now]
    gap = max(b - a for a, b in zip(times, times[1:]))
    if gap > max_gap:
        return stay(
            f"no samples for {_fmt_duration(gap)} in the last {_fmt_duration(stab)} "
            f"(more than {_fmt_duration(max_gap)}); not scaling down"
        )
    failed = [s for s in down_window if not s.usable]
    if failed:
        return stay(f"{len(failed)} failed read(s) in the last {_fmt_duration(stab)}; not scaling down")
    ev = _counter_rise(down_window, "evicted_keys")
    rj = _counter_rise(down_window, "rejected_connections")
    if ev or rj:
        return stay(f"keys were evicted or connections rejected in the last {_fmt_duration(stab)}; not scaling down")
    peak_mem = max(s.used_memory for s in down_window)
    peak_conn = max(s.connected_clients for s in down_window)
    peak_mem_pct = current.memory_pct(peak_mem)
    peak_conn_pct = current.connection_pct(peak_conn)
    if peak_mem_pct > mem_thr or (peak_conn_pct is not None and peak_conn_pct > conn_thr):
        peaks = f"memory peaked at {_fmt_pct(peak_mem_pct)}"
        if peak_conn_pct is not None:
            peaks += f" and connections at {_fmt_pct(peak_conn_pct)}"
        return stay(f"{peaks} in the last {_fmt_duration(stab)}; not scaling down")

    # A rising trend must still fit the lower plan when projected over another
    # stabilisation window: the soonest the engine could be sure enough to come back down.
    need_down_mem, need_down_conn = float(peak_mem), float(peak_conn)
    rising = []
    for metric in (mem, conn):
        tr = metric.trend
        if tr is None or tr.slope <= 0 or tr.t_stat < _RISING_T:
            continue
        ahead = tr.level + tr.slope * stab.total_seconds()
        if metric.name == "memory":
            need_down_mem = max(need_down_mem, ahead)
        else:
            need_down_conn = max(need_down_conn, ahead)
        rising.append(metric.name)

    margin = 1 - policy.down_margin
    mem_down, conn_down = mem_thr * margin, conn_thr * margin
    lower = [p for p in plans[lo:cur] if p.monthly_cost < current.monthly_cost]
    target = _cheapest([p for p in lower if _fits(p, need_down_mem, need_down_conn, mem_down, conn_down)], rank)

    # The load fell within the window: if its last half already fits a cheaper plan than
    # the whole window's peak does, wait (at most half a window) and take one step there
    # rather than an intermediate step that restarts the stabilisation clock.
    half = [s for s in down_window if s.at >= now - stab / 2]
    if target is not None and half:
        half_mem = max(need_down_mem - peak_mem + max(s.used_memory for s in half), 0.0)
        half_conn = max(need_down_conn - peak_conn + max(s.connected_clients for s in half), 0.0)
        deeper = _cheapest([p for p in lower if _fits(p, half_mem, half_conn, mem_down, conn_down)], rank)
        if deeper is not None and deeper.monthly_cost < target.monthly_cost:
            return stay(
                f"load fell in the last {_fmt_duration(stab / 2)}: waiting for the whole "
                f"{_fmt_duration(stab)} window to confirm {deeper.name} rather than stepping to "
                f"{target.name} first"
            )
    peaks_text = f"peak memory {_fmt_pct(peak_mem_pct)}"
    if peak_conn_pct is not None:
        peaks_text += f", peak connections {_fmt_pct(peak_conn_pct)}"
    what = f"the {_fmt_duration(stab)} peak"
    if rising:
        what += (
            f" and the projection {_fmt_duration(stab)} ahead of the rising "
            f"{' and '.join(rising)}"
        )
    limits_text = f"memory {_fmt_threshold(round(mem_down, 1))}, connections {_fmt_threshold(round(conn_down, 1))}"
    if target is None:
        if not lower:
            return stay(f"no cheaper plan above the minimum {min_plan.name}")
        nearest = lower[-1]
        return stay(
            f"{nearest.name} would keep {_keeps(nearest, need_down_mem, need_down_conn)} for {what}, "
            f"over the down limits ({limits_text}: thresholds less the {policy.down_margin:.0%} margin)"
        )
    return decision(
        "down", target,
        f"every metric stayed under its threshold for {_fmt_duration(stab)} on {current.name} ({peaks_text}); "
        f"{target.name} keeps {_keeps(target, need_down_mem, need_down_conn)} for {what} "
        f"(down limits {limits_text}: thresholds less the {policy.down_margin:.0%} margin)",
        mem_pct=mem_pct, conn_pct=conn_pct,
    )
