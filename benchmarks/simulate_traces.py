"""The simulator on the example traces, next to the original product's rule, the plan fixed
at the max, the plan fixed at the start, and the cheapest timeline possible in hindsight;
then each run judged against the original rule and the floor (issue 13's bars).

    DEBUG=true .venv/bin/python benchmarks/simulate_traces.py

Prints two markdown tables (the README's): the runs, and per run the three bars --
(a) seconds over capacity: none where the original rule drops none, at most half of its
where it drops data; (b) plan changes: no more than the original's, at most half where it
makes 8 or more; (c) cost within 1.25x the hindsight floor -- each PASS or FAIL. Exits 1 if
any run fails a bar. No database, no network.

The hindsight floor is the issue's: the cheapest plan at every moment that keeps the load
under the thresholds (free, instant switches), honouring what the operator asked for: a
scheduled minimum while its window is open, no step down with scale-in switched off, and,
for a cache, memory allowed up to the plan's limit (a cache is full by design) and more memory
than the recorded plan's while the trace shows it evicting under its minimum hit rate.
"""

import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autoscaler.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DATABASE_URL", "sqlite:////nonexistent/none.sqlite3")  # plans come from the bundled CSV

import django  # noqa: E402

django.setup()

from benchmarks.baselines import baseline_original_rule, hindsight_floor_cost, judge  # noqa: E402
from scaling import engine, simulation  # noqa: E402
from scaling.services.engine_input import engine_ladder_named, engine_plans_by_name  # noqa: E402
from scaling.services.simulate import trace_simulate  # noqa: E402

KVS = dict(plan="heroku-redis:premium-0", max_plan="heroku-redis:premium-5")


@dataclass(frozen=True)
class Run:
    """One replay: a trace with the `simulate` options of an instance."""

    trace: str
    label: str = "autoscaler"
    options: dict = field(default_factory=dict)  # trace_simulate's keyword arguments

    @property
    def path(self) -> Path:
        return ROOT / "examples" / "traces" / f"{self.trace}.csv"


SCHEDULE = "mon-fri 06:00-07:00 UTC premium-2"
RUNS = [
    Run("daily_queue_cycle", options=KVS),
    Run("sudden_spike", options=KVS),
    Run("slow_leak", options=KVS),
    Run("connection_storm", options=KVS),
    Run("flap_bait", options=KVS),
    Run("weekly_sawtooth", options=dict(plan="rediscloud:100", max_plan="rediscloud:5000")),
    Run("scheduled_batch", options=dict(KVS, schedules=[SCHEDULE])),
    Run("scheduled_batch", f'autoscaler without --schedule "{SCHEDULE}"', KVS),
    Run("cache_good_hit_rate", "autoscaler --workload cache", dict(KVS, workload="cache")),
    Run("cache_outgrown", "autoscaler --workload cache", dict(KVS, workload="cache")),
    Run("sudden_spike", "autoscaler --no-scale-down", dict(KVS, scale_down=False)),
]
RATES = dict(metric_rate=timedelta(seconds=30), scaling_interval=timedelta(minutes=1),
             change_delay=timedelta(seconds=60))


@dataclass(frozen=True)
class Figures:
    run: Run
    report: object  # SimulationReport
    original: simulation.SimulationResult
    floor: float

    @property
    def judgement(self):
        return judge(result=self.report.result, original=self.original, floor_cost=self.floor)


def figures(run: Run) -> Figures:
    """The run replayed, the original rule on the same trace, and the floor."""
    report = trace_simulate(trace_path=run.path, **run.options)
    trace = simulation.parse_trace(str(run.path))
    ladder = engine_ladder_named(report.start_plan.name, engine_plans_by_name())
    low, high = engine.sort_ladder(ladder)[0], report.fixed_max.final_plan
    policy = report.policy
    original = baseline_original_rule(trace=trace, ladder=ladder, start_plan=report.start_plan, min_plan=low,
                                      max_plan=high, policy=policy, **RATES)
    cache = policy.workload == "cache"
    floor = hindsight_floor_cost(trace=trace, ladder=ladder, min_plan=low, max_plan=high,
                                 memory_limit_pct=100 if cache else policy.memory_threshold,
                                 connection_limit_pct=policy.connection_threshold,
                                 schedules=policy.schedules, scale_down=policy.scale_down,
                                 cache_min_hit_rate=policy.min_hit_rate if cache else None,
                                 recorded_on=report.start_plan)
    return Figures(run=run, report=report, original=original, floor=floor)


def main() -> int:
    print("Start plan premium-0 (Redis Cloud: 100), max plan premium-5 (5000), thresholds 80/80, samples every "
          "30 s, checks every 1 min, plan changes land 60 s after the decision.\n")
    print("| trace | run | cost | plan changes | time over threshold | time over capacity (data dropped) | final plan |")
    print("|---|---|---|---|---|---|---|")
    judged = []
    for run in RUNS:
        f = figures(run)
        judged.append(f)
        rows = [(run.label, f.report.result)]
        if run.label == "autoscaler":
            rows += [("original rule", f.original),
                     (f"fixed at max ({_short(f.report.fixed_max.final_plan.name)})", f.report.fixed_max),
                     (f"fixed at start ({_short(f.report.start_plan.name)})", f.report.fixed_start)]
        for label, result in rows:
            print(f"| {run.trace} | {label} | ${result.cost:.2f} | {len(result.plan_changes)} "
                  f"| {_minutes(result.seconds_over_threshold)} | {_minutes(result.seconds_over_capacity)} "
                  f"| {_short(result.final_plan.name)} |")
        print(f"| {run.trace} | hindsight floor{_floor_note(run)} | ${f.floor:.2f} | – | – | 0 | – |")

    print("\n| trace | run | (a) over capacity: engine / original | (b) plan changes: engine / allowed (original) "
          "| (c) cost: engine / floor | judged |")
    print("|---|---|---|---|---|---|")
    failed = 0
    for f in judged:
        j = f.judgement
        failed += not j.passed
        print(f"| {f.run.trace} | {f.run.label} "
              f"| {_mark(j.capacity_ok)} {_minutes(j.seconds_over_capacity)} / {_minutes(j.original_seconds_over_capacity)} "
              f"| {_mark(j.changes_ok)} {j.plan_changes} / {j.changes_allowed} ({j.original_plan_changes}) "
              f"| {_mark(j.cost_ok)} {j.cost / j.floor_cost:.2f}x (${j.cost:.2f} / ${j.floor_cost:.2f}) "
              f"| {'PASS' if j.passed else 'FAIL'} |")
    print(f"\n{len(judged) - failed} of {len(judged)} runs pass all three bars.")
    return 1 if failed else 0


def _floor_note(run: Run) -> str:
    notes = []
    if run.options.get("schedules"):
        notes.append("with the schedule")
    if run.options.get("scale_down") is False:
        notes.append("never down")
    if run.options.get("workload") == "cache":
        notes.append("cache: memory to the limit, more while the hit rate is low")
    return f" ({', '.join(notes)})" if notes else ""


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def _short(name):
    return name.split(":", 1)[1]


def _minutes(seconds):
    return f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    sys.exit(main())
