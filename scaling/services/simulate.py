"""`simulate`: replay a recorded load through the workers' engine, offline (DESIGN section 6)."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError

from scaling import engine, simulation
from scaling.models import RedisPlan
from scaling.services.plans import DEFAULT_PLANS_CSV, plan_family, plan_name_family, plan_rows_parse

RATES = {"30s": 30, "1m": 60, "5m": 300, "10m": 600}
MAX_CHANGE_DELAY = 86400  # a plan change lands within minutes; past a day is a typo (and overflowed dates)


class SimulationInputError(Exception):
    """Bad trace or options; one line."""


@dataclass(frozen=True)
class SimulationReport:
    result: simulation.SimulationResult
    start_plan: engine.Plan
    fixed_max: simulation.SimulationResult  # what staying on the max plan would cost
    fixed_start: simulation.SimulationResult  # what staying on the start plan would drop


def _plans_by_name():
    """Plans from the database; the bundled CSV where the database has none (a fresh clone)."""
    try:
        plans = list(RedisPlan.objects.all())
    except DatabaseError:
        plans = []
    if plans:
        return {p.plan_name: (p.service_name, plan_family(p), engine.Plan.from_limits(p.plan_name, p.mem_limit, p.conn_limit, float(p.cost))) for p in plans}
    rows = plan_rows_parse(text=DEFAULT_PLANS_CSV.read_text())
    return {row.plan_name: (row.service_name, plan_name_family(row.plan_name),
                            engine.Plan.from_limits(row.plan_name, row.mem_limit, row.conn_limit, float(row.cost)))
            for row in rows}


def _plan(name, by_name, service=None, option="--plan"):
    candidates = [name] if ":" in name else [key for key in by_name if key.split(":", 1)[1] == name and (service is None or key.startswith(service + ":"))]
    if len(candidates) != 1 or candidates[0] not in by_name:
        raise SimulationInputError(f"{option}: unknown plan {name!r}")
    return candidates[0]


def trace_simulate(*, trace_path, plan, memory_threshold=80, connection_threshold=80, metric_rate="30s",
                   scaling_rate="1m", min_plan=None, max_plan=None, change_delay=60):
    for option, value in (("--memory-threshold", memory_threshold), ("--connection-threshold", connection_threshold)):
        if not 1 <= value <= 100:
            raise SimulationInputError(f"{option}: must be from 1 to 100, not {value}")
    if not 0 <= change_delay <= MAX_CHANGE_DELAY:
        raise SimulationInputError(f"--change-delay: must be from 0 to {MAX_CHANGE_DELAY} seconds, not {change_delay}")
    by_name = _plans_by_name()
    start_name = _plan(plan, by_name)
    service, family, start = by_name[start_name]
    ladder = [p for s, f, p in by_name.values() if s == service and f == family]
    ordered = engine.sort_ladder(ladder)
    low = by_name[_plan(min_plan, by_name, service, "--min-plan")][2] if min_plan else ordered[0]
    high = by_name[_plan(max_plan, by_name, service, "--max-plan")][2] if max_plan else ordered[-1]
    if ordered.index(low) > ordered.index(high):
        raise SimulationInputError(f"--min-plan {low.name} is above --max-plan {high.name}")
    try:
        trace = simulation.parse_trace(str(trace_path))
    except simulation.TraceError as error:
        shown = "".join(ch if ch.isprintable() else "?" for ch in str(trace_path))
        raise SimulationInputError(f"{shown}: {error}") from None
    except OSError as error:
        raise SimulationInputError(f"{trace_path}: cannot be read ({error.strerror})") from None
    interval = timedelta(seconds=RATES[scaling_rate])
    common = dict(
        trace=trace, ladder=ladder,
        policy=engine.Policy(memory_threshold=memory_threshold, connection_threshold=connection_threshold, scaling_interval=interval),
        metric_rate=timedelta(seconds=RATES[metric_rate]), scaling_interval=interval, change_delay=timedelta(seconds=change_delay),
    )
    result = simulation.simulate(start_plan=start, min_plan=low, max_plan=high, **common)
    fixed_max = simulation.simulate(start_plan=high, min_plan=high, max_plan=high, **common)
    fixed_start = simulation.simulate(start_plan=start, min_plan=start, max_plan=start, **common)
    return SimulationReport(result=result, start_plan=start, fixed_max=fixed_max, fixed_start=fixed_start)
