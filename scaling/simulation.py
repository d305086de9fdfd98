"""The scaling engine offline: replay a recorded load through :func:`scaling.engine.decide`.

Standard library only (no Django): the ``simulate`` management command and the benchmark
scripts are thin wrappers around this module.

Trace format (DESIGN section 6)
    CSV whose header contains the columns ``timestamp,used_memory,connected_clients``
    (other columns are ignored; blank lines are skipped). It may also carry the cumulative
    counters of DESIGN section 9 as ``INFO`` gives them: ``evicted_keys``,
    ``rejected_connections``, ``keyspace_hits``, ``keyspace_misses`` (whole numbers; a drop
    between rows is a restart). ``timestamp`` is ISO 8601 with or
    without a time zone (naive means UTC) or epoch seconds; ``used_memory`` is bytes and
    ``connected_clients`` a count, both whole non-negative numbers. Timestamps must be
    strictly increasing. Any problem raises :class:`TraceError` with a one-line message
    naming the file line (1-based, the header is line 1).

How the replay works (the same as the workers)
    * The load is piecewise constant: each trace point holds until the next one; the last
      point ends the trace (the trace covers ``first.at .. last.at``).
    * A sample is taken every ``metric_rate`` from the first timestamp: the load is the
      last trace point at or before the sample time, read against the plan in effect.
      Like a real Redis at its limits, the reported used memory is capped at the plan's
      memory and connected clients at the plan's connection limit; the excess is counted
      in the cumulative ``evicted_keys`` counter (the largest excess since the previous
      sample, in KiB, i.e. keys of about 1 KiB) and ``rejected_connections`` counter (the
      largest excess of connections since the previous sample). So the engine sees data
      drop as it would in production. The trace's own counters are replayed too, taken
      to be recorded on the start plan: its hits and misses as recorded (a cache's hit
      rate); its evictions (rejections) on plans with no more memory (connections) than the
      start plan, and on a bigger plan only while the recorded load is at that plan's limit
      (memory at 99 % of it, clients at its connection limit), since the same load on a
      bigger plan would not have been evicting or refused.
    * The engine runs every ``scaling_interval`` from the first timestamp plus one interval,
      after any sample due at the same moment. While a decided change is pending no new
      decision is taken; the change lands ``change_delay`` after it was decided (samples
      taken before then carry the old plan), and ``last_change_at`` is the landing time.
    * Quiet stretches are jumped over: when the load stays constant until the next trace
      point, every sample the engine can see is alike on the current plan (counters
      included, so a cache's hit rate is never skipped over), the last change
      is older than the engine's lookback and the engine has just decided to change nothing,
      it would decide the same at every run until that point, so the replay moves on to
      just before it (the runs are counted in ``decisions``, not made). A replay's cost thus
      grows with the trace's rows, not with the time they span (60 days between two rows:
      43 s before, 1.2 s now; nine years: 0.9 s). With schedules (``Policy.schedules``) a
      jump stops before the next moment a schedule starts or stops raising the plan.
    * Timestamps must lie from 1970-01-01 to 2200-01-01, ``used_memory`` at most 2**63-1
      and ``connected_clients`` at most 2**31-1 (what Redis can report); anything else is a
      TraceError naming the line.
    * Integration (cost, seconds over threshold, seconds over capacity) is exact over the
      piecewise-constant load and the plan timeline, including the moments changes land.
    * Cost is the monthly price prorated by the hour with ``HOURS_PER_MONTH`` = 730 hours a
      month (365 days * 24 h / 12), fractions of an hour prorated too.
    * ``final_plan`` is the plan in effect at the end of the trace (a change still pending
      then is listed in ``plan_changes`` but has not landed).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import re
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Sequence, TextIO

from scaling.engine import Decision, PeriodAgo, Plan, Policy, Sample, decide, sort_ladder
from scaling.schedules import next_schedule_edge

__all__ = [
    "HOURS_PER_MONTH",
    "TraceError",
    "TracePoint",
    "PlanChange",
    "SimulationResult",
    "parse_trace",
    "simulate",
    "replay_rule",
    "over_limits",
]

HOURS_PER_MONTH = 730.0
"""Hours in a billing month for prorating monthly prices (365 * 24 / 12)."""

REQUIRED_COLUMNS = ("timestamp", "used_memory", "connected_clients")
COUNTER_COLUMNS = ("evicted_keys", "rejected_connections", "keyspace_hits", "keyspace_misses")
# A recorded eviction (rejection) counts on the replayed plan only while the recorded load is
# at that plan's limit: this share of its memory (as the engine's ``memory_full``), or its
# connection limit. On a bigger plan the same load would not have been evicting.
_FULL = 0.99


class TraceError(ValueError):
    """A trace that cannot be replayed. ``str(err)`` is one line naming the file line
    (``line`` is 1-based; ``None`` only when the file itself cannot be read)."""

    def __init__(self, line: int | None, message: str):
        self.line = line
        message = " ".join(message.split())  # always one line
        super().__init__(message if line is None else f"line {line}: {message}")


@dataclass(frozen=True)
class TracePoint:
    at: datetime
    used_memory: int
    connected_clients: int
    # Optional cumulative counters as INFO gives them (None: the trace has no such column).
    evicted_keys: int | None = None
    rejected_connections: int | None = None
    keyspace_hits: int | None = None
    keyspace_misses: int | None = None


@dataclass(frozen=True)
class PlanChange:
    """A plan change, ``at`` when it was decided (it lands ``change_delay`` later)."""

    at: datetime
    from_plan: str
    to_plan: str
    reason: str

    def to_json_dict(self) -> dict:
        return {"at": _iso(self.at), "from": self.from_plan, "to": self.to_plan, "reason": self.reason}


@dataclass(frozen=True)
class SimulationResult:
    plan_changes: list[PlanChange]
    cost: float
    seconds_over_threshold: float
    seconds_over_capacity: float
    final_plan: Plan
    duration_seconds: float = 0.0
    decisions: int = 0

    def to_json_dict(self) -> dict:
        """The ``simulate --json`` object (DESIGN section 6)."""
        return {
            "plan_changes": [c.to_json_dict() for c in self.plan_changes],
            "cost": round(self.cost, 6),
            "seconds_over_threshold": round(self.seconds_over_threshold, 3),
            "seconds_over_capacity": round(self.seconds_over_capacity, 3),
            "final_plan": self.final_plan.name,
        }


def _iso(at: datetime) -> str:
    text = at.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_WHOLE = re.compile(r"^\+?\d{1,40}$")
# Times a trace may hold: anything else is a typo or garbage, and would overflow the replay's
# date arithmetic near the ends of what datetime can hold.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
# The largest figures a Redis reports (64-bit memory, 32-bit client count), as the reader.
MAX_COUNT = {"used_memory": 2**63 - 1, "connected_clients": 2**31 - 1, **{c: 2**63 - 1 for c in COUNTER_COLUMNS}}


def _parse_timestamp(text: str, line: int) -> datetime:
    value = text.strip()
    if not value:
        raise TraceError(line, "empty timestamp")
    shown = value if len(value) <= 40 else value[:39] + "…"
    out_of_range = f"timestamp {shown!r} is out of range ({EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d})"
    if _NUMBER.match(value):
        seconds = float(value)
        if seconds < 0:
            raise TraceError(line, f"negative epoch timestamp {shown!r}")
        if not EARLIEST.timestamp() <= seconds < LATEST.timestamp():
            raise TraceError(line, out_of_range)
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise TraceError(line, f"timestamp {shown!r} is neither ISO 8601 nor epoch seconds") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    try:
        at = at.astimezone(timezone.utc)
    except OverflowError:  # an offset pushing it past year 1 or 9999
        raise TraceError(line, out_of_range) from None
    if not EARLIEST <= at < LATEST:
        raise TraceError(line, out_of_range)
    return at


def _parse_count(text: str, column: str, line: int) -> int:
    value = text.strip()
    shown = value if len(value) <= 40 else value[:39] + "…"
    too_large = f"{column} is too large ({shown}; at most {MAX_COUNT[column]})"
    if _WHOLE.match(value):  # exact, where a float would round
        number = int(value)
        if number > MAX_COUNT[column]:
            raise TraceError(line, too_large)
        return number
    if not _NUMBER.match(value):
        raise TraceError(line, f"{column} {shown!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise TraceError(line, too_large if number > 0 else f"{column} {shown!r} is not a finite number")
    if number < 0:
        raise TraceError(line, f"{column} must not be negative, got {shown}")
    if number > MAX_COUNT[column]:
        raise TraceError(line, too_large)
    if number != int(number):
        raise TraceError(line, f"{column} must be a whole number, got {shown}")
    return int(number)


def _lines(source) -> Iterable[str]:
    """Lines from a path, a file object, CSV text (a ``str`` with a newline) or an
    iterable of lines."""
    if isinstance(source, (bytes, bytearray)):
        return io.StringIO(bytes(source).decode("utf-8-sig"))
    if isinstance(source, str) and ("\n" in source or "\r" in source):
        return io.StringIO(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, encoding="utf-8-sig", newline="") as fh:
                return io.StringIO(fh.read())
        except OSError as exc:
            raise TraceError(None, f"cannot read trace {os.fspath(source)!r}: {exc.strerror or exc}") from None
        except ValueError:  # a NUL byte in the path
            raise TraceError(None, f"cannot read trace {os.fspath(source)!r}: not a usable file name") from None
        except UnicodeDecodeError:
            raise TraceError(None, f"trace {os.fspath(source)!r} is not UTF-8 text") from None
    return source


def parse_trace(lines_or_file: str | os.PathLike | TextIO | Iterable[str]) -> list[TracePoint]:
    """Parse a load trace (see the module docstring). Raises :class:`TraceError`."""
    lines = iter(_lines(lines_or_file))
    # Strip a byte-order mark from the first line of an already opened source.
    first = True

    def stripped():
        nonlocal first
        for number, raw in enumerate(lines, start=1):
            if isinstance(raw, (bytes, bytearray)):
                try:
                    raw = bytes(raw).decode("utf-8")
                except UnicodeDecodeError:
                    raise TraceError(number, "not UTF-8 text") from None
            if first:
                raw = raw.lstrip("\ufeff")
                first = False
            yield raw

    reader = csv.reader(stripped())
    try:
        header = None
        for row in reader:
            if any(cell.strip() for cell in row):
                header = [cell.strip() for cell in row]
                break
        if header is None:
            raise TraceError(1, "empty trace: expected the header timestamp,used_memory,connected_clients")
        header_line = reader.line_num
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise TraceError(
                header_line,
                f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"(the header must contain timestamp,used_memory,connected_clients)",
            )
        index = {c: header.index(c) for c in REQUIRED_COLUMNS + COUNTER_COLUMNS if c in header}
        counters = [c for c in COUNTER_COLUMNS if c in index]
        width = max(index.values()) + 1
        points: list[TracePoint] = []
        previous: datetime | None = None
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < width:
                raise TraceError(line, f"expected {len(header)} fields, got {len(row)}")
            at = _parse_timestamp(row[index["timestamp"]], line)
            used = _parse_count(row[index["used_memory"]], "used_memory", line)
            clients = _parse_count(row[index["connected_clients"]], "connected_clients", line)
            if previous is not None:
                if at == previous:
                    raise TraceError(line, f"duplicate timestamp {_iso(at)}")
                if at < previous:
                    raise TraceError(line, f"timestamp {_iso(at)} is before the previous row's {_iso(previous)}")
            previous = at
            counts = {c: _parse_count(row[index[c]], c, line) for c in counters}
            points.append(TracePoint(at=at, used_memory=used, connected_clients=clients, **counts))
    except csv.Error as exc:
        raise TraceError(reader.line_num, f"malformed CSV: {exc}") from None
    if not points:
        raise TraceError(header_line, "empty trace: a header but no data rows")
    return points


# --------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------

# decide_fn(current, samples, last_change_at, last_decision_at, now) -> (action, target, reason)
_DecideFn = Callable[[Plan, Sequence[Sample], "datetime | None", "datetime | None", datetime], "tuple[str, Plan | None, str]"]


def _check_common(trace, ladder, start_plan, min_plan, max_plan, metric_rate, scaling_interval, change_delay):
    if not trace:
        raise ValueError("empty trace")
    plans = sort_ladder(ladder)
    by_name = {p.name: p for p in plans}
    for label, plan in (("start", start_plan), ("min", min_plan), ("max", max_plan)):
        if plan.name not in by_name:
            raise ValueError(f"{label} plan {plan.name} is not in the plan ladder")
    if metric_rate <= timedelta(0) or scaling_interval <= timedelta(0):
        raise ValueError("metric rate and scaling interval must be positive")
    if change_delay < timedelta(0):
        raise ValueError("change delay must not be negative")
    return plans, by_name


def _over(point: TracePoint, plan: Plan, mem_pct: float, conn_pct: float) -> bool:
    if plan.memory_pct(point.used_memory) > mem_pct:
        return True
    if plan.connection_limit is not None and plan.connection_pct(point.connected_clients) > conn_pct:
        return True
    return False


def _integrate(trace: Sequence[TracePoint], timeline: Sequence[tuple[datetime, Plan]], mem_thr: float, conn_thr: float):
    """Cost, seconds over threshold and over capacity over the piecewise-constant load
    and the plan timeline [(from, plan), ...] (sorted, first at or before the trace)."""
    end = trace[-1].at
    cuts = sorted({p.at for p in trace} | {at for at, _ in timeline if trace[0].at < at < end})
    times = [at for at, _ in timeline]
    trace_times = [p.at for p in trace]
    cost = over_thr = over_cap = 0.0
    for start, stop in zip(cuts, cuts[1:]):
        seconds = (stop - start).total_seconds()
        plan = timeline[bisect_right(times, start) - 1][1]
        point = trace[bisect_right(trace_times, start) - 1]
        cost += plan.monthly_cost / HOURS_PER_MONTH * seconds / 3600
        if _over(point, plan, mem_thr, conn_thr):
            over_thr += seconds
        if _over(point, plan, 100.0, 100.0):
            over_cap += seconds
    return cost, over_thr, over_cap


def _steady(samples, plan: Plan, last_change_at, now: datetime, keep: timedelta, metric_rate: timedelta) -> bool:
    """Whether the engine's view holds still: samples covering ``keep``, all alike (no
    counter rising) on ``plan``, and no plan change within ``keep``."""
    if not samples or samples[0].at > now - keep + metric_rate:
        return False
    if last_change_at is not None and now - last_change_at <= keep:
        return False
    # Counters (hits and misses too) must hold still: a cache's hit rate is judged on them.
    def figures(s):
        return (s.plan_name, s.used_memory, s.connected_clients, s.evicted_keys, s.rejected_connections,
                s.keyspace_hits, s.keyspace_misses)

    last = figures(samples[-1])
    return samples[-1].plan_name == plan.name and all(figures(s) == last for s in samples)


def _connections_rank(plan: Plan) -> float:
    return math.inf if plan.connection_limit is None else plan.connection_limit


def _rise(points: Sequence[TracePoint], column: str) -> int:
    """The rise of a trace's cumulative counter over consecutive points (a drop is a
    restart, not a rise; no column, no rise)."""
    values = [getattr(p, column) for p in points if getattr(p, column) is not None]
    return sum(b - a for a, b in zip(values, values[1:]) if b > a)


def _replay(
    decide_fn: _DecideFn,
    *,
    trace: Sequence[TracePoint],
    plans: Sequence[Plan],
    start_plan: Plan,
    memory_threshold: float,
    connection_threshold: float,
    metric_rate: timedelta,
    scaling_interval: timedelta,
    change_delay: timedelta,
    keep: timedelta,
    skip_quiet: bool = True,
    next_clock_edge: Callable[[datetime], "datetime | None"] | None = None,
) -> SimulationResult:
    """``skip_quiet``: jump over quiet stretches (module docstring). Only valid while the
    decision depends on the samples and on the time since the last change alone; a rule
    keyed on the clock itself (a schedule) must turn it off or bound the jump by its edges:
    ``next_clock_edge(now)`` is the next moment such a rule may decide otherwise."""
    by_name = {p.name: p for p in plans}
    plan = by_name[start_plan.name]
    recorded_on = plan  # the trace's own counters were recorded on the start plan (module docstring)
    t0, end = trace[0].at, trace[-1].at
    trace_times = [p.at for p in trace]

    samples: deque[Sample] = deque()
    evicted = rejected = 0
    hits = misses = None if trace[0].keyspace_hits is None else 0
    if trace[0].keyspace_misses is not None:
        misses = 0
    prev_index: int | None = None
    changes: list[PlanChange] = []
    timeline: list[tuple[datetime, Plan]] = [(t0, plan)]
    pending: tuple[datetime, Plan] | None = None
    last_change_at: datetime | None = None
    last_decision_at: datetime | None = None
    decisions = 0

    def land_until(moment: datetime) -> None:
        nonlocal pending, plan, last_change_at
        if pending is not None and pending[0] <= moment:
            plan = pending[1]
            last_change_at = pending[0]
            timeline.append((pending[0], plan))
            pending = None

    k_metric = k_scale = 0
    scale_step = 1  # the first engine run is one interval after the start
    while True:
        t_metric = t0 + k_metric * metric_rate
        t_scale = t0 + (k_scale + scale_step) * scaling_interval
        now = min(t_metric, t_scale)
        if now > end:
            break
        land_until(now)
        if t_metric <= t_scale:
            # Take a sample (before an engine run due at the same moment).
            index = bisect_right(trace_times, now) - 1
            point = trace[index]
            first = index if prev_index is None else prev_index
            window = trace[first:index + 1]
            excess_mem = max(p.used_memory for p in window) - plan.memory_bytes
            if excess_mem > 0:
                evicted += max(1, math.ceil(excess_mem / 1024))
            if plan.connection_limit is not None:
                excess_conn = max(p.connected_clients for p in window) - plan.connection_limit
                if excess_conn > 0:
                    rejected += excess_conn
            # The trace's own counters: evictions and rejections while the recorded load is at
            # this plan's limits, hits and misses always (module docstring).
            if prev_index is not None:
                if (plan.memory_bytes <= recorded_on.memory_bytes
                        or max(p.used_memory for p in window) >= _FULL * plan.memory_bytes):
                    evicted += _rise(window, "evicted_keys")
                if (_connections_rank(plan) <= _connections_rank(recorded_on)
                        or max(p.connected_clients for p in window) >= plan.connection_limit):
                    rejected += _rise(window, "rejected_connections")
                if hits is not None:
                    hits += _rise(window, "keyspace_hits")
                if misses is not None:
                    misses += _rise(window, "keyspace_misses")
            clients = point.connected_clients
            if plan.connection_limit is not None:
                clients = min(clients, plan.connection_limit)
            samples.append(
                Sample(
                    at=now,
                    plan_name=plan.name,
                    used_memory=min(point.used_memory, plan.memory_bytes),
                    connected_clients=clients,
                    evicted_keys=evicted,
                    rejected_connections=rejected,
                    keyspace_hits=hits,
                    keyspace_misses=misses,
                )
            )
            while samples and samples[0].at < now - keep:
                samples.popleft()
            prev_index = index
            k_metric += 1
            continue
        k_scale += 1
        if pending is not None:
            continue
        decisions += 1
        action, target, reason = decide_fn(plan, list(samples), last_change_at, last_decision_at, now)
        if action in ("up", "down") and target is not None and target.name != plan.name:
            changes.append(PlanChange(at=now, from_plan=plan.name, to_plan=target.name, reason=reason))
            last_decision_at = now
            pending = (now + change_delay, by_name[target.name])
            land_until(now)  # a zero delay lands at once
            continue
        if not skip_quiet or not _steady(samples, plan, last_change_at, now, keep, metric_rate):
            continue
        # Quiet: the load is constant until the next trace point, every sample the engine can
        # see is the same on the same plan, the last change is out of sight, and the engine
        # just chose to change nothing. Until that point it would see the same window at
        # every run and decide the same, so the replay jumps there (runs counted, not made):
        # its cost grows with the trace's rows, not with the time they span.
        following = trace[prev_index + 1].at if prev_index + 1 < len(trace) else end + metric_rate
        edge = next_clock_edge(now) if next_clock_edge is not None else None
        if edge is not None and edge < following:
            following = edge  # the engine runs again before a schedule starts or stops raising
        k_metric_to = max(k_metric, (following - t0) // metric_rate - 1)
        k_scale_to = max(k_scale, (following - t0) // scaling_interval - 2)
        if k_scale_to > k_scale:
            decisions += k_scale_to - k_scale
            k_scale = k_scale_to
        if k_metric_to > k_metric:
            last = samples[-1]
            taken = [t0 + j * metric_rate for j in range(max(0, k_metric_to - len(samples)), k_metric_to)]
            samples = deque(dataclasses.replace(last, at=at) for at in taken)
            k_metric = k_metric_to

    land_until(end)
    cost, over_thr, over_cap = _integrate(trace, timeline, memory_threshold, connection_threshold)
    return SimulationResult(
        plan_changes=changes,
        cost=cost,
        seconds_over_threshold=over_thr,
        seconds_over_capacity=over_cap,
        final_plan=plan,
        duration_seconds=(end - t0).total_seconds(),
        decisions=decisions,
    )


def simulate(
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
    """Replay ``trace`` through :func:`scaling.engine.decide` (see the module docstring).

    Seconds over threshold use ``policy``'s thresholds (for a cache, connections only). ``policy`` is used as given (its
    ``scaling_interval`` should normally equal ``scaling_interval``)."""
    plans, by_name = _check_common(trace, ladder, start_plan, min_plan, max_plan, metric_rate, scaling_interval, change_delay)

    period_peaks = PeriodPeaks(policy)

    def engine(current, samples, last_change_at, _last_decision_at, now):
        d: Decision = decide(
            current=current,
            ladder=plans,
            min_plan=by_name[min_plan.name],
            max_plan=by_name[max_plan.name],
            samples=samples,
            policy=policy,
            last_change_at=last_change_at,
            now=now,
            period_ago=period_peaks.at(now, samples),
        )
        return d.action, d.target, d.reason

    return _replay(
        engine,
        trace=trace,
        plans=plans,
        start_plan=start_plan,
        # A cache's memory is meant to be full: its time over threshold counts connections only.
        memory_threshold=math.inf if policy.workload == "cache" else policy.memory_threshold,
        connection_threshold=policy.connection_threshold,
        metric_rate=metric_rate,
        scaling_interval=scaling_interval,
        change_delay=change_delay,
        keep=policy.lookback + metric_rate,
        next_clock_edge=(
            (lambda now: next_schedule_edge(policy.schedules, now, policy.schedule_raise_lead))
            if policy.schedules else None
        ),
    )


class WindowPeaks:
    """The peaks of the good samples in a window that only slides forward (``window(now)``
    gives its ends), as the workers read them from the stored samples: every sample seen is
    kept and the peaks are kept in monotonic queues (each sample enters and leaves once)."""

    def __init__(self, window: Callable[[datetime], tuple[datetime, datetime]]):
        self.window = window
        self.history: list[Sample] = []
        self.entered = 0  # history[:entered] have entered the window (or passed it)
        self.memory: deque[Sample] = deque()  # decreasing used_memory
        self.connections: deque[Sample] = deque()  # decreasing connected_clients

    def at(self, now: datetime, samples: Sequence[Sample]) -> tuple[int | None, int | None]:
        """(peak used memory, peak connected clients) in the window at ``now``; ``None``s when
        no sample was seen in it."""
        last = self.history[-1].at if self.history else None
        self.history.extend(x for x in samples if x.usable and (last is None or x.at > last))
        since, until = self.window(now)
        while self.entered < len(self.history) and self.history[self.entered].at <= until:
            x = self.history[self.entered]
            self.entered += 1
            for queue, attr in ((self.memory, "used_memory"), (self.connections, "connected_clients")):
                while queue and getattr(queue[-1], attr) <= getattr(x, attr):
                    queue.pop()
                queue.append(x)
        for queue in (self.memory, self.connections):
            while queue and queue[0].at < since:
                queue.popleft()
        if not self.memory:
            return None, None
        return self.memory[0].used_memory, self.connections[0].connected_clients


class PeriodPeaks:
    """The replay's :class:`~scaling.engine.PeriodAgo` (rule ``daily_pattern``)."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.ahead = WindowPeaks(policy.pattern_window)
        self.then = WindowPeaks(policy.pattern_down_window)

    def at(self, now: datetime, samples: Sequence[Sample]) -> PeriodAgo:
        since, until = self.policy.pattern_window(now)
        memory, connections = self.ahead.at(now, samples)
        then_memory, then_connections = self.then.at(now, samples)
        return PeriodAgo(since=since, until=until, peak_memory=memory, peak_connections=connections,
                         then_peak_memory=then_memory, then_peak_connections=then_connections)


def replay_rule(
    decide_fn: _DecideFn,
    *,
    trace: Sequence[TracePoint],
    ladder: Sequence[Plan],
    start_plan: Plan,
    min_plan: Plan,
    max_plan: Plan,
    memory_threshold: float,
    connection_threshold: float,
    metric_rate: timedelta,
    scaling_interval: timedelta,
    change_delay: timedelta,
    keep: timedelta,
) -> SimulationResult:
    """Replay ``trace`` through another rule than the engine's, the same way as
    :func:`simulate` (for comparisons: ``benchmarks/baselines.py``).

    ``decide_fn(current, samples, last_change_at, last_decision_at, now)`` returns
    ``(action, target, reason)``; it sees the samples of the last ``keep``."""
    plans, _ = _check_common(trace, ladder, start_plan, min_plan, max_plan, metric_rate, scaling_interval, change_delay)
    return _replay(
        decide_fn, trace=trace, plans=plans, start_plan=start_plan, memory_threshold=memory_threshold,
        connection_threshold=connection_threshold, metric_rate=metric_rate, scaling_interval=scaling_interval,
        change_delay=change_delay, keep=keep,
    )


def over_limits(point: TracePoint, plan: Plan, memory_pct: float, connection_pct: float) -> bool:
    """Whether a trace point's load is over these percentages of ``plan``'s limits."""
    return _over(point, plan, memory_pct, connection_pct)
