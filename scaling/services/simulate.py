"""`simulate`: replay a recorded load through the workers' engine, offline (DESIGN section 6)."""

from dataclasses import dataclass
from datetime import timedelta

from scaling import engine, schedules as schedule_specs, simulation
from scaling.models import RedisInstance
from scaling.services.plans import plan_prices_unconfirmed
from scaling.services.engine_input import METRIC_RATES, SCALING_RATES, engine_ladder_named, engine_plans_by_name, engine_policy

MAX_CHANGE_DELAY = 86400  # a plan change lands within minutes; past a day is a typo (and overflowed dates)


class SimulationInputError(Exception):
    """Bad trace or options; one line."""


@dataclass(frozen=True)
class SimulationReport:
    result: simulation.SimulationResult
    start_plan: engine.Plan
    policy: engine.Policy  # as engine_input builds it for an instance with these settings
    fixed_max: simulation.SimulationResult  # what staying on the max plan would cost
    fixed_start: simulation.SimulationResult  # what staying on the start plan would drop
    unconfirmed_prices: tuple = ()  # plans of the three runs whose price nobody confirmed


def _plan(name, by_name, service=None, option="--plan"):
    candidates = [name] if ":" in name else [key for key in by_name if key.split(":", 1)[1] == name and (service is None or key.startswith(service + ":"))]
    if len(candidates) != 1 or candidates[0] not in by_name:
        raise SimulationInputError(f"{option}: unknown plan {name!r}")
    return candidates[0]


def _schedules(specs, lead, by_name, service):
    """The --schedule specs with their plans named in full, and the lead; one line per error."""
    try:
        lead = schedule_specs.parse_lead_minutes(lead)
        parsed = [schedule_specs.parse_schedule(spec) for spec in specs or ()]
    except schedule_specs.ScheduleError as error:
        option = "--schedule-lead" if str(error).startswith("schedule lead") else "--schedule"
        raise SimulationInputError(f"{option}: {error}") from None
    full = []
    for schedule in parsed:
        try:
            full.append(schedule.with_plan(_plan(schedule.plan, by_name, service, "--schedule")).spec)
        except SimulationInputError:
            raise SimulationInputError(f"--schedule {schedule.spec!r}: unknown plan {schedule.plan!r} of {service}") from None
    return full, lead


def trace_simulate(*, trace_path, plan, memory_threshold=80, connection_threshold=80, metric_rate="30s",
                   scaling_rate="1m", min_plan=None, max_plan=None, change_delay=60, schedules=(), schedule_lead=10,
                   workload="queue", min_hit_rate=90, scale_down=True):
    for option, value in (("--memory-threshold", memory_threshold), ("--connection-threshold", connection_threshold)):
        if not 1 <= value <= 100:
            raise SimulationInputError(f"{option}: must be from 1 to 100, not {value}")
    if workload not in RedisInstance.Workload.values:
        raise SimulationInputError(f"--workload: must be queue or cache, not {workload!r}")
    if not 1 <= min_hit_rate <= 100:
        raise SimulationInputError(f"--min-hit-rate: must be from 1 to 100, not {min_hit_rate}")
    if not 0 <= change_delay <= MAX_CHANGE_DELAY:
        raise SimulationInputError(f"--change-delay: must be from 0 to {MAX_CHANGE_DELAY} seconds, not {change_delay}")
    by_name = engine_plans_by_name()
    start_name = _plan(plan, by_name)
    service, _, start = by_name[start_name]
    ladder = engine_ladder_named(start_name, by_name)
    ordered = engine.sort_ladder(ladder)
    low = by_name[_plan(min_plan, by_name, service, "--min-plan")][2] if min_plan else ordered[0]
    high = by_name[_plan(max_plan, by_name, service, "--max-plan")][2] if max_plan else ordered[-1]
    if ordered.index(low) > ordered.index(high):
        raise SimulationInputError(f"--min-plan {low.name} is above --max-plan {high.name}")
    schedules, schedule_lead = _schedules(schedules, schedule_lead, by_name, service)
    try:
        trace = simulation.parse_trace(str(trace_path))
    except simulation.TraceError as error:
        shown = "".join(ch if ch.isprintable() else "?" for ch in str(trace_path))
        raise SimulationInputError(f"{shown}: {error}") from None
    except OSError as error:
        raise SimulationInputError(f"{trace_path}: cannot be read ({error.strerror})") from None
    # The options describe an instance, and the engine sees it as it would see a registered one.
    instance = RedisInstance(memory_threshold=memory_threshold, connection_threshold=connection_threshold,
                             metric_rate=METRIC_RATES[metric_rate], scaling_rate=SCALING_RATES[scaling_rate],
                             schedules=schedules, schedule_lead_minutes=schedule_lead,
                             workload=workload, min_hit_rate=min_hit_rate, scale_down_enabled=scale_down)
    common = dict(
        trace=trace, ladder=ladder, policy=engine_policy(instance),
        metric_rate=timedelta(seconds=instance.metric_rate), scaling_interval=timedelta(seconds=instance.scaling_rate),
        change_delay=timedelta(seconds=change_delay),
    )
    result = simulation.simulate(start_plan=start, min_plan=low, max_plan=high, **common)
    fixed_max = simulation.simulate(start_plan=high, min_plan=high, max_plan=high, **common)
    fixed_start = simulation.simulate(start_plan=start, min_plan=start, max_plan=start, **common)
    used = {start.name, high.name, *(change.to_plan for change in result.plan_changes)}
    return SimulationReport(result=result, start_plan=start, policy=common["policy"], fixed_max=fixed_max,
                            fixed_start=fixed_start, unconfirmed_prices=plan_prices_unconfirmed(plan_names=used))
