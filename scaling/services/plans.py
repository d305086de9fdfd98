"""Plan data: loading the static CSV and reading a provider's ladder."""

import csv
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import DatabaseError, transaction


from scaling.models import RedisPlan

DEFAULT_PLANS_CSV = Path(__file__).resolve().parent.parent / "data" / "plans.csv"
REQUIRED_COLUMNS = ("service_name", "plan_name", "mem_limit", "conn_limit", "cost")
# The columns' ranges (RedisPlan): a value past them is a bad row, not a database error.
MAX_MEM_LIMIT = 2**31 - 1  # PositiveIntegerField
MAX_CONN_LIMIT = 2**31 - 1  # IntegerField
MAX_SERVICE_NAME = 64
MAX_PLAN_NAME = 128
# Plans that live only in Private / Shield Spaces form their own ladder: an add-on cannot
# move between them and the Common Runtime plans.
SEPARATE_FAMILIES = ("private", "shield")
PRICE_CONFIRMED_VALUES = {"yes": True, "no": False, "": False}  # price_confirmed column (absent: no)


class PlanDataError(Exception):
    """The plan file is unusable; the message names the line and the problem."""


@dataclass(frozen=True)
class PlanRow:
    line: int
    service_name: str
    plan_name: str
    mem_limit: int
    conn_limit: int
    cost: Decimal
    source: str
    price_source: str = ""
    price_confirmed: bool = False


@dataclass(frozen=True)
class PlanLoadResult:
    created: int
    updated: int
    unchanged: int


def _data_lines(text):
    """(line number, line) of the CSV, without comment lines, keeping real line numbers."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield number, line


def plan_rows_parse(*, text, default_price_source=""):
    """Every row of a plan CSV, or PlanDataError naming each bad line (nothing half-read).
    A CSV without a price_source column names `default_price_source` (its file) instead."""
    lines = list(_data_lines(text))
    if not lines:
        raise PlanDataError("line 1: the file is empty; expected the header " + ",".join(REQUIRED_COLUMNS))
    header_line, header = lines[0]
    columns = [column.strip() for column in next(csv.reader([header]))]
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise PlanDataError(f"line {header_line}: header lacks column(s) {', '.join(missing)}")

    rows, problems, seen = [], [], {}
    for number, line in lines[1:]:
        values = next(csv.reader([line]))
        if len(values) != len(columns):
            problems.append(f"line {number}: expected {len(columns)} fields, found {len(values)}")
            continue
        record = {column: value.strip() for column, value in zip(columns, values)}
        try:
            row = _plan_row(number, record, default_price_source)
        except PlanDataError as error:
            problems.append(str(error))
            continue
        if row.plan_name in seen:
            problems.append(f"line {number}: plan {row.plan_name} already given on line {seen[row.plan_name]}")
            continue
        seen[row.plan_name] = number
        rows.append(row)
    if problems:
        raise PlanDataError("; ".join(problems))
    if not rows:
        raise PlanDataError(f"line {header_line}: no plans below the header")
    return rows


def _plan_row(number, record, default_price_source=""):
    service, plan = record["service_name"], record["plan_name"]
    if len(service) > MAX_SERVICE_NAME:
        raise PlanDataError(f"line {number}: service_name is longer than {MAX_SERVICE_NAME} characters")
    if len(plan) > MAX_PLAN_NAME:
        raise PlanDataError(f"line {number}: plan_name is longer than {MAX_PLAN_NAME} characters")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", service):
        raise PlanDataError(f"line {number}: service_name {service!r} is not a Heroku service name")
    if not re.fullmatch(re.escape(service) + r":[A-Za-z0-9][A-Za-z0-9._-]*", plan):
        raise PlanDataError(f"line {number}: plan_name {_clip(repr(plan), 60)} must look like {service}:<plan>"
                            " (letters, digits, '.', '_' and '-')")
    try:
        mem_limit = int(record["mem_limit"])
    except ValueError:
        raise PlanDataError(f"line {number}: mem_limit {record['mem_limit']!r} is not a whole number of MB") from None
    if mem_limit <= 0:
        raise PlanDataError(f"line {number}: mem_limit must be above 0, not {mem_limit}")
    if mem_limit > MAX_MEM_LIMIT:
        raise PlanDataError(f"line {number}: mem_limit must be at most {MAX_MEM_LIMIT} MB, not {_clip(record['mem_limit'])}")
    try:
        conn_limit = int(record["conn_limit"])
    except ValueError:
        raise PlanDataError(f"line {number}: conn_limit {record['conn_limit']!r} is not a whole number") from None
    if conn_limit == 0 or conn_limit < -1:
        raise PlanDataError(f"line {number}: conn_limit must be above 0, or -1 for unlimited, not {_clip(record['conn_limit'])}")
    if conn_limit > MAX_CONN_LIMIT:
        raise PlanDataError(f"line {number}: conn_limit must be at most {MAX_CONN_LIMIT}, not {_clip(record['conn_limit'])}")
    try:
        cost = Decimal(record["cost"])
    except InvalidOperation:
        raise PlanDataError(f"line {number}: cost {record['cost']!r} is not a number") from None
    if not cost.is_finite() or cost < 0 or cost >= Decimal("1e8"):
        raise PlanDataError(f"line {number}: cost must be a price of 0 or more and below 100000000, not {_clip(record['cost'])}")
    source = record.get("source", "")
    price_source = record.get("price_source") or default_price_source
    for column, text in (("source", source), ("price_source", price_source)):
        if not text.isprintable():
            raise PlanDataError(f"line {number}: {column} holds control characters")
    confirmed = record.get("price_confirmed", "").lower()
    if confirmed not in PRICE_CONFIRMED_VALUES:
        raise PlanDataError(f"line {number}: price_confirmed must be yes or no, not {_clip(repr(confirmed))}")
    return PlanRow(number, service, plan, mem_limit, conn_limit, cost.quantize(Decimal("0.01")), source,
                   price_source, PRICE_CONFIRMED_VALUES[confirmed])


def _printable(text):
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))


def _clip(text, limit=24):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@transaction.atomic
def plans_load(*, path=None):
    """Create or update the plans of a CSV file: all of them, or none if any row is bad."""
    path = Path(path) if path else DEFAULT_PLANS_CSV
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise PlanDataError(f"{_printable(path)}: cannot be read ({error.__class__.__name__}: {getattr(error, 'strerror', None) or error})") from None
    except ValueError:  # a NUL byte in the path
        raise PlanDataError(f"{_printable(path)}: cannot be read (not a usable file name)") from None
    rows = plan_rows_parse(text=text, default_price_source=_printable(path.name)[:200])
    existing = {plan.plan_name: plan for plan in RedisPlan.objects.select_for_update().filter(plan_name__in=[r.plan_name for r in rows])}
    created = updated = unchanged = 0
    for row in rows:
        values = {
            "service_name": row.service_name,
            "mem_limit": row.mem_limit,
            "conn_limit": row.conn_limit,
            "source": row.source[:300],
        }
        plan = existing.get(row.plan_name)
        if not keeps_heroku_price(plan=plan, row=row):
            values |= {"cost": row.cost, "price_source": row.price_source[:200],
                       "price_confirmed": row.price_confirmed, "price_fetched_at": None}
        if plan is None:
            RedisPlan.objects.create(plan_name=row.plan_name, **values)
            created += 1
        elif any(getattr(plan, field) != value for field, value in values.items()):
            for field, value in values.items():
                setattr(plan, field, value)
            plan.save()
            updated += 1
        else:
            unchanged += 1
    problems = instance_plan_range_problems()
    if problems:
        # Raised inside the transaction: every row above is rolled back.
        shown = "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")
        raise PlanDataError(f"this plan data would leave {len(problems)} registered instance"
                            f"{'s' if len(problems) != 1 else ''} without a valid plan range: {shown}")
    from scaling.services.engine_input import engine_ladders_forget  # it imports this module

    engine_ladders_forget()
    return PlanLoadResult(created=created, updated=updated, unchanged=unchanged)


def keeps_heroku_price(*, plan, row):
    """A price read from Heroku is not replaced by a static price nobody confirmed (initialize.sh
    loads the bundled data at every release); a confirmed one replaces it."""
    return plan is not None and plan.price_source == RedisPlan.HEROKU_PRICE_SOURCE and not row.price_confirmed


def instance_plan_range_problems():
    """One line per registered instance whose min..max range is not a range of its ladder:
    min above max, or min, max and current plan not of one provider and family."""
    from scaling.models import RedisInstance

    problems = []
    instances = RedisInstance.objects.select_related("current_plan", "min_plan", "max_plan").order_by("name")
    for instance in instances:
        current, low, high = instance.current_plan, instance.min_plan, instance.max_plan
        ladder = {(plan.service_name, plan_family(plan)) for plan in (current, low, high)}
        if len(ladder) > 1:
            problems.append(f"{instance.name}: plans {current.plan_name}, {low.plan_name} and {high.plan_name}"
                            " are not of one ladder")
        elif (low.mem_limit, low.cost) > (high.mem_limit, high.cost):
            problems.append(f"{instance.name}: min plan {low.plan_name} above max plan {high.plan_name}")
    return problems


def plan_family(plan):
    return plan_name_family(plan.plan_name)


def plan_name_family(plan_name):
    """'private' or 'shield' for plans of those separate ladders, '' for the others."""
    prefix = plan_name.split(":", 1)[-1].split("-", 1)[0]
    return prefix if prefix in SEPARATE_FAMILIES else ""


def plan_ladder(*, plan):
    """The plans an add-on on `plan` can move between, cheapest first."""
    family = plan_family(plan)
    return [
        candidate
        for candidate in RedisPlan.objects.filter(service_name=plan.service_name).order_by(*RedisPlan.RANK_FIELDS)
        if plan_family(candidate) == family
    ]



def plan_prices_unconfirmed(*, plan_names):
    """Of `plan_names`, those whose price nobody confirmed, sorted: from the database, or from
    the bundled plan data where the database has none of them (simulate on a fresh clone)."""
    try:
        confirmed = dict(RedisPlan.objects.filter(plan_name__in=plan_names).values_list("plan_name", "price_confirmed"))
    except DatabaseError:
        confirmed = {}
    if not confirmed:
        rows = plan_rows_parse(text=DEFAULT_PLANS_CSV.read_text())
        confirmed = {row.plan_name: row.price_confirmed for row in rows if row.plan_name in plan_names}
    return tuple(sorted(name for name in plan_names if not confirmed.get(name, False)))
