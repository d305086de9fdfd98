"""The simulator on the example traces, next to the original product's rule, the plan fixed
at the max, the plan fixed at the start, and the cheapest timeline possible in hindsight.

    DEBUG=true .venv/bin/python benchmarks/simulate_traces.py [--max-plan heroku-redis:premium-5]

Prints a markdown table (the one in the README). No database, no network.
"""

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autoscaler.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DATABASE_URL", "sqlite:////nonexistent/none.sqlite3")  # plans come from the bundled CSV

import django  # noqa: E402

django.setup()

from benchmarks.baselines import baseline_original_rule, hindsight_floor_cost  # noqa: E402
from scaling import engine, simulation  # noqa: E402
from scaling.models import RedisInstance  # noqa: E402
from scaling.services.engine_input import engine_ladder_named, engine_plans_by_name, engine_policy  # noqa: E402
from scaling.services.simulate import trace_simulate  # noqa: E402

TRACES = ["daily_queue_cycle", "sudden_spike", "slow_leak", "connection_storm", "scheduled_batch"]
# Traces replayed with instance options as well (the autoscaler's row; "without" rows too).
OPTIONS = {"scheduled_batch": {"schedules": ["mon-fri 06:00-07:00 UTC premium-2"]}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", default="heroku-redis:premium-0")
    parser.add_argument("--max-plan", default="heroku-redis:premium-5")
    args = parser.parse_args()
    print(f"Start plan {args.plan}, max plan {args.max_plan}, thresholds 80/80, samples every 30 s, "
          "checks every 1 min, plan changes land 60 s after the decision.\n")
    print("| trace | run | cost | plan changes | time over threshold | time over capacity (data dropped) | final plan |")
    print("|---|---|---|---|---|---|---|")
    for name in TRACES:
        path = ROOT / "examples" / "traces" / f"{name}.csv"
        report = trace_simulate(trace_path=path, plan=args.plan, max_plan=args.max_plan, **OPTIONS.get(name, {}))
        trace = simulation.parse_trace(str(path))
        common = dict(trace=trace, metric_rate=timedelta(seconds=30), scaling_interval=timedelta(minutes=1),
                      change_delay=timedelta(seconds=60))
        ladder = engine_ladder_named(report.start_plan.name, engine_plans_by_name())
        low = engine.sort_ladder(ladder)[0]
        policy = engine_policy(RedisInstance(memory_threshold=80, connection_threshold=80, scaling_rate=60))
        original = baseline_original_rule(
            ladder=ladder, start_plan=report.start_plan, min_plan=low, max_plan=report.fixed_max.final_plan,
            policy=policy, **common)
        floor = hindsight_floor_cost(trace=trace, ladder=ladder, min_plan=low, max_plan=report.fixed_max.final_plan)
        options = OPTIONS.get(name)
        rows = [("autoscaler", report.result)]
        if options:
            plain = trace_simulate(trace_path=path, plan=args.plan, max_plan=args.max_plan).result
            rows.append((f"autoscaler without {_options(options)}", plain))
        rows += [("original rule", original),
                (f"fixed at max ({_short(report.fixed_max.final_plan.name)})", report.fixed_max),
                (f"fixed at start ({_short(args.plan)})", report.fixed_start)]
        for label, run in rows:
            print(f"| {name} | {label} | ${run.cost:.2f} | {len(run.plan_changes)} | {_minutes(run.seconds_over_threshold)} "
                  f"| {_minutes(run.seconds_over_capacity)} | {_short(run.final_plan.name)} |")
        print(f"| {name} | hindsight floor | ${floor:.2f} | – | – | 0 | – |")


def _options(options):
    return " ".join(f"--schedule \"{spec}\"" for spec in options.get("schedules", ()))


def _short(name):
    return name.split(":", 1)[1]


def _minutes(seconds):
    return f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    main()
