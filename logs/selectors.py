"""Read-only queries behind the admin's chart and overview pages.

Both pages must stay fast with thousands of instances and millions of samples, so every
figure comes from a fixed number of queries whatever the data size:

- The chart reads samples DOWNSAMPLED in the database: they are grouped into time buckets
  aligned on the Unix epoch (`floor(epoch / bucket_seconds)`), with the bucket chosen from a
  short list of round sizes so that a period never gives more than `MAX_CHART_POINTS`
  points; each bucket carries the average and the peak of memory % and connections %, the
  number of samples and of failed reads. A month of 30 s samples (86,400 rows) is one
  GROUP BY on the (instance, collected_at) index, returning at most 500 rows.
- The overview judges each instance on its latest good sample in SQL (a correlated
  subquery on the same index, `LIMIT 1`, restricted to `LATEST_SAMPLE_WINDOW`), so that the
  state can be filtered, sorted and counted by the database: the totals by state are one
  GROUP BY, the page's instance ids one query (sorted and sliced in the database), the
  page's rows with their latest figures one query, and their last actions one more.

State of an instance (the overview, in this order; the first that applies wins):

- ``unreachable``: ``consecutive_failures >= 3`` (three failed reads in a row, the same
  count after which the "unreachable" alert is mailed);
- ``check failing``: the last scaling check could not judge the instance (``check_error``:
  a min plan above the max after a plan-data reload, a plan not in the ladder, ...);
- ``no data``: no successful sample in the last ``LATEST_SAMPLE_WINDOW`` (15 minutes, three
  times the slowest metric rate): the instance was just registered, or collection stopped;
- ``at max plan``: breaching (below) while the current plan is already the max plan, so
  the autoscaler cannot help: raise the max plan or act on the app;
- ``breaching``: the latest sample's memory % is above the memory threshold, or its
  connections % above the connection threshold;
- ``ok``: otherwise.

Besides the state, the mode says whether the autoscaler acts: ``scaling off``
(``scaling_enabled`` false: samples are kept, nothing is decided), ``dry run`` (decides
and records, never changes the plan) or ``auto``.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db.models import (
    Avg, BigIntegerField, Case, Count, FloatField, Func, IntegerField, Max, OuterRef, Q, Subquery, Sum, Value,
    When,
)
from django.db.models import CharField as CharFieldType
from django.db.models import DateTimeField as DateTimeFieldType
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact

from logs.models import MetricLog, ScalingAction
from scaling.models import RedisInstance

MAX_CHART_POINTS = 500
# Round bucket sizes (seconds): the smallest one that keeps a period under MAX_CHART_POINTS
# is used, so that buckets stay aligned (and comparable) as time moves on.
BUCKET_SIZES = (
    30, 60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400,
)
MAX_CHART_MARKERS = 1000  # plan changes drawn on one chart (a bouncing instance cannot flood the page)

UNREACHABLE_AFTER = RedisInstance.UNREACHABLE_AFTER
LATEST_SAMPLE_WINDOW = timedelta(minutes=15)


class State:
    UNREACHABLE = "unreachable"
    CHECK_FAILING = "check failing"
    NO_DATA = "no data"
    AT_MAX_PLAN = "at max plan"
    BREACHING = "breaching"
    OK = "ok"
    # most urgent first: the overview's default "state" ordering and the totals line
    ALL = (UNREACHABLE, CHECK_FAILING, NO_DATA, AT_MAX_PLAN, BREACHING, OK)


class Mode:
    SCALING_OFF = "scaling off"
    DRY_RUN = "dry run"
    AUTO = "auto"
    ALL = (SCALING_OFF, DRY_RUN, AUTO)


# ---------------------------------------------------------------------------------------
# The chart of one instance
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    span: timedelta


def chart_periods(retention_days=None):
    """The periods an operator can choose: hours up to the retention limit."""
    days = retention_days if retention_days is not None else settings.N_RETENTION_DAYS
    limit = timedelta(days=days)
    periods = [
        Period(key, label, span)
        for key, label, span in (
            ("1h", "1 hour", timedelta(hours=1)),
            ("6h", "6 hours", timedelta(hours=6)),
            ("24h", "24 hours", timedelta(hours=24)),
            ("7d", "7 days", timedelta(days=7)),
            ("30d", "30 days", timedelta(days=30)),
        )
        if span <= limit
    ]
    if periods[-1].span < limit:
        periods.append(Period(f"{days}d", f"{days} days (all kept)", limit))
    return periods


def chart_default_period(periods, *, now, first_sample_at, last_sample_at, longest="24h"):
    """The period a chart opens on: the shortest that holds all the instance's samples, so that
    a new instance is not a speck at the right edge; no longer than `longest` (a day: longer
    periods are a click away), unless that holds no sample at all, then the shortest that holds
    the latest one. The shortest period when there is no sample."""
    if last_sample_at is None:
        return periods[0]
    cap = next((p for p in periods if p.key == longest), periods[-1])
    holding_all = next((p for p in periods if now - p.span <= first_sample_at), None)
    if holding_all is not None and holding_all.span <= cap.span:
        return holding_all
    if now - cap.span <= last_sample_at:
        return cap
    return next((p for p in periods if now - p.span <= last_sample_at), periods[-1])


def with_sample_extent(queryset):
    """Annotate first_sample_at and last_sample_at (any sample, good or failed): two index
    probes per instance on (instance, collected_at), inside the query that reads the instance."""
    samples = MetricLog.objects.filter(instance=OuterRef("pk"))
    return queryset.annotate(
        first_sample_at=Subquery(samples.order_by("collected_at").values("collected_at")[:1],
                                 output_field=DateTimeFieldType()),
        last_sample_at=Subquery(samples.order_by("-collected_at").values("collected_at")[:1],
                                output_field=DateTimeFieldType()),
    )


def bucket_seconds_for(span, max_points=MAX_CHART_POINTS):
    """The smallest round bucket that splits `span` into at most `max_points` buckets.

    Buckets are aligned on the epoch, so a span covers at most ceil(span / size) + 1 of
    them; a size of at least span / (max_points - 1) keeps that within max_points.
    """
    needed = math.ceil(span.total_seconds() / max(max_points - 1, 1))
    for size in BUCKET_SIZES:
        if size >= needed:
            return size
    return needed


class EpochBucket(Func):
    """floor(seconds since the epoch / size): the index of a time bucket, as an integer."""

    output_field = BigIntegerField()

    def __init__(self, expression, *, size):
        self.size = int(size)  # an int we computed: safe to inline, and GROUP BY sees one text
        super().__init__(expression)

    def as_sql(self, compiler, connection, **extra):
        template = f"CAST(FLOOR(EXTRACT(EPOCH FROM %(expressions)s) / {self.size}) AS BIGINT)"
        return super().as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Local development runs on SQLite: whole seconds since the epoch, integer division.
        # '%%%%s' is '%%s' after this template's own formatting, '%s' after the backend's.
        template = f"(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) / {self.size})"
        return super().as_sql(compiler, connection, template=template, **extra)


@dataclass(frozen=True)
class ChartPoint:
    at: datetime  # start of the bucket
    memory_avg: float | None
    memory_max: float | None
    connection_avg: float | None
    connection_max: float | None
    samples: int
    failures: int


@dataclass(frozen=True)
class ChartSeries:
    start: datetime
    end: datetime
    bucket_seconds: int
    points: list = field(default_factory=list)

    @property
    def sample_count(self):
        return sum(point.samples for point in self.points)

    @property
    def failure_count(self):
        return sum(point.failures for point in self.points)


def instance_chart_series(*, instance, start, end, max_points=MAX_CHART_POINTS):
    """Memory % and connections % of `instance` between `start` and `end`, downsampled in
    the database to at most `max_points` buckets (average and peak per bucket). One query."""
    size = bucket_seconds_for(end - start, max_points)
    rows = (
        MetricLog.objects.filter(instance=instance, collected_at__gte=start, collected_at__lte=end)
        .annotate(bucket=EpochBucket("collected_at", size=size))
        .values("bucket")
        .annotate(
            memory_avg=Avg("memory_pct"), memory_max=Max("memory_pct"),
            connection_avg=Avg("connection_pct"), connection_max=Max("connection_pct"),
            samples=Count("pk"), failures=Count("pk", filter=~Q(error="")),
        )
        .order_by("bucket")
    )
    points = [
        ChartPoint(
            at=datetime.fromtimestamp(row["bucket"] * size, tz=dt_timezone.utc),
            memory_avg=row["memory_avg"], memory_max=row["memory_max"],
            connection_avg=row["connection_avg"], connection_max=row["connection_max"],
            samples=row["samples"], failures=row["failures"],
        )
        for row in rows
    ]
    return ChartSeries(start=start, end=end, bucket_seconds=size, points=points)


def instance_plan_changes(*, instance, start, end, limit=MAX_CHART_MARKERS):
    """The scaling actions decided in the period (every status), oldest first. One query."""
    actions = (
        ScalingAction.objects.filter(instance=instance, created_at__gte=start, created_at__lte=end)
        .select_related("from_plan", "to_plan")
        .order_by("-created_at")[:limit]
    )
    return list(reversed(actions))


def instance_latest_actions(*, instance, limit=20):
    """The instance's latest scaling actions, newest first, whatever their age. One query."""
    return list(
        ScalingAction.objects.filter(instance=instance).select_related("from_plan", "to_plan").order_by("-created_at")[:limit]
    )


# ---------------------------------------------------------------------------------------
# The overview of all instances
# ---------------------------------------------------------------------------------------


def _latest_good_sample(now):
    """The instance's (OuterRef "pk") successful samples in the recent window, newest first."""
    return MetricLog.objects.filter(
        instance=OuterRef("pk"), error="", collected_at__gte=now - LATEST_SAMPLE_WINDOW, collected_at__lte=now,
    ).order_by("-collected_at")


def _state_expressions(now):
    """(state, state_rank) of an instance, each with ONE correlated subquery.

    The subquery reads the latest good sample and judges it against the outer instance's
    thresholds and plans, so the database probes the (instance, collected_at) index once
    per instance and expression, however the state is then filtered, sorted or counted.
    """
    latest = _latest_good_sample(now)
    breaching = Q(memory_pct__gt=OuterRef("memory_threshold")) | Q(connection_pct__gt=OuterRef("connection_threshold"))
    at_max = Exact(OuterRef("current_plan_id"), OuterRef("max_plan_id"))
    unreachable = RedisInstance.unreachable_q()

    def judged(value_of, output_field):
        verdict = Case(
            When(breaching & at_max, then=Value(value_of(State.AT_MAX_PLAN))),
            When(breaching, then=Value(value_of(State.BREACHING))),
            default=Value(value_of(State.OK)), output_field=output_field,
        )
        sample = Subquery(latest.annotate(verdict=verdict).values("verdict")[:1], output_field=output_field)
        return Case(
            When(unreachable, then=Value(value_of(State.UNREACHABLE))),
            When(~Q(check_error=""), then=Value(value_of(State.CHECK_FAILING))),
            default=Coalesce(sample, Value(value_of(State.NO_DATA))), output_field=output_field,
        )

    return judged(lambda state: state, CharFieldType()), judged(State.ALL.index, IntegerField())


MODE = Case(
    When(scaling_enabled=False, then=Value(Mode.SCALING_OFF)),
    When(dry_run=True, then=Value(Mode.DRY_RUN)),
    default=Value(Mode.AUTO), output_field=CharFieldType(),
)


def instances_ranked(*, now, queryset=None):
    """Instances annotated with state, state_rank (0 = most urgent) and mode only: what the
    overview filters, sorts and counts over every instance (one index probe per instance)."""
    queryset = queryset if queryset is not None else RedisInstance.objects.all()
    state, rank = _state_expressions(now)
    return queryset.annotate(state=state, state_rank=rank, mode=MODE)


def with_latest_memory(queryset, *, now):
    return queryset.annotate(
        latest_memory_pct=Subquery(_latest_good_sample(now).values("memory_pct")[:1], output_field=FloatField())
    )


def with_latest_connections(queryset, *, now):
    return queryset.annotate(
        latest_connection_pct=Subquery(_latest_good_sample(now).values("connection_pct")[:1], output_field=FloatField())
    )


def instances_with_state(*, now, queryset=None):
    """Instances with their plans, state, mode, latest good sample (latest_at,
    latest_memory_pct, latest_connection_pct) and last_action_id: what a page shows for
    each of a few (up to a page of) instances. One query."""
    ranked = instances_ranked(now=now, queryset=queryset).select_related("current_plan", "min_plan", "max_plan")
    ranked = with_latest_connections(with_latest_memory(ranked, now=now), now=now)
    return ranked.annotate(
        latest_at=Subquery(_latest_good_sample(now).values("collected_at")[:1], output_field=DateTimeFieldType()),
        last_action_id=Subquery(
            ScalingAction.objects.filter(instance=OuterRef("pk")).order_by("-created_at").values("pk")[:1],
            output_field=BigIntegerField(),
        ),
    )


@dataclass
class OverviewTotals:
    instances: int = 0
    monthly_cost: object = 0
    monthly_cost_at_max: object = 0
    by_state: dict = field(default_factory=dict)  # state -> count, every state present
    by_mode: dict = field(default_factory=dict)  # mode -> count, every mode present


def overview_totals(ranked):
    """Counts by state and mode and the monthly costs, over an `instances_ranked`
    queryset. One GROUP BY query (a few dozen rows at most)."""
    totals = OverviewTotals(by_state=dict.fromkeys(State.ALL, 0), by_mode=dict.fromkeys(Mode.ALL, 0))
    rows = (
        ranked.order_by().values("state", "mode")
        .annotate(n=Count("pk"), cost=Sum("current_plan__cost"), cost_at_max=Sum("max_plan__cost"))
    )
    for row in rows:
        totals.instances += row["n"]
        totals.monthly_cost += row["cost"] or 0
        totals.monthly_cost_at_max += row["cost_at_max"] or 0
        totals.by_state[row["state"]] += row["n"]
        totals.by_mode[row["mode"]] += row["n"]
    return totals


def actions_by_id(ids):
    """ScalingActions (with their plans) by primary key. One query."""
    ids = [pk for pk in ids if pk]
    if not ids:
        return {}
    return {action.pk: action for action in ScalingAction.objects.filter(pk__in=ids).select_related("from_plan", "to_plan")}
