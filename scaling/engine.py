"""The scaling engine: which plan a Redis instance should be on, given its recent samples.

Pure: standard library only, no I/O, no clock (``now`` is an argument), no Django. The
Celery workers, the ``check_scaling`` command and the offline simulation
(:mod:`scaling.simulation`) all call :func:`decide` with the same inputs, built by
:mod:`scaling.services.engine_input`.

Units
    Plan memory is in bytes (plan data gives MiB, 1,048,576 bytes, as Redis counts
    ``maxmemory``; see :meth:`Plan.from_limits`). Thresholds are percentages (``80`` means
    80 %). A plan whose connection limit is ``None`` (``-1`` in the plan data) has no
    connection limit: its connection percentage is ``None`` and the connection threshold
    never applies to it.

How a decision is made
    :func:`decide` measures the samples once (:class:`Situation`) and then asks the rules
    of :data:`RULES` in order; the first that returns a :class:`Decision` decides. Each
    decision names its rule (``Decision.rule``), the metrics that made it fire, and the
    numbers (:class:`MetricNumbers`: latest sample, window average and peak, fitted trend
    and projection, threshold); the sentence for people (``Decision.reason``) is rendered
    from those fields by :func:`render_reason`, so mails, the admin and tests never need to
    read the prose.

The rules, in order
    waiting_for_new_plan
        Only samples on the current plan count (``plan_name == current.name``), and after a
        plan change (ours or one made by hand and adopted) only those taken after
        ``last_change_at``; none yet means *stay*. Samples older than the longest window
        (plus a little slack for slow metric rates) and samples from the future are ignored.
    below_min_plan
        A current plan below ``min_plan`` is moved up into the range at once (to the
        cheapest plan of the range that holds the recent load, or to ``min_plan`` when
        there is no load to judge by): more capacity is always safe.
        A plan *above* ``max_plan`` (raised by hand, or a max plan lowered under it) is not
        fought: it is judged by the ordinary rules below, so it moves back into the range
        only by the down rules (whole stabilisation window, peak with margin), stays where
        the range cannot hold the load, and never goes further up.
    scheduled_minimum
        A schedule (``Policy.schedules``, :mod:`scaling.schedules`) whose window is open, or
        opens within ``Policy.schedule_raise_lead`` (the lead plus a scaling interval plus
        the plan change time, so the plan is up ``schedule_lead`` before the window even
        when the check comes an interval late), asks for a minimum plan: a current plan
        below it moves *up* to the cheapest plan from it to ``max_plan`` that holds the
        recent load (to the scheduled plan with no load to judge by; a scheduled plan above
        ``max_plan`` counts as ``max_plan``). No samples are needed.
    no_samples
        Nothing on the current plan in the look-back: *stay*.
    connections_refused
        Rejected connections rising between consecutive samples of the up window (and no
        memory dropping) mean *up* at once, sized by the demand: the peak of connected
        clients plus the most connections refused between two samples (the clients that
        wanted in), kept under the connection threshold (``DataDropped.connection_demand``),
        not a fixed multiple of the capped reading. A small storm takes one step, a big
        one goes straight to the plan that holds it.
    drop_after_drop_up
        With scale-in off (``Policy.scale_down`` false), memory dropping (as for
        ``data_drop``) on a plan the last change moved up to from a plan whose memory was full:
        the step sized with the threshold's headroom fell short, and a second headroom's
        overshoot would be kept for good, so memory is sized at ``data_drop_factor`` times its
        capped reading at the plan's *limit* (``DataDropped.memory_at_limit``). A plan that
        then holds the load over its threshold is breached, and ``breach`` adds the headroom
        on the measured demand.
    data_drop
        Evicted keys rising between consecutive samples of the up window (a counter that
        goes *down* is a Redis restart, not a rise), or used memory at the plan's limit
        (``memory_full``, 99 %), mean *up* at once, even on one or two samples and whatever
        the averages say. It counts as a breach (``breaching=True``). Redis reports at most
        its memory while dropping, so memory is sized at ``data_drop_factor`` (2x) its
        capped reading; refused connections at the same time are sized by their demand.
    cache_hit_rate_low
        A cache (``Policy.workload``) evicting keys (or with memory at ``memory_full``) in
        the up window while its hit rate there is under ``min_hit_rate`` means *up*, to a plan with ``data_drop_factor``
        times the memory it uses (a cache's memory is meant to be full: not sized by the
        threshold). For a cache, ``data_drop`` ignores evictions and full memory,
        and ``breach``/``early_trend`` judge connections only.
    too_few_samples
        Fewer than ``min_samples`` good samples means *stay*.
    steady_climb
        When ``breach`` or ``early_trend`` would move up and a climb observed steadily for
        ``climb_window`` (1 h: a significant line through its samples, each half rising at
        half its slope or more) would take a metric over the threshold of the plan they chose
        within ``sizing_horizon`` (2 h), *up* one plan further now (``Decision.climb``): one
        failover instead of two in quick succession. Never past ``max_plan``.
    breach
        The up-window average of memory % or connection % above its threshold means *up*.
    early_trend
        Early ("premature") scaling: a least-squares line through the trend window's
        samples, projected ``trend_horizon`` ahead, above the threshold means *up* now --
        but only when the rise is meaningful: at least ``trend_min_samples`` samples
        spanning at least a quarter of the trend window, slope t-statistic at least
        ``trend_min_t`` (twice that while they span less than half the window), a projected
        rise larger than the residual noise, and the fitted current level at least
        ``trend_min_level`` of the threshold. Flat noisy load does not pass these tests, nor
        does a step that has already happened: the slope over the up window must not be
        under half the trend's and lower by more than three standard errors.
    scale_down_disabled
        Scale-in protection (``Policy.scale_down=False``): nothing moves the plan down.
    scheduled_floor, at_min_plan, window_not_observed, gap_in_window, failed_reads_in_window,
    data_dropped_in_window, peak_over_threshold
        What keeps a plan from going down (each means *stay*): at or below a scheduled
        minimum while its window (or lead) lasts; at the minimum plan; the
        samples do not reach back to the start of the stabilisation window; a hole in them
        longer than the up window or 5 min; a failed read; a counter that rose (for a cache,
        evictions count only while its hit rate over the window is under the minimum); a metric
        whose peak went over its threshold in the window.
    settling_after_down
        For one trend window after a step down, a meaningful projected rise (not a breach:
        those rules come first) means *stay*: the down was judged on the window's peak with a
        margin, and a few minutes of rising samples on the new plan are more often noise or a
        swing turning than a breach on its way. Flap bait otherwise goes down and straight
        back up.
    still_climbing
        No step down into a plan that a rise (a line through the stabilisation window with
        a slope t-statistic of ``trend_min_t`` or more) would take over its threshold within
        ``sizing_horizon``: ``steady_climb`` would take it back up. *Stay*.
    daily_pattern
        No step down into a plan that the load of the same hours one pattern period ago
        (``Policy.pattern_period``, a day), over the next ``pattern_horizon`` (8 h), would
        take over a threshold (:class:`PeriodAgo`, measured by the caller): *down* only as
        far as that peak fits, or *stay*. Only where the pattern repeats: a period ago the
        stabilisation window's load fitted the lower plan too (under the thresholds), so an
        oscillation out of step with the period is left to the ordinary rules. A backlog
        purged at night and regrown each morning stays on the plan the morning needs
        instead of going down and back up.
    spike_drained
        After a climb of two plans or more seen in the look-back (the samples before the last
        change only rose, from a plan with ``min_samples`` good samples, and went over a
        threshold of the plan they were on: the load drove it, not a schedule), *down* to the plan
        the climb started from as soon as the last third of the stabilisation window fits it
        under ``threshold * (1 - down_margin)`` and no metric rises there (slope t-statistic
        under 2): that plan held this load just before the climb, and every minute of the
        whole window is paid at the top plan's price. The window's other checks (above) still
        apply. A swing across one plan boundary is left to ``scale_down``.
    scale_down
        Down when, for the whole stabilisation window, every metric stayed under its
        threshold; judged on the window's *peak*, which must fit under
        ``threshold * (1 - down_margin)`` of the lower plan. A rising metric (slope
        t-statistic >= 2) must also fit there when projected one stabilisation window
        ahead. The cheapest plan that fits is chosen (possibly several steps down), never
        below ``min_plan`` (nor a scheduled minimum in force) nor above ``max_plan``. After a
        scheduled window closes these ordinary rules bring the plan down. When the window's last half already fits
        a cheaper plan than the whole window does (the load fell recently), the engine
        waits for the window to confirm that deeper step (rule ``waiting_for_deeper_step``)
        instead of stepping down twice. No cheaper plan (``no_cheaper_plan``) or none that
        holds the load (``lower_plan_too_small``) means *stay*.

Up targets
    The cheapest plan above the current one (at least one step) and within the range that
    keeps every metric under its threshold, judged on the larger of the up-window peak and
    the trend projection (when the trend is meaningful). If none does, ``max_plan`` with
    ``cannot_scale_further=True``; already at (or above) ``max_plan`` and breaching means
    *stay* with ``cannot_scale_further=True`` and ``breaching=True``. A projected (not yet
    actual) breach at ``max_plan`` stays without the flag: nothing is wrong yet.

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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Callable, Literal, Protocol, Sequence

__all__ = [
    "MIB",
    "Plan",
    "Sample",
    "Policy",
    "Fit",
    "MetricNumbers",
    "DataDropped",
    "DownWindow",
    "HitRate",
    "Climb",
    "Decision",
    "Situation",
    "ScheduleWindows",
    "ScheduledMinimum",
    "RULES",
    "decide",
    "ladder_position",
    "render_reason",
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
Workload = Literal["queue", "cache"]
Metric = Literal["memory", "connections"]


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

    ``evicted_keys``, ``rejected_connections``, ``keyspace_hits`` and ``keyspace_misses``
    are Redis's cumulative counters (``INFO stats``); they restart from zero when Redis
    restarts.
    """

    at: datetime
    plan_name: str
    used_memory: int | None
    connected_clients: int | None
    evicted_keys: int | None
    rejected_connections: int | None
    ok: bool = True
    keyspace_hits: int | None = None  # cumulative, INFO stats; None: not read
    keyspace_misses: int | None = None

    @property
    def usable(self) -> bool:
        """A good reading: ``ok`` and with the memory and connection figures."""
        return self.ok and self.used_memory is not None and self.connected_clients is not None


class ScheduleWindows(Protocol):
    """A scheduled minimum plan, as :mod:`scaling.schedules` gives it (the engine reads no
    clock and no time zone itself)."""

    spec: str
    plan: str

    def window_around(self, now: datetime, lead: timedelta) -> tuple[datetime, datetime] | None:
        """The window (opens, closes) open at ``now`` or opening within ``lead``, else None."""


@dataclass(frozen=True)
class ScheduledMinimum:
    """The scheduled window in force at ``now`` (its lead included): the plan to be on at
    least (within the max plan) and the window that asks for it."""

    spec: str
    plan: Plan
    opens_at: datetime
    closes_at: datetime
    raise_lead: timedelta
    open: bool  # the window itself is open (not only its lead)


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
    schedules
        Scheduled minimum plans (:class:`ScheduleWindows`, built by
        :func:`scaling.schedules.parse_schedule`). Default none.
    schedule_lead
        How long before a scheduled window opens its plan should be up. Default 10 min;
        the engine asks for it :attr:`schedule_raise_lead` ahead.
    workload
        ``"queue"`` (default): every eviction is data lost, memory at the limit is data
        drop. ``"cache"``: evictions and memory at the limit are normal and memory % alone
        never scales up; the instance goes up when its hit rate over the up window is under
        ``min_hit_rate`` while keys are being evicted (rule ``cache_hit_rate_low``), or on
        connections as a queue does; it goes down by the queue's rules, evictions in the
        stabilisation window allowed only while the hit rate over it holds.
    min_hit_rate
        A cache's hit rate (% of lookups that hit, from ``keyspace_hits`` and
        ``keyspace_misses``) to keep. Default 90.
    scale_down
        ``False``: scale-in protection, the instance only ever moves up (rule
        ``scale_down_disabled``).
    sizing_horizon
        How far ahead a steady climb is projected when sizing an up move (rule
        ``steady_climb``). Default 2 h: a climb that would outgrow the plan chosen within
        that time goes one plan further now, saving a failover soon after.
    climb_window
        How long a climb must have been observed, steadily, before it is projected
        ``sizing_horizon`` ahead. Default half the sizing horizon (1 h): the line through
        the window's samples must rise significantly (t-statistic ``trend_min_t``) and so
        must each half of it, at half the whole window's slope or more, so an oscillation
        (a rise that has already turned) is not mistaken for a climb. Lengthens the
        look-back (:attr:`lookback`) to this window.
    pattern_period, pattern_horizon
        Rule ``daily_pattern``: no step down into a plan that the load of the same hours one
        ``pattern_period`` ago (default a day), over the next ``pattern_horizon`` (default
        8 h), would have outgrown. A lower plan the daily pattern says is needed again
        within 8 h would cost a step down and a step back up (two failovers) to save a few
        hours of the price difference.
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
    schedules: tuple[ScheduleWindows, ...] = ()
    schedule_lead: timedelta = timedelta(minutes=10)
    workload: Workload = "queue"
    min_hit_rate: float = 90.0
    scale_down: bool = True
    sizing_horizon: timedelta = timedelta(hours=2)
    climb_window: timedelta | None = None
    pattern_period: timedelta = timedelta(days=1)
    pattern_horizon: timedelta = timedelta(hours=8)

    def __post_init__(self) -> None:
        if self.workload not in ("queue", "cache"):
            raise ValueError(f"workload must be queue or cache, got {self.workload!r}")
        if not (0 < self.min_hit_rate <= 100):
            raise ValueError(f"min hit rate must be a percentage in (0, 100], got {self.min_hit_rate}")
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
        if self.climb_window is None:
            object.__setattr__(self, "climb_window", self.sizing_horizon / 2)
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
        if self.schedule_lead < timedelta(0):
            raise ValueError("schedule lead must not be negative")
        if self.sizing_horizon < timedelta(0):
            raise ValueError("sizing horizon must not be negative")
        if not (timedelta(0) <= self.pattern_horizon <= self.pattern_period):
            raise ValueError("pattern horizon must be between 0 and the pattern period")

    def pattern_window(self, now: datetime) -> tuple[datetime, datetime]:
        """The same hours one pattern period ago as the next ``pattern_horizon`` from
        ``now``: the window whose peak (:class:`PeriodAgo`) rule ``daily_pattern`` reads."""
        since = now - self.pattern_period
        return since, since + self.pattern_horizon

    def pattern_down_window(self, now: datetime) -> tuple[datetime, datetime]:
        """The stabilisation window one pattern period ago: whether the load then was as low
        as now (the pattern repeats) is read from its peak (:class:`PeriodAgo`)."""
        until = now - self.pattern_period
        return until - self.stabilisation_window, until

    @property
    def schedule_raise_lead(self) -> timedelta:
        """How long before a scheduled window opens its plan is asked for: the lead, plus a
        scaling interval (the check that sees it may come that much later) and the time a
        change takes to land, so the plan is up ``schedule_lead`` before the window."""
        return self.schedule_lead + self.scaling_interval + self.plan_change_time

    @property
    def lookback(self) -> timedelta:
        """How far back samples can matter; older ones are ignored."""
        return max(self.up_window, self.stabilisation_window, self.trend_window, self.climb_window) + max(
            self.up_window, _SLOWEST_METRIC_RATE
        )


# --------------------------------------------------------------------------------------
# The decision and its numbers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    """What ``plan`` would be at for a load: memory and connections in % of its limits
    (``None``: nothing measured, or, for connections, a plan with unlimited connections)."""

    plan: Plan
    memory_pct: float | None
    connection_pct: float | None

    @classmethod
    def of(cls, plan: Plan, need_memory: float | None, need_connections: float | None) -> "Fit":
        return cls(
            plan=plan,
            memory_pct=None if need_memory is None else plan.memory_pct(need_memory),
            connection_pct=None if need_connections is None else plan.connection_pct(need_connections),
        )


@dataclass(frozen=True)
class MetricNumbers:
    """One metric on the current plan, in % of that plan's limit, as the engine saw it.

    latest_pct
        The latest good sample.
    average_pct, peak_pct
        Mean and highest sample of the up window (``window`` on the decision).
    trend_slope_pct_per_min, trend_projected_pct
        The least-squares line through the trend window's samples: its slope, and its value
        ``trend_horizon`` from now. ``None`` when there are too few samples to fit one.
    trend_meaningful
        Whether that rise passes the tests that let it scale up early.
    """

    metric: Metric
    threshold: float
    latest_pct: float | None = None
    average_pct: float | None = None
    peak_pct: float | None = None
    trend_slope_pct_per_min: float | None = None
    trend_projected_pct: float | None = None
    trend_horizon: timedelta | None = None
    trend_meaningful: bool = False


@dataclass(frozen=True)
class DataDropped:
    """What showed that data is being dropped (rule ``data_drop``)."""

    evicted_keys_rise: int
    rejected_connections_rise: int
    memory_full_pct: float | None  # the up window's peak memory, when at the plan's limit
    sized_for_factor: float
    rejected_step: int = 0  # the most connections refused between two consecutive samples
    connection_peak: int | None = None  # the up window's peak of connected clients (capped at the limit)
    connection_demand: int | None = None  # connection_peak + rejected_step: the clients that wanted in
    memory_at_limit: bool = False  # memory sized for the factor at the plan's limit, not under the threshold


@dataclass(frozen=True)
class Climb:
    """A steady climb that would outgrow ``first`` (the plan the ordinary up rule chose)
    within ``horizon`` (rule ``steady_climb``): the trend's projection there, in % of
    ``first``'s limit."""

    first: Plan
    horizon: timedelta
    metric: Metric
    projected_pct: float  # of first's limit, ``horizon`` from now


@dataclass(frozen=True)
class HitRate:
    """A cache's hit rate over a window: the rise of ``keyspace_hits`` over the rise of
    ``keyspace_hits + keyspace_misses``, and the keys evicted meanwhile."""

    hits: int
    misses: int
    evicted_keys: int
    min_pct: float  # the policy's min_hit_rate

    @property
    def pct(self) -> float | None:
        """% of lookups that hit; ``None`` when there were none."""
        lookups = self.hits + self.misses
        return None if lookups == 0 else self.hits / lookups * 100.0

    @property
    def holds(self) -> bool:
        """At or above the minimum. No lookups at all: nothing was missed, it holds."""
        pct = self.pct
        return pct is None or pct >= self.min_pct

    @classmethod
    def over(cls, samples: Sequence["Sample"], min_pct: float) -> "HitRate":
        return cls(hits=_counter_rise(samples, "keyspace_hits"), misses=_counter_rise(samples, "keyspace_misses"),
                   evicted_keys=_counter_rise(samples, "evicted_keys"), min_pct=min_pct)


@dataclass(frozen=True)
class PeriodAgo:
    """The peaks of the load one pattern period ago, measured by the caller over its stored
    samples (``None`` when none were stored then): over the hours ahead
    (:meth:`Policy.pattern_window`, ``since``..``until``) and over the stabilisation window
    then (:meth:`Policy.pattern_down_window`, ``then_*``)."""

    since: datetime
    until: datetime
    peak_memory: int | None = None  # bytes
    peak_connections: int | None = None
    then_peak_memory: int | None = None  # over Policy.pattern_down_window: the load as now, then
    then_peak_connections: int | None = None

    @property
    def measured(self) -> bool:
        return None not in (self.peak_memory, self.peak_connections, self.then_peak_memory,
                            self.then_peak_connections)


@dataclass(frozen=True)
class DownWindow:
    """The stabilisation window as the down rules judged it."""

    window: timedelta
    observed: timedelta | None = None  # how long the plan has been observed, when less than the window
    gap: timedelta | None = None  # the longest hole in the samples, when too long
    max_gap: timedelta | None = None
    failed_reads: int = 0
    peak_memory_pct: float | None = None
    peak_connection_pct: float | None = None
    rising: tuple[Metric, ...] = ()  # metrics whose rise was projected a window ahead
    margin: float = 0.0
    memory_limit_pct: float | None = None  # thresholds less the margin
    connection_limit_pct: float | None = None
    deeper: Plan | None = None  # the cheaper plan the last half of the window already fits
    climbed_from: Plan | None = None  # rule spike_drained: the plan the climb started from


@dataclass(frozen=True)
class Decision:
    """What to do, which rule decided it, and the numbers it decided on.

    ``rule`` names the rule (see the module docstring); ``metrics`` the metrics that made
    it fire; ``memory``/``connections`` the numbers of each metric on the current plan
    (``connections`` is ``None`` on a plan with unlimited connections); ``fit`` what the
    target (or, when none fits, the nearest candidate) would be at; ``reason`` the sentence
    for people, rendered from these fields.
    """

    action: Action
    target: Plan | None
    rule: str
    current: Plan
    min_plan: Plan
    max_plan: Plan
    breaching: bool = False
    data_drop: bool = False
    cannot_scale_further: bool = False
    above_max_plan: bool = False  # the current plan is above the range (set by hand, or max lowered)
    metrics: tuple[Metric, ...] = ()
    memory: MetricNumbers | None = None
    connections: MetricNumbers | None = None
    window: timedelta | None = None  # the up window the averages and peaks cover
    fit: Fit | None = None
    dropped: DataDropped | None = None
    down: DownWindow | None = None
    samples: int = 0  # good samples in the up window
    samples_needed: int = 0
    since_change: timedelta | None = None
    lookback: timedelta | None = None
    scheduled: ScheduledMinimum | None = None  # the schedule that raised or held the plan
    hit_rate: HitRate | None = None  # a cache's, over the window its rule judged
    climb: Climb | None = None  # a steady climb's projection past the first plan (rule steady_climb)
    period_ago: PeriodAgo | None = None  # the load a pattern period ago (rule daily_pattern)

    @property
    def memory_pct(self) -> float | None:
        """The up-window average of memory % (``None`` when there was nothing to average)."""
        return self.memory.average_pct if self.memory else None

    @property
    def connection_pct(self) -> float | None:
        """The up-window average of connection % (``None`` also on unlimited plans)."""
        return self.connections.average_pct if self.connections else None

    @property
    def reason(self) -> str:
        return render_reason(self)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def ladder_position(plan: Plan) -> tuple[int, float, str]:
    """Where a plan stands in scaling order: by memory, then cost, then name."""
    return plan.memory_bytes, plan.monthly_cost, plan.name


def sort_ladder(ladder: Sequence[Plan]) -> list[Plan]:
    """The ladder in scaling order (:func:`ladder_position`; duplicates by name are an
    error)."""
    plans = sorted(ladder, key=ladder_position)
    names = [p.name for p in plans]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"plan ladder names a plan twice: {', '.join(dupes)}")
    if not plans:
        raise ValueError("the plan ladder is empty")
    return plans


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


def _largest_step(samples: Sequence[Sample], attr: str) -> int:
    """The largest increase of a cumulative counter between two consecutive readings (a
    counter that went down is a restart, not a step)."""
    values = [getattr(s, attr) for s in samples if getattr(s, attr) is not None]
    return max((b - a for a, b in zip(values, values[1:]) if b > a), default=0)


@dataclass(frozen=True)
class _Trend:
    n: int
    slope: float  # units per second
    level: float  # fitted value at now
    projected: float  # fitted value at now + horizon
    noise: float  # residual standard deviation
    t_stat: float
    slope_se: float = 0.0  # the slope's standard error

    @property
    def rise(self) -> float:
        return self.projected - self.level


def _fit_line(points: Sequence[tuple[float, float]], horizon_s: float) -> _Trend | None:
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
    return _Trend(n=n, slope=slope, level=level, projected=level + slope * horizon_s, noise=noise, t_stat=t_stat,
                  slope_se=se)


@dataclass(frozen=True)
class _MetricView:
    """One metric (memory or connections) over the windows, in raw units."""

    name: Metric
    attr: str  # the Sample attribute
    limit: int | None  # the current plan's limit; None: unlimited
    threshold: float
    latest: float | None  # the latest good sample
    avg: float | None  # up-window average
    peak: float | None  # up-window peak
    trend: _Trend | None
    min_t: float = 0.0  # the slope's t-statistic needed (stricter on a short span)
    recent_line: _Trend | None = None  # the line through the up window's samples


    def meaningful_rise(self, policy: Policy) -> bool:
        """The trend rises for real: a significant slope (t-statistic at least
        ``min_t``), a projected rise over the horizon larger than the residual noise, and
        still rising over the up window: a slope there under half the trend's, and lower
        by more than three standard errors, is a step that has already happened (the load
        jumped, then stayed), not a rise."""
        tr = self.trend
        if tr is None or tr.slope <= 0 or tr.t_stat < max(self.min_t, policy.trend_min_t):
            return False
        recent = self.recent_line
        if recent is not None and tr.slope - recent.slope > max(tr.slope / 2, 3 * recent.slope_se):
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

    def pct(self, value: float | None) -> float | None:
        if value is None or self.limit is None:
            return None
        return value / self.limit * 100.0

    def numbers(self, policy: Policy) -> MetricNumbers | None:
        if self.limit is None:
            return None
        tr = self.trend
        return MetricNumbers(
            metric=self.name,
            threshold=self.threshold,
            latest_pct=self.pct(self.latest),
            average_pct=self.pct(self.avg),
            peak_pct=self.pct(self.peak),
            trend_slope_pct_per_min=None if tr is None else tr.slope * 60 / self.limit * 100,
            trend_projected_pct=None if tr is None else self.pct(tr.projected),
            trend_horizon=None if tr is None else policy.trend_horizon,
            trend_meaningful=self.meaningful_rise(policy),
        )


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


# --------------------------------------------------------------------------------------
# What the samples say (measured once, read by every rule)
# --------------------------------------------------------------------------------------


class Situation:
    """The inputs of :func:`decide`, validated, and what the samples measure: what every
    rule reads. Built once per decision."""

    def __init__(self, *, current, ladder, min_plan, max_plan, samples, policy, last_change_at, now,
                 period_ago=None):
        plans = sort_ladder(ladder)
        rank = {p.name: i for i, p in enumerate(plans)}
        for label, plan in (("current", current), ("min", min_plan), ("max", max_plan)):
            if plan.name not in rank:
                raise ValueError(f"{label} plan {plan.name} is not in the plan ladder")
        self.plans, self.rank = plans, rank
        self.lo, self.hi, self.cur = rank[min_plan.name], rank[max_plan.name], rank[current.name]
        if self.lo > self.hi:
            raise ValueError(f"min plan {min_plan.name} is above max plan {max_plan.name}")
        self.current = plans[self.cur]
        self.min_plan, self.max_plan = plans[self.lo], plans[self.hi]
        self.policy, self.now, self.last_change_at = policy, now, last_change_at
        self.period_ago = period_ago

        # The samples that count.
        oldest = now - policy.lookback
        self.relevant = sorted(
            (
                s
                for s in samples
                if s.plan_name == self.current.name
                and oldest <= s.at <= now
                and (last_change_at is None or s.at > last_change_at)
            ),
            key=lambda s: s.at,
        )
        self.good = [s for s in self.relevant if s.usable]
        # The samples before the last change, oldest first (their plan tells the change's way).
        self.samples_before_change = sorted(
            (s for s in samples if last_change_at is not None and oldest <= s.at <= last_change_at),
            key=lambda s: s.at,
        )

        # Up window: at least the last min_samples good samples.
        recent = [s for s in self.good if s.at > now - policy.up_window]
        if len(recent) < policy.min_samples:
            recent = self.good[-policy.min_samples:]
        self.recent = recent
        self.up_span = max(policy.up_window, (now - recent[0].at) if recent else timedelta(0))

        # Trend window: at least the last trend_min_samples good samples. A few readings
        # just after a start or a change are mostly noise, so a span under half the window
        # needs a twice as significant slope, and under a quarter of it the trend does not
        # count: a steep ramp (a queue filling in minutes) is still caught early, flat
        # noise is not.
        trend_samples = [s for s in self.good if s.at > now - policy.trend_window]
        if len(trend_samples) < policy.trend_min_samples:
            trend_samples = self.good[-policy.trend_min_samples:]
        trend_span = trend_samples[-1].at - trend_samples[0].at if trend_samples else timedelta(0)
        if len(trend_samples) < policy.trend_min_samples or trend_span < policy.trend_window / 4:
            trend_samples = []
        self.trend_samples = trend_samples
        self.min_t = policy.trend_min_t * (2 if trend_span < policy.trend_window / 2 else 1)

        self.mem = self._view("memory", "used_memory", self.current.memory_bytes, policy.memory_threshold)
        self.conn = self._view("connections", "connected_clients", self.current.connection_limit,
                               policy.connection_threshold)
        self.cache = policy.workload == "cache"
        # A cache's memory is full by design: it never sizes an up move (only a low hit rate
        # does, in its own rule).
        self.need_mem = None if self.cache else self.mem.need(policy)
        self.need_conn = self.conn.need(policy)
        self.up_hit_rate = HitRate.over(self.recent, policy.min_hit_rate)

    @property
    def up_views(self) -> tuple[_MetricView, ...]:
        """The metrics whose level may scale up: a cache's memory % never does alone."""
        return (self.conn,) if self.cache else self.views

    def _view(self, name: Metric, attr: str, limit: int | None, threshold: float) -> _MetricView:
        values = [getattr(s, attr) for s in self.recent]
        trend = recent_line = None
        if len(self.trend_samples) >= self.policy.trend_min_samples:
            horizon_s = self.policy.trend_horizon.total_seconds()
            points = [((s.at - self.now).total_seconds(), float(getattr(s, attr))) for s in self.trend_samples]
            trend = _fit_line(points, horizon_s)
            recent_line = _fit_line([((s.at - self.now).total_seconds(), float(getattr(s, attr))) for s in self.recent], 0.0)
        return _MetricView(
            name=name, attr=attr, limit=limit, threshold=threshold,
            latest=values[-1] if values else None,
            avg=sum(values) / len(values) if values else None,
            peak=max(values) if values else None,
            trend=trend, min_t=self.min_t, recent_line=recent_line,
        )

    @property
    def views(self) -> tuple[_MetricView, _MetricView]:
        return self.mem, self.conn

    def fitting(self, candidates: Sequence[Plan], need_mem: float | None, need_conn: float | None,
                memory_limit_pct: float | None = None) -> Plan | None:
        """The cheapest candidate that keeps both needs under the thresholds (memory under
        ``memory_limit_pct`` instead, when given)."""
        policy = self.policy
        mem_pct = policy.memory_threshold if memory_limit_pct is None else memory_limit_pct
        fit = [p for p in candidates if _fits(p, need_mem, need_conn, mem_pct, policy.connection_threshold)]
        return _cheapest(fit, self.rank)

    def decision(self, action: Action, rule: str, target: Plan | None = None, **fields) -> Decision:
        return Decision(
            action=action, target=target, rule=rule,
            current=self.current, min_plan=self.min_plan, max_plan=self.max_plan,
            above_max_plan=self.cur > self.hi,
            memory=self.mem.numbers(self.policy), connections=self.conn.numbers(self.policy),
            window=self.up_span, samples=len(self.recent), samples_needed=self.policy.min_samples,
            lookback=self.policy.lookback,
            **fields,
        )

    def up(self, rule: str, *, metrics: tuple[Metric, ...] = (), breaching: bool, data_drop: bool = False,
           need_mem: float | None, need_conn: float | None, dropped: DataDropped | None = None,
           hit_rate: HitRate | None = None, memory_limit_pct: float | None = None) -> Decision:
        """Up to the cheapest plan of the range that holds the needs, at least one step; the
        max plan (cannot scale further) when none does; stay when already at or above it.
        ``memory_limit_pct`` replaces the memory threshold in the fit when given."""
        common = dict(metrics=metrics, breaching=breaching, data_drop=data_drop, dropped=dropped, hit_rate=hit_rate)
        if self.cur >= self.hi:
            return self.decision("stay", rule, cannot_scale_further=breaching or data_drop, **common)
        target = self.fitting(self.plans[self.cur + 1:self.hi + 1], need_mem, need_conn, memory_limit_pct)
        if target is None:
            return self.decision("up", rule, self.max_plan, cannot_scale_further=True,
                                 fit=Fit.of(self.max_plan, need_mem, need_conn), **common)
        return self.decision("up", rule, target, fit=Fit.of(target, need_mem, need_conn), **common)

    # --- the stabilisation window, for the down rules ---

    @cached_property
    def memory_full_before_change(self) -> bool:
        """The last change was up from a plan whose memory was full (at ``memory_full``) in
        its last sample: a move up for a data drop."""
        before = [s for s in self.samples_before_change
                  if s.usable and s.plan_name in self.rank and s.plan_name != self.current.name]
        if not before:
            return False
        last = before[-1]
        plan = self.plans[self.rank[last.plan_name]]
        return (self.rank[last.plan_name] < self.cur
                and last.used_memory >= self.policy.memory_full * plan.memory_bytes)

    @cached_property
    def down_window(self) -> list[Sample] | None:
        """The samples from the last one at or before the window's start; ``None`` when
        none reaches back that far."""
        window_start = self.now - self.policy.stabilisation_window
        anchors = [s for s in self.relevant if s.at <= window_start]
        if not anchors:
            return None
        return [s for s in self.relevant if s.at >= anchors[-1].at]

    def down(self, **fields) -> DownWindow:
        return DownWindow(window=self.policy.stabilisation_window, **fields)

    @cached_property
    def climbed_from(self) -> Plan | None:
        """The plan a climb of two plans or more started from, seen in the look-back: the
        samples before the last change are on plans that only rose, from this one (with at
        least ``min_samples`` good samples on it) to one below the current plan."""
        before = [x for x in self.samples_before_change if x.plan_name in self.rank]
        while before and before[-1].plan_name == self.current.name:  # taken as the change landed
            before.pop()
        ranks = [self.rank[x.plan_name] for x in before]
        if not ranks or any(b < a for a, b in zip(ranks, ranks[1:])) or ranks[-1] >= self.cur:
            return None
        if ranks[0] > self.cur - 2 or sum(1 for x in before if x.usable and self.rank[x.plan_name] == ranks[0]) < (
                self.policy.min_samples):
            return None
        # The load drove the climb (a schedule's raise is not a spike): it went over a
        # threshold of the plan it was on.
        if not any(x.usable and self._over_threshold(x) for x in before):
            return None
        return self.plans[ranks[0]]

    def _over_threshold(self, x: Sample) -> bool:
        plan = self.plans[self.rank[x.plan_name]]
        conn = plan.connection_pct(x.connected_clients)
        return plan.memory_pct(x.used_memory) > self.policy.memory_threshold or (
            conn is not None and conn > self.policy.connection_threshold)

    # --- schedules ---

    @cached_property
    def scheduled(self) -> ScheduledMinimum | None:
        """The highest scheduled minimum in force now (lead included), within the max
        plan; ``None`` when no schedule asks for anything now."""
        lead = self.policy.schedule_raise_lead
        best = None
        for schedule in self.policy.schedules:
            window = schedule.window_around(self.now, lead)
            if window is None:
                continue
            if schedule.plan not in self.rank:
                raise ValueError(f"schedule {schedule.spec!r}: plan {schedule.plan} is not in the plan ladder")
            position = min(self.rank[schedule.plan], self.hi)
            if best is None or position > best[0]:
                opens, closes = window
                best = (position, ScheduledMinimum(spec=schedule.spec, plan=self.plans[position], opens_at=opens,
                                                   closes_at=closes, raise_lead=lead, open=opens <= self.now))
        return None if best is None else best[1]

    @cached_property
    def down_floor(self) -> int:
        """The lowest ladder position a scale-down may reach: the min plan, or a scheduled
        minimum in force."""
        if self.scheduled is None:
            return self.lo
        return max(self.lo, self.rank[self.scheduled.plan.name])


# --------------------------------------------------------------------------------------
# The rules: each returns a Decision, or None to let the next rule judge
# --------------------------------------------------------------------------------------

def waiting_for_new_plan(s: Situation) -> Decision | None:
    if s.last_change_at is not None and not s.relevant:
        return s.decision("stay", "waiting_for_new_plan", since_change=s.now - s.last_change_at)
    return None


def below_min_plan(s: Situation) -> Decision | None:
    if s.cur >= s.lo:
        return None
    in_range = s.plans[s.lo:s.hi + 1]
    if s.need_mem is None:  # no load to size it by
        return s.decision("up", "below_min_plan", s.min_plan)
    target = s.fitting(in_range, s.need_mem, s.need_conn)
    cannot = target is None
    target = target or s.max_plan
    return s.decision("up", "below_min_plan", target, cannot_scale_further=cannot,
                      fit=Fit.of(target, s.need_mem, s.need_conn))


def scheduled_minimum(s: Situation) -> Decision | None:
    """Up to a scheduled minimum plan before its window opens (or at once inside it), to
    the cheapest plan from it up that holds the recent load; no samples needed."""
    scheduled = s.scheduled
    if scheduled is None or s.cur >= s.rank[scheduled.plan.name]:
        return None
    candidates = s.plans[s.rank[scheduled.plan.name]:s.hi + 1]
    target = s.fitting(candidates, s.need_mem, s.need_conn) if s.need_mem is not None else None
    target = target or scheduled.plan
    fit = Fit.of(target, s.need_mem, s.need_conn) if s.need_mem is not None else None
    return s.decision("up", "scheduled_minimum", target, fit=fit, scheduled=scheduled)


def no_samples(s: Situation) -> Decision | None:
    if not s.relevant:
        return s.decision("stay", "no_samples")
    return None


def _dropped(s: Situation) -> DataDropped | None:
    """What shows data being dropped in the up window, or ``None``. Refused connections
    are sized by the demand: the clients connected at the peak plus the most refused
    between two samples (the clients that wanted in and could not)."""
    evicted = 0 if s.cache else _counter_rise(s.recent, "evicted_keys")
    rejected = _counter_rise(s.recent, "rejected_connections")
    memory_full = (not s.cache and s.mem.peak is not None
                   and s.mem.peak >= s.policy.memory_full * s.current.memory_bytes)
    if not (evicted or rejected or memory_full):
        return None
    step = _largest_step(s.recent, "rejected_connections") if rejected else 0
    peak = None if s.conn.peak is None else int(s.conn.peak)
    return DataDropped(
        evicted_keys_rise=evicted, rejected_connections_rise=rejected,
        memory_full_pct=s.current.memory_pct(s.mem.peak) if memory_full else None,
        sized_for_factor=s.policy.data_drop_factor, rejected_step=step,
        connection_peak=peak if rejected else None,
        connection_demand=(peak or 0) + step if rejected else None,
    )


def _drop_up(s: Situation, rule: str, dropped: DataDropped) -> Decision:
    """Up for data being dropped: memory sized at ``data_drop_factor`` times its capped
    reading while it drops (under the threshold, or the plan's limit when
    ``dropped.memory_at_limit``), connections at their demand while they are refused."""
    memory_dropping = bool(dropped.evicted_keys_rise) or dropped.memory_full_pct is not None
    metrics = tuple(m for m, dropping in (("memory", memory_dropping),
                                          ("connections", dropped.rejected_connections_rise)) if dropping)
    need_conn = s.conn.need(s.policy)
    if dropped.connection_demand is not None:
        need_conn = max(need_conn or 0.0, float(dropped.connection_demand))
    return s.up(rule, metrics=metrics, breaching=True, data_drop=True, dropped=dropped,
                need_mem=s.mem.need(s.policy, dropping=memory_dropping), need_conn=need_conn,
                memory_limit_pct=100.0 if dropped.memory_at_limit else None)


def connections_refused(s: Situation) -> Decision | None:
    """A storm of refused connections (and no memory dropping): up at once, to the cheapest
    plan that keeps the demand (connected + the most refused between two samples) under the
    connection threshold, not a fixed multiple of the capped reading."""
    dropped = _dropped(s)
    if dropped is None or not dropped.rejected_connections_rise:
        return None
    if dropped.evicted_keys_rise or dropped.memory_full_pct is not None:
        return None  # memory is dropping too: data_drop sizes both
    return _drop_up(s, "connections_refused", dropped)


def drop_after_drop_up(s: Situation) -> Decision | None:
    """Scale-in off and memory dropping again right after a move up for memory dropping:
    sized at the plan's limit, not under the threshold (module docstring)."""
    if s.policy.scale_down or not s.memory_full_before_change:
        return None
    dropped = _dropped(s)
    if dropped is None or not (dropped.evicted_keys_rise or dropped.memory_full_pct is not None):
        return None
    return _drop_up(s, "drop_after_drop_up", replace(dropped, memory_at_limit=True))


def data_drop(s: Situation) -> Decision | None:
    """Evictions or memory at the limit (with or without refused connections): up at once,
    whatever the averages say. Dropping data is worse than a breach: it counts as one. The
    readings are capped at the limits, so memory is sized for data_drop_factor times them."""
    dropped = _dropped(s)
    if dropped is None:
        return None
    return _drop_up(s, "data_drop", dropped)


def cache_hit_rate_low(s: Situation) -> Decision | None:
    """A cache evicting keys while its hit rate is under the minimum: its working set has
    outgrown the plan."""
    rate = s.up_hit_rate
    # Memory at the limit counts as evicting too: a trace (or an old Redis) may lack the
    # counter, and a full cache with an evicting policy is evicting.
    full = s.mem.peak is not None and s.mem.peak >= s.policy.memory_full * s.current.memory_bytes
    if not s.cache or rate.holds or not (rate.evicted_keys or full):
        return None
    # A cache's memory is meant to be full, so the target is sized by memory, not by the
    # threshold: data_drop_factor times the capped reading, at 100 % of the new plan.
    need_mem = s.mem.peak * s.policy.data_drop_factor * s.policy.memory_threshold / 100
    return s.up("cache_hit_rate_low", metrics=("memory",), breaching=True, hit_rate=rate,
                need_mem=need_mem, need_conn=s.need_conn)


def too_few_samples(s: Situation) -> Decision | None:
    if len(s.recent) < s.policy.min_samples:
        return s.decision("stay", "too_few_samples")
    return None


def _rising_line(samples: Sequence[Sample], attr: str, now: datetime, min_t: float) -> _Trend | None:
    """A line through the samples' ``attr`` (seconds relative to ``now``) that rises with
    a slope t-statistic of at least ``min_t``, or ``None``."""
    points = [((x.at - now).total_seconds(), float(getattr(x, attr))) for x in samples if x.usable]
    line = _fit_line(points, 0.0)
    if line is None or line.slope <= 0 or line.t_stat < min_t:
        return None
    return line


def _steady_climb_line(s: Situation, view: _MetricView) -> _Trend | None:
    """The climb of the last ``climb_window``, if it was observed across the whole window
    and rose steadily: significantly over the window, and over each half at half that slope
    or more (an oscillation that has turned fails this)."""
    window = s.policy.climb_window
    samples = [x for x in s.good if x.at >= s.now - window]
    if not samples or samples[-1].at - samples[0].at < window * 0.9:
        return None
    line = _rising_line(samples, view.attr, s.now, s.policy.trend_min_t)
    if line is None:
        return None
    middle = s.now - window / 2
    for half in ([x for x in samples if x.at < middle], [x for x in samples if x.at >= middle]):
        part = _fit_line([((x.at - s.now).total_seconds(), float(getattr(x, view.attr))) for x in half], 0.0)
        if part is None or part.slope < line.slope / 2:
            return None
    return line


def _climb_past(s: Situation, plan: Plan, line_of: Callable[[_MetricView], _Trend | None]) -> Climb | None:
    """A rise (``line_of`` each metric that may scale up) that takes a metric over
    ``plan``'s threshold within ``sizing_horizon``, or ``None``."""
    horizon = s.policy.sizing_horizon
    for view in s.up_views:
        limit = plan.memory_bytes if view.name == "memory" else plan.connection_limit
        if view.limit is None or limit is None:
            continue
        line = line_of(view)
        if line is None:
            continue
        projected_pct = (line.level + line.slope * horizon.total_seconds()) / limit * 100
        if projected_pct > view.threshold:
            return Climb(first=plan, horizon=horizon, metric=view.name, projected_pct=projected_pct)
    return None


def steady_climb(s: Situation) -> Decision | None:
    """A climb the trend says will outgrow the plan the ordinary up rule picks (breach or
    early_trend) within ``sizing_horizon`` goes one plan further now: one failover instead
    of two in quick succession. Only on a meaningful rise, never past the max plan."""
    first = breach(s) or early_trend(s)
    if first is None or first.action != "up" or first.cannot_scale_further or s.rank[first.target.name] >= s.hi:
        return None
    climb = _climb_past(s, first.target, lambda view: _steady_climb_line(s, view))
    if climb is None:
        return None
    target = s.plans[s.rank[first.target.name] + 1]
    return s.decision("up", "steady_climb", target, metrics=(climb.metric,), breaching=first.breaching,
                      fit=Fit.of(target, s.need_mem, s.need_conn), climb=climb)


def breach(s: Situation) -> Decision | None:
    metrics = tuple(
        v.name for v in s.up_views if v.limit is not None and v.avg is not None and v.pct(v.avg) > v.threshold
    )
    if metrics:
        return s.up("breach", metrics=metrics, breaching=True, need_mem=s.need_mem, need_conn=s.need_conn)
    return None


def settling_after_down(s: Situation) -> Decision | None:
    """For one trend window after a step down, a projected rise does not move the plan back
    up: the down was judged on the stabilisation window's peak with a margin, so a few
    minutes of samples rising on the new plan are more likely noise or the start of a swing
    than a breach on its way. A breach or a data drop still moves it up at once (their rules
    come first)."""
    if s.last_change_at is None or s.now - s.last_change_at >= s.policy.trend_window:
        return None
    before = [x for x in s.samples_before_change if x.plan_name != s.current.name and x.plan_name in s.rank]
    if not before or s.rank[before[-1].plan_name] <= s.cur:
        return None
    early = early_trend(s)
    if early is None or early.action != "up":
        return None
    return s.decision("stay", "settling_after_down", metrics=early.metrics, since_change=s.now - s.last_change_at)


def early_trend(s: Situation) -> Decision | None:
    metrics = tuple(
        v.name for v in s.up_views
        if v.limit is not None and v.meaningful_rise(s.policy)
        and v.pct(v.trend.projected) > v.threshold
        and v.pct(v.trend.level) >= s.policy.trend_min_level * v.threshold
    )
    if metrics:
        return s.up("early_trend", metrics=metrics, breaching=False, need_mem=s.need_mem, need_conn=s.need_conn)
    return None


def scheduled_floor(s: Situation) -> Decision | None:
    """No scale-down below a scheduled minimum while its window (or its lead) lasts."""
    scheduled = s.scheduled
    if scheduled is not None and s.cur <= s.rank[scheduled.plan.name]:
        return s.decision("stay", "scheduled_floor", scheduled=scheduled)
    return None


def scale_down_disabled(s: Situation) -> Decision | None:
    """Scale-in protection: the instance only ever moves up."""
    if not s.policy.scale_down:
        return s.decision("stay", "scale_down_disabled")
    return None


def at_min_plan(s: Situation) -> Decision | None:
    if s.cur <= s.lo:
        return s.decision("stay", "at_min_plan")
    return None


def window_not_observed(s: Situation) -> Decision | None:
    if s.down_window is None:
        return s.decision("stay", "window_not_observed", down=s.down(observed=s.now - s.relevant[0].at))
    return None


def gap_in_window(s: Situation) -> Decision | None:
    # "Observed the whole window" also means no hole in it: a stopped collector leaves
    # gaps (a failed read is recorded as a sample with ok=False and caught below).
    max_gap = max(s.policy.up_window, _SLOWEST_METRIC_RATE)
    times = [x.at for x in s.down_window] + [s.now]
    gap = max(b - a for a, b in zip(times, times[1:]))
    if gap > max_gap:
        return s.decision("stay", "gap_in_window", down=s.down(gap=gap, max_gap=max_gap))
    return None


def failed_reads_in_window(s: Situation) -> Decision | None:
    failed = sum(1 for x in s.down_window if not x.usable)
    if failed:
        return s.decision("stay", "failed_reads_in_window", down=s.down(failed_reads=failed))
    return None


def data_dropped_in_window(s: Situation) -> Decision | None:
    # A cache may evict on the way down, but only while its hit rate over the window holds.
    evictions_count = not (s.cache and HitRate.over(s.down_window, s.policy.min_hit_rate).holds)
    if (evictions_count and _counter_rise(s.down_window, "evicted_keys")) or _counter_rise(
        s.down_window, "rejected_connections"
    ):
        return s.decision("stay", "data_dropped_in_window", down=s.down(),
                          hit_rate=HitRate.over(s.down_window, s.policy.min_hit_rate) if s.cache else None)
    return None


def peak_over_threshold(s: Situation) -> Decision | None:
    peak_mem = s.current.memory_pct(max(x.used_memory for x in s.down_window))
    peak_conn = s.current.connection_pct(max(x.connected_clients for x in s.down_window))
    metrics = tuple(
        name for name, peak, thr in (("memory", peak_mem, s.policy.memory_threshold),
                                     ("connections", peak_conn, s.policy.connection_threshold))
        if peak is not None and peak > thr
    )
    if metrics:
        return s.decision("stay", "peak_over_threshold", metrics=metrics,
                          down=s.down(peak_memory_pct=peak_mem, peak_connection_pct=peak_conn))
    return None


def scale_down(s: Situation) -> Decision:
    policy, stab = s.policy, s.policy.stabilisation_window
    window = s.down_window
    peak_mem = max(x.used_memory for x in window)
    peak_conn = max(x.connected_clients for x in window)

    # A rising trend must still fit the lower plan when projected over another
    # stabilisation window: the soonest the engine could be sure enough to come back down.
    need = {"memory": float(peak_mem), "connections": float(peak_conn)}
    rising = []
    for view in s.views:
        tr = view.trend
        if tr is None or tr.slope <= 0 or tr.t_stat < _RISING_T:
            continue
        need[view.name] = max(need[view.name], tr.level + tr.slope * stab.total_seconds())
        rising.append(view.name)
    need_mem, need_conn = need["memory"], need["connections"]

    margin = 1 - policy.down_margin
    mem_down, conn_down = policy.memory_threshold * margin, policy.connection_threshold * margin
    # Never above the max plan: a plan raised above the range by hand comes back into it.
    lower = [p for p in s.plans[s.down_floor:min(s.cur, s.hi + 1)] if p.monthly_cost < s.current.monthly_cost]
    target = _cheapest([p for p in lower if _fits(p, need_mem, need_conn, mem_down, conn_down)], s.rank)
    figures = dict(
        peak_memory_pct=s.current.memory_pct(peak_mem), peak_connection_pct=s.current.connection_pct(peak_conn),
        rising=tuple(rising), margin=policy.down_margin, memory_limit_pct=mem_down, connection_limit_pct=conn_down,
    )

    # The load fell within the window: if its last half already fits a cheaper plan than
    # the whole window's peak does, wait (at most half a window) and take one step there
    # rather than an intermediate step that restarts the stabilisation clock.
    half = [x for x in window if x.at >= s.now - stab / 2]
    if target is not None and half:
        half_mem = max(need_mem - peak_mem + max(x.used_memory for x in half), 0.0)
        half_conn = max(need_conn - peak_conn + max(x.connected_clients for x in half), 0.0)
        deeper = _cheapest([p for p in lower if _fits(p, half_mem, half_conn, mem_down, conn_down)], s.rank)
        if deeper is not None and deeper.monthly_cost < target.monthly_cost:
            return s.decision("stay", "waiting_for_deeper_step", fit=Fit.of(target, need_mem, need_conn),
                              down=s.down(deeper=deeper, **figures))
    if target is None:
        if not lower:
            return s.decision("stay", "no_cheaper_plan", down=s.down(**figures))
        return s.decision("stay", "lower_plan_too_small", fit=Fit.of(lower[-1], need_mem, need_conn),
                          down=s.down(**figures))
    return s.decision("down", "scale_down", target, fit=Fit.of(target, need_mem, need_conn), down=s.down(**figures))


def spike_drained(s: Situation) -> Decision | None:
    """After a climb of two plans or more (a spike, not a swing across one boundary), down to
    the plan it started from as soon as the last third of the stabilisation window fits that
    plan under the down limits and nothing rises there: the plan held this load before the
    climb, and the price of the plans above it is paid for every minute of the whole window."""
    frm = s.climbed_from
    if frm is None or not s.down_floor <= s.rank[frm.name] <= s.hi:
        return None
    policy, short = s.policy, s.policy.stabilisation_window / 3
    window = [x for x in s.down_window if x.at >= s.now - short]
    if len(window) < policy.min_samples or any(
            _rising_line(window, attr, s.now, _RISING_T) for attr in ("used_memory", "connected_clients")):
        return None
    peak_mem = max(x.used_memory for x in window)
    peak_conn = max(x.connected_clients for x in window)
    margin = 1 - policy.down_margin
    mem_down, conn_down = policy.memory_threshold * margin, policy.connection_threshold * margin
    if not _fits(frm, peak_mem, peak_conn, mem_down, conn_down):
        return None
    return s.decision("down", "spike_drained", frm, fit=Fit.of(frm, peak_mem, peak_conn), down=DownWindow(
        window=short, peak_memory_pct=s.current.memory_pct(peak_mem),
        peak_connection_pct=s.current.connection_pct(peak_conn), margin=policy.down_margin,
        memory_limit_pct=mem_down, connection_limit_pct=conn_down, climbed_from=frm))


def still_climbing(s: Situation) -> Decision | None:
    """No step down into a plan that a meaningful climb would outgrow within
    ``sizing_horizon``: the move ``steady_climb`` made would be undone and redone."""
    down = scale_down(s)
    if down.action != "down":
        return None
    climb = _climb_past(s, down.target,
                        lambda view: _rising_line(s.down_window, view.attr, s.now, s.policy.trend_min_t))
    if climb is None:
        return None
    return s.decision("stay", "still_climbing", metrics=(climb.metric,), fit=down.fit, down=down.down, climb=climb)


def daily_pattern(s: Situation) -> Decision | None:
    """No step down into a plan the same hours a pattern period ago would have outgrown:
    down only as far as that peak fits under the thresholds, or stay."""
    ago = s.period_ago
    if ago is None or not ago.measured:
        return None
    down = scale_down(s)
    if down.action != "down":
        return None
    policy = s.policy

    def holds(plan: Plan) -> bool:
        return _fits(plan, ago.peak_memory, ago.peak_connections, policy.memory_threshold,
                     policy.connection_threshold)

    def holds_then(plan: Plan) -> bool:
        return _fits(plan, ago.then_peak_memory, ago.then_peak_connections, policy.memory_threshold,
                     policy.connection_threshold)

    if holds(down.target):
        return None
    # Only a pattern that repeats: a period ago the load at this hour was low too (its
    # stabilisation window fitted the lower plan under the thresholds).
    if not holds_then(down.target):
        return None
    between = [p for p in s.plans[s.rank[down.target.name] + 1:s.cur] if p.monthly_cost < s.current.monthly_cost]
    target = _cheapest([p for p in between if holds(p)], s.rank)
    if target is None:
        return s.decision("stay", "daily_pattern", fit=down.fit, down=down.down, period_ago=ago)
    return s.decision("down", "daily_pattern", target, fit=Fit.of(target, ago.peak_memory, ago.peak_connections),
                      down=down.down, period_ago=ago)


RULES: tuple[Callable[[Situation], Decision | None], ...] = (
    waiting_for_new_plan,
    below_min_plan,
    scheduled_minimum,
    no_samples,
    cache_hit_rate_low,
    connections_refused,
    drop_after_drop_up,
    data_drop,
    too_few_samples,
    steady_climb,
    breach,
    settling_after_down,
    early_trend,
    scheduled_floor,
    scale_down_disabled,
    at_min_plan,
    window_not_observed,
    gap_in_window,
    failed_reads_in_window,
    data_dropped_in_window,
    peak_over_threshold,
    still_climbing,
    daily_pattern,
    spike_drained,
    scale_down,
)
"""The rules in the order :func:`decide` asks them; the first decision wins."""


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
    period_ago: PeriodAgo | None = None,
) -> Decision:
    """Decide whether to stay on ``current`` or move up or down. See the module docstring
    for the rules. ``current``, ``min_plan`` and ``max_plan`` must be in ``ladder`` (by
    name); ``min_plan`` must not be above ``max_plan``. ``period_ago``: the load's peak over
    :meth:`Policy.pattern_window` (rule ``daily_pattern``), when the caller has it."""
    situation = Situation(current=current, ladder=ladder, min_plan=min_plan, max_plan=max_plan,
                           samples=samples, policy=policy, last_change_at=last_change_at, now=now,
                           period_ago=period_ago)
    for rule in RULES:
        decision = rule(situation)
        if decision is not None:
            return decision
    raise AssertionError("scale_down always decides")  # pragma: no cover


# --------------------------------------------------------------------------------------
# The reason, for people
# --------------------------------------------------------------------------------------


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


def _fmt_slope(points_per_min: float) -> str:
    return f"{points_per_min:+.2f}" if abs(points_per_min) < 10 else f"{points_per_min:+.1f}"


def _keeps(fit: Fit) -> str:
    """'memory at 17.2% and connections at 12.0%' of the fit's plan."""
    parts = []
    if fit.memory_pct is not None:
        parts.append(f"memory at {_fmt_pct(fit.memory_pct)}")
    if fit.plan.connection_limit is None:
        parts.append("connections unlimited")
    elif fit.connection_pct is not None:
        parts.append(f"connections at {_fmt_pct(fit.connection_pct)}")
    return " and ".join(parts) if parts else "no load measured"


def _numbers_of(d: Decision, metric: Metric) -> MetricNumbers:
    return d.memory if metric == "memory" else d.connections


def _averages(d: Decision) -> str:
    """The up window's averages and latest samples, which every stay of the down rules quotes."""
    text = f"memory averaged {_fmt_pct(d.memory.average_pct)}"
    latest = f"latest sample memory {_fmt_pct(d.memory.latest_pct)}"
    thresholds = _fmt_threshold(d.memory.threshold)
    if d.connections is not None:
        text += f" and connections {_fmt_pct(d.connections.average_pct)}"
        latest += f", connections {_fmt_pct(d.connections.latest_pct)}"
        thresholds += f"/{_fmt_threshold(d.connections.threshold)}"
    return f"{text} of {d.current.name} over {_fmt_duration(d.window)} ({latest}; thresholds {thresholds})"


def _breach_text(d: Decision) -> str:
    parts = []
    for metric in d.metrics:
        n = _numbers_of(d, metric)
        parts.append(
            f"{metric} averaged {_fmt_pct(n.average_pct)} of {d.current.name} over {_fmt_duration(d.window)} "
            f"(threshold {_fmt_threshold(n.threshold)}; latest sample {_fmt_pct(n.latest_pct)})"
        )
    return " and ".join(parts)


def _early_text(d: Decision) -> str:
    parts = []
    for metric in d.metrics:
        n = _numbers_of(d, metric)
        parts.append(
            f"{metric} is projected to reach {_fmt_pct(n.trend_projected_pct)} of {d.current.name} "
            f"(threshold {_fmt_threshold(n.threshold)}) in {_fmt_minutes(n.trend_horizon)}: latest sample "
            f"{_fmt_pct(n.latest_pct)}, fitted trend {_fmt_slope(n.trend_slope_pct_per_min)} points/min"
        )
    return " and ".join(parts)


def _drop_text(d: Decision) -> str:
    x = d.dropped
    drops = []
    if x.evicted_keys_rise:
        drops.append(f"evicted keys rose by {x.evicted_keys_rise:,}")
    if x.rejected_connections_rise:
        drops.append(f"rejected connections rose by {x.rejected_connections_rise:,}")
    if x.memory_full_pct is not None:
        drops.append(f"memory reached {_fmt_pct(x.memory_full_pct)} of {d.current.name}'s limit")
    sizing = []
    if "memory" in d.metrics:
        at = " at the plan's limit (the last step up fell short)" if x.memory_at_limit else ""
        sizing.append(f"memory sized for {x.sized_for_factor:g}x its capped reading{at}")
    if x.connection_demand is not None:
        sizing.append(f"connections for a demand of {x.connection_demand:,} clients ({x.connection_peak:,} connected "
                      f"and up to {x.rejected_step:,} refused between two samples)")
    what = "connections are being refused" if d.rule == "connections_refused" else "data is being dropped"
    return f"{what}: {', '.join(drops)} in the last {_fmt_duration(d.window)} ({'; '.join(sizing)})"


def _climb_text(d: Decision) -> str:
    c = d.climb
    why = _breach_text(d) if d.breaching else _early_text(d)
    return (f"{why}; the trend takes {c.metric} to {_fmt_pct(c.projected_pct)} of {c.first.name} within "
            f"{_fmt_duration(c.horizon)}, so going one plan further now")


def _hit_rate_text(d: Decision) -> str:
    h = d.hit_rate
    return (f"cache hit rate {_fmt_pct(h.pct)} over the last {_fmt_duration(d.window)} "
            f"({h.hits:,} hits, {h.misses:,} misses; minimum {_fmt_threshold(h.min_pct)}) while "
            + (f"{h.evicted_keys:,} keys were evicted" if h.evicted_keys else
               f"memory was full ({_fmt_pct(d.memory.peak_pct)} of the limit)")
            + f": the working set has outgrown {d.current.name}")


def _up_outcome(d: Decision, why: str) -> str:
    """The end of an up rule's reason: where it goes, or why it cannot."""
    top = "above the maximum plan" if d.above_max_plan else "the maximum plan"
    if d.action == "stay":
        if d.cannot_scale_further:
            return f"{why}; cannot scale further: {d.current.name} is {top}"
        return f"{why}; {d.current.name} is already {top}"
    if d.cannot_scale_further:
        return (
            f"{why}; no plan up to the maximum {d.max_plan.name} keeps every metric under its threshold, "
            f"going to {d.max_plan.name} ({_keeps(d.fit)}); cannot scale further"
        )
    return f"{why}; {d.target.name} keeps {_keeps(d.fit)}"


def _fmt_at(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _schedule_text(d: Decision) -> str:
    x = d.scheduled
    if x.open:
        return f"the schedule '{x.spec}' asks for at least {x.plan.name} until {_fmt_at(x.closes_at)}"
    return (f"the schedule '{x.spec}' asks for at least {x.plan.name} from {_fmt_at(x.opens_at)} to "
            f"{_fmt_at(x.closes_at)} (raised {_fmt_duration(x.raise_lead)} ahead: the lead, a check interval "
            f"and the time a change takes)")


def _down_text(d: Decision) -> str:
    w = d.down
    if d.rule == "scheduled_floor":
        return f"{_schedule_text(d)}; not scaling down"
    stab = _fmt_duration(w.window) if w else ""
    if d.rule == "at_min_plan":
        return f"{d.current.name} is the minimum plan"
    if d.rule == "window_not_observed":
        return f"observed {d.current.name} for {_fmt_duration(w.observed)} of the {stab} needed before scaling down"
    if d.rule == "gap_in_window":
        return (f"no samples for {_fmt_duration(w.gap)} in the last {stab} "
                f"(more than {_fmt_duration(w.max_gap)}); not scaling down")
    if d.rule == "failed_reads_in_window":
        return f"{w.failed_reads} failed read(s) in the last {stab}; not scaling down"
    if d.rule == "scale_down_disabled":
        return "scale-down is switched off for this instance (it only ever moves up)"
    if d.rule == "data_dropped_in_window":
        if d.hit_rate is not None and d.hit_rate.evicted_keys and not d.hit_rate.holds:
            return (f"keys were evicted while the cache hit rate was {_fmt_pct(d.hit_rate.pct)} "
                    f"(minimum {_fmt_threshold(d.hit_rate.min_pct)}) in the last {stab}; not scaling down")
        return f"keys were evicted or connections rejected in the last {stab}; not scaling down"
    if d.rule == "peak_over_threshold":
        peaks = f"memory peaked at {_fmt_pct(w.peak_memory_pct)}"
        if w.peak_connection_pct is not None:
            peaks += f" and connections at {_fmt_pct(w.peak_connection_pct)}"
        return f"{peaks} in the last {stab}; not scaling down"
    if d.rule == "waiting_for_deeper_step":
        return (f"load fell in the last {_fmt_duration(w.window / 2)}: waiting for the whole {stab} window "
                f"to confirm {w.deeper.name} rather than stepping to {d.fit.plan.name} first")
    if d.rule == "still_climbing":
        c = d.climb
        return (f"the rising {c.metric} would reach {_fmt_pct(c.projected_pct)} of {c.first.name} within "
                f"{_fmt_duration(c.horizon)}; not scaling down")
    if d.rule == "daily_pattern":
        x = d.period_ago
        then = (f"one pattern period ago the next {_fmt_duration(x.until - x.since)} "
                f"({_fmt_at(x.since)} to {_fmt_at(x.until)}) peaked at {x.peak_memory / MIB:.1f} MiB and "
                f"{x.peak_connections:,} clients")
        if d.action == "stay":
            return f"{d.fit.plan.name} would hold the last {stab}, but {then}, more than it holds; not scaling down"
        return f"{then}: only down to {d.target.name}, which keeps {_keeps(d.fit)} for it"
    if d.rule == "spike_drained":
        return (f"the load is back to what {w.climbed_from.name} held before the climb: for the last {stab} "
                f"{d.target.name} keeps {_keeps(d.fit)} (down limits memory "
                f"{_fmt_threshold(round(w.memory_limit_pct, 1))}, connections "
                f"{_fmt_threshold(round(w.connection_limit_pct, 1))}: thresholds less the {w.margin:.0%} margin)")
    if d.rule == "no_cheaper_plan":
        return f"no cheaper plan above the minimum {d.min_plan.name}"
    what = f"the {stab} peak"
    if w.rising:
        what += f" and the projection {stab} ahead of the rising {' and '.join(w.rising)}"
    limits = (f"memory {_fmt_threshold(round(w.memory_limit_pct, 1))}, "
              f"connections {_fmt_threshold(round(w.connection_limit_pct, 1))}")
    if d.rule == "lower_plan_too_small":
        return (f"{d.fit.plan.name} would keep {_keeps(d.fit)} for {what}, over the down limits "
                f"({limits}: thresholds less the {w.margin:.0%} margin)")
    peaks = f"peak memory {_fmt_pct(w.peak_memory_pct)}"
    if w.peak_connection_pct is not None:
        peaks += f", peak connections {_fmt_pct(w.peak_connection_pct)}"
    return (f"every metric stayed under its threshold for {stab} on {d.current.name} ({peaks}); "
            f"{d.target.name} keeps {_keeps(d.fit)} for {what} "
            f"(down limits {limits}: thresholds less the {w.margin:.0%} margin)")


def render_reason(d: Decision) -> str:
    """The one sentence for people, from the decision's fields."""
    if d.rule == "waiting_for_new_plan":
        text = f"waiting for samples on the new plan {d.current.name} (changed {_fmt_duration(d.since_change)} ago)"
    elif d.rule == "below_min_plan":
        text = f"{d.current.name} is below the minimum plan {d.min_plan.name}; moving into the allowed range"
        if d.fit is None:
            text += "; no recent samples to size it by"
        else:
            text += f"; {d.target.name} keeps {_keeps(d.fit)}"
            if d.cannot_scale_further:
                text += f" (above the thresholds, but {d.max_plan.name} is the maximum)"
    elif d.rule == "scheduled_minimum":
        text = _schedule_text(d)
        if d.target.name != d.scheduled.plan.name:
            text += f"; {d.target.name} keeps {_keeps(d.fit)}"
        else:
            text += f"; moving to {d.target.name}"
    elif d.rule == "no_samples":
        text = f"no samples on {d.current.name} in the last {_fmt_duration(d.lookback)}; nothing to decide on"
    elif d.rule in ("data_drop", "connections_refused", "drop_after_drop_up"):
        text = _up_outcome(d, _drop_text(d))
    elif d.rule == "steady_climb":
        text = _up_outcome(d, _climb_text(d))
    elif d.rule == "cache_hit_rate_low":
        text = _up_outcome(d, _hit_rate_text(d))
    elif d.rule == "too_few_samples":
        text = f"too few samples on {d.current.name}: {d.samples} of the {d.samples_needed} needed"
    elif d.rule == "breach":
        text = _up_outcome(d, _breach_text(d))
    elif d.rule == "early_trend":
        text = _up_outcome(d, _early_text(d))
    elif d.rule == "settling_after_down":
        text = (f"moved down to {d.current.name} {_fmt_duration(d.since_change)} ago; a projected rise "
                f"({_early_text(d)}) waits until the new plan has been watched for the trend window; "
                f"a breach or a data drop would move it up at once")
    else:
        text = f"{_averages(d)}; {_down_text(d)}"
    if d.above_max_plan:
        text = f"{d.current.name} is above the maximum plan {d.max_plan.name}; {text}"
    return text
