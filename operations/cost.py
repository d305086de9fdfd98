"""What the Redis add-ons cost, from the recorded plan timeline, and what autoscaling saved.

Timeline of an instance: the plan it was registered on (the `from_plan` of its first
succeeded change, else its current plan) from `created_at`, then the `to_plan` of every
succeeded `ScalingAction` from the moment it took effect (`finished_at`: when Heroku
confirmed it, or when a plan changed by hand was adopted; adoptions are recorded as
succeeded actions too). Failed, pending and dry-run actions changed nothing.

Pricing: Heroku prorates add-ons by the second up to a monthly cap. We charge
`monthly price x seconds / (30 x 86,400)` (a 30-day month) and apply no cap, so a whole
31-day month shows 1/30 more than the capped bill. Amounts are exact `Decimal`s, rounded to
the cent (half up) only when shown; totals are the rounded sum of the exact amounts.

Compared with: the instance's max plan (as set now) over the same seconds, and the highest
plan it was on in the window; savings are those minus the actual cost.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from decimal import ROUND_HALF_UP, Decimal


from logs.models import ScalingAction
from scaling.models import RedisInstance

SECONDS_PER_MONTH = 30 * 86400
CENT = Decimal("0.01")
PRICING = "monthly price x seconds / (30 x 86400), prorated by the second, no monthly cap"


class BadReportWindow(ValueError):
    """A --since/--until (or the admin form's) that cannot be read; one line."""


def cents(amount):
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _exact_seconds(delta):
    return Decimal(delta // timedelta(microseconds=1)) / Decimal(1_000_000)


def plan_cost(*, monthly_price, seconds):
    return Decimal(monthly_price) * seconds / SECONDS_PER_MONTH


@dataclass(frozen=True)
class _Plan:
    name: str
    cost: Decimal
    rank: tuple
    price_confirmed: bool


PLAN_FIELDS = ("plan_name", "cost", "mem_limit", "price_confirmed")


def _plan_fields(prefix):
    return [f"{prefix}__{name}" for name in PLAN_FIELDS]


def _plan(name, cost, mem_limit, price_confirmed):
    return _Plan(name, cost, (mem_limit, cost), price_confirmed)


@dataclass(frozen=True)
class PlanPeriod:
    plan: str
    monthly_price: Decimal
    start: datetime
    end: datetime
    seconds: Decimal
    cost: Decimal
    price_confirmed: bool


@dataclass(frozen=True)
class InstanceCost:
    instance: str
    app: str
    periods: list
    max_plan: str
    highest_plan: str
    seconds: Decimal
    cost: Decimal
    cost_at_max_plan: Decimal
    cost_at_highest_plan: Decimal
    unconfirmed_prices: tuple = ()  # plans of these figures whose price nobody confirmed

    @property
    def savings(self):
        return self.cost_at_max_plan - self.cost

    @property
    def savings_vs_highest(self):
        return self.cost_at_highest_plan - self.cost


@dataclass(frozen=True)
class CostReport:
    since: datetime
    until: datetime
    instances: list = field(default_factory=list)

    def total(self, name):
        return sum((getattr(row, name) for row in self.instances), Decimal(0))

    @property
    def unconfirmed_prices(self):
        return tuple(sorted({name for row in self.instances for name in row.unconfirmed_prices}))

    def as_dict(self):
        """Stable keys (the --json output): dollars rounded to the cent, seconds as numbers."""
        def money(value):
            return float(cents(value))

        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "pricing": PRICING,
            "seconds_per_month": SECONDS_PER_MONTH,
            "instances": [
                {
                    "instance": row.instance,
                    "app": row.app,
                    "plans": [
                        {"plan": p.plan, "monthly_price": float(p.monthly_price), "from": p.start.isoformat(),
                         "to": p.end.isoformat(), "seconds": float(p.seconds), "cost": money(p.cost),
                         "price_confirmed": p.price_confirmed}
                        for p in row.periods
                    ],
                    "seconds": float(row.seconds),
                    "cost": money(row.cost),
                    "max_plan": row.max_plan,
                    "cost_at_max_plan": money(row.cost_at_max_plan),
                    "highest_plan": row.highest_plan,
                    "cost_at_highest_plan": money(row.cost_at_highest_plan),
                    "savings": money(row.savings),
                    "savings_vs_highest": money(row.savings_vs_highest),
                    "unconfirmed_prices": list(row.unconfirmed_prices),
                }
                for row in self.instances
            ],
            "unconfirmed_prices": list(self.unconfirmed_prices),
            "totals": {
                name: money(self.total(name))
                for name in ("cost", "cost_at_max_plan", "cost_at_highest_plan", "savings", "savings_vs_highest")
            },
        }


def report_moment_parse(text, *, end_of_day=False):
    """'2026-11-01' (midnight UTC; with end_of_day the next midnight, so the day is included)
    or an ISO 8601 date and time (without a zone: UTC)."""
    text = (text or "").strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(0), tzinfo=dt_timezone.utc)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadReportWindow(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt_timezone.utc)


def month_start(now):
    return now.astimezone(dt_timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def report_window(*, since_text, until_text, now):
    """The window of a report: since (default: the start of this month, UTC) to until
    (default and at most: now)."""
    since = report_moment_parse(since_text) if since_text else month_start(now)
    until = report_moment_parse(until_text, end_of_day=True) if until_text else now
    until = min(until, now)
    if since >= until:
        raise BadReportWindow(f"the window is empty: since {since.isoformat()} is not before until {until.isoformat()}")
    return since, until


def _timelines(instance_ids):
    """{instance id: [(effective at, action id, from plan, to plan)]} of the succeeded changes,
    in the order they took effect. All of them: the first one's from plan is the plan the
    instance was registered on, even when it falls after the window."""
    actions = ScalingAction.objects.filter(status=ScalingAction.Status.SUCCEEDED)
    actions = actions.filter(instance__isnull=False) if instance_ids is None else actions.filter(instance__in=instance_ids)
    changes = {}
    for instance_id, finished_at, created_at, pk, *plans in actions.values_list(
            "instance_id", "finished_at", "created_at", "pk", *_plan_fields("from_plan"), *_plan_fields("to_plan")):
        width = len(PLAN_FIELDS)
        changes.setdefault(instance_id, []).append(
            (finished_at or created_at, pk, _plan(*plans[:width]), _plan(*plans[width:])))
    for rows in changes.values():
        rows.sort()
    return changes


def _instance_cost(instance, changes, since, until):
    pk, name, app, created_at, *plans = instance
    current_plan, max_plan = _plan(*plans[:len(PLAN_FIELDS)]), _plan(*plans[len(PLAN_FIELDS):])
    start = max(created_at, since)
    if start >= until:
        return None
    moments = [(created_at, changes[0][2] if changes else current_plan)] + [(at, to) for at, _, _, to in changes]
    periods = []
    for index, (begin, plan) in enumerate(moments):
        end = moments[index + 1][0] if index + 1 < len(moments) else until
        begin, end = max(begin, start), min(end, until)
        if end > begin:
            periods.append((plan, begin, end, _exact_seconds(end - begin)))
    if not periods:
        return None
    total_seconds = sum((p[3] for p in periods), Decimal(0))
    highest = max((p[0] for p in periods), key=lambda plan: plan.rank)
    priced = [PlanPeriod(plan=plan.name, monthly_price=plan.cost, start=begin, end=end, seconds=seconds,
                         cost=plan_cost(monthly_price=plan.cost, seconds=seconds), price_confirmed=plan.price_confirmed)
              for plan, begin, end, seconds in periods]
    return InstanceCost(
        instance=name, app=app, periods=priced,
        max_plan=max_plan.name, highest_plan=highest.name, seconds=total_seconds,
        cost=sum((period.cost for period in priced), Decimal(0)),
        cost_at_max_plan=plan_cost(monthly_price=max_plan.cost, seconds=total_seconds),
        cost_at_highest_plan=plan_cost(monthly_price=highest.cost, seconds=total_seconds),
        unconfirmed_prices=tuple(sorted({plan.name for plan in (*(p[0] for p in periods), max_plan, highest)
                                         if not plan.price_confirmed})),
    )


def cost_report_build(*, since, until, queryset=None):
    """The cost report of the registered instances (or `queryset`'s) over [since, until):
    two queries (instances, succeeded changes, each with its plans), read as plain rows."""
    instances = list((queryset if queryset is not None else RedisInstance.objects.all())
                     .filter(created_at__lt=until).order_by("name")
                     .values_list("pk", "name", "app_name", "created_at", *_plan_fields("current_plan"), *_plan_fields("max_plan")))
    timelines = _timelines(None if queryset is None else [row[0] for row in instances])
    rows = [_instance_cost(row, timelines.get(row[0], []), since, until) for row in instances]
    return CostReport(since=since, until=until, instances=[row for row in rows if row is not None])
