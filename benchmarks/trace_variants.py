"""The example traces' generators with other seeds (flap_bait with other periods,
sudden_spike with other heights), each
variant judged as simulate_traces.py judges the example runs: issue 13 judges hidden traces
generated afresh, so the bars must hold beyond our own files.

    DEBUG=true .venv/bin/python benchmarks/trace_variants.py            # seeds +1..+3
    DEBUG=true .venv/bin/python benchmarks/trace_variants.py 0 1 2 3 4  # seed offsets

Prints one markdown table, a row per variant and run, with the three bars (as the README's
judged table), then how many pass. The traces are written to a temporary folder. Always
exits 0: a figure to read, not a gate (tests/scaling/test_example_traces_judged.py gates the
example traces themselves). No database, no network.
"""

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.simulate_traces import KVS, ROOT, RUNS, Run, figures  # noqa: E402  (sets Django up)

sys.path.insert(0, str(ROOT / "examples" / "traces"))
import make_traces  # noqa: E402

FLAP_PERIODS = (100, 240, 300)  # minutes
SPIKE_LEVELS = (80, 150, 300, 450, 600, 700)  # MiB
SCALE_IN_OFF = ("daily_queue_cycle", "sudden_spike", "slow_leak", "connection_storm", "flap_bait")


@dataclass(frozen=True)
class VariantRun(Run):
    """A run of ``RUNS`` on a trace written to ``csv`` instead of the example file."""

    csv: Path = Path()
    variant: str = ""

    @property
    def path(self) -> Path:
        return self.csv


def variants(offsets, folder: Path):
    """(variant name, run) for every run of RUNS on a trace of make_traces.py (the cache
    traces have their own script) on every seed offset, flap_bait at every period,
    sudden_spike at every level, and every queue trace with scale-in switched off."""
    runs = [run for run in RUNS if f"{run.trace}.csv" in make_traces.TRACES] + [Run(t, "autoscaler --no-scale-down", dict(KVS, scale_down=False))
                         for t in SCALE_IN_OFF if t != "sudden_spike"]
    for offset in offsets:
        for run in runs:
            make = make_traces.TRACES[f"{run.trace}.csv"]
            default_seed = make.__defaults__[0]
            shapes = {"flap_bait": [("period_min", p, f" period {p} min") for p in FLAP_PERIODS],
                      "sudden_spike": [("level_mib", m, f" spike to {m} MiB") for m in SPIKE_LEVELS]}
            for shape in shapes.get(run.trace, [None]):
                kwargs = dict(seed=default_seed + offset)
                name = f"seed+{offset}"
                if shape is not None:
                    kwargs[shape[0]] = shape[1]
                    name += shape[2]
                csv = folder / f"{run.trace}-{offset}-{shape and shape[1]}.csv"
                if not csv.exists():
                    make_traces.write(csv, make(**kwargs))
                yield name, VariantRun(run.trace, run.label, run.options, csv=csv, variant=name)


def main(argv) -> int:
    offsets = [int(a) for a in argv[1:]] or [1, 2, 3]
    print("| trace | variant | run | (a) over capacity: engine / original | (b) plan changes: engine / allowed "
          "(original) | (c) cost: engine / floor | judged |")
    print("|---|---|---|---|---|---|---|")
    total = passed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in variants(offsets, Path(tmp)):
            j = figures(run).judgement
            total += 1
            passed += j.passed
            print(f"| {run.trace} | {name} | {run.label} "
                  f"| {_mark(j.capacity_ok)} {j.seconds_over_capacity / 60:.1f} / {j.original_seconds_over_capacity / 60:.1f} min "
                  f"| {_mark(j.changes_ok)} {j.plan_changes} / {j.changes_allowed} ({j.original_plan_changes}) "
                  f"| {_mark(j.cost_ok)} {j.cost / j.floor_cost:.2f}x | {'PASS' if j.passed else 'FAIL'} |", flush=True)
    print(f"\n{passed} of {total} variant runs pass all three bars.")
    return 0


def _mark(ok: bool) -> str:
    return "pass" if ok else "FAIL"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
