"""The scaling engine (scaling/engine.py): one table row per rule of DESIGN section 5.

Pure tests: no database, no network, no clock.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

from tests.scaling.ladders import HEROKU_KVS

from scaling.engine import MIB, RULES, Decision, Plan, Policy, Sample, Situation, breach, decide, sort_ladder

NOW = datetime(2024, 3, 4, 12, 0, tzinfo=timezone.utc)

LADDER = HEROKU_KVS
P = {p.name: p for p in LADDER}
POLICY = Policy(80, 80, timedelta(minutes=1))

# A ladder with fine memory steps, to see the engine skip plans, and an unlimited plan.
FINE = [
    Plan.from_limits("f-100", 100, 1000, 10),
    Plan.from_limits("f-110", 110, 1000, 11),
    Plan.from_limits("f-120", 120, 1000, 12),
    Plan.from_limits("f-130", 130, 1000, 13),
    Plan.from_limits("f-200", 200, -1, 20),
]
F = {p.name: p for p in FINE}

Value = float | Callable[[float], float]


def series(
    plan: Plan,
    minutes: float,
    *,
    mem: Value = 40.0,
    conn: Value = 20.0,
    evicted: Value = 0,
    rejected: Value = 0,
    every: int = 30,
    end: datetime = NOW,
    plan_name: str | None = None,
) -> list[Sample]:
    """Samples every ``every`` s over the last ``minutes`` up to ``end`` (inclusive).

    ``mem``/``conn`` are percentages of ``plan``'s limits (for a plan with unlimited
    connections, ``conn`` is a client count), ``evicted``/``rejected`` counter values;
    each may be a function of the sample's age in minutes.
    """
    out = []
    count = int(minutes * 60 // every)
    for i in range(count, -1, -1):
        age = i * every / 60

        def val(v: Value) -> float:
            return v(age) if callable(v) else v

        limit = plan.connection_limit
        clients = val(conn) if limit is None else val(conn) / 100 * limit
        out.append(
            Sample(
                at=end - timedelta(seconds=i * every),
                plan_name=plan_name or plan.name,
                used_memory=int(val(mem) / 100 * plan.memory_bytes),
                connected_clients=int(round(clients)),
                evicted_keys=int(val(evicted)),
                rejected_connections=int(val(rejected)),
            )
        )
    return out


def failed(plan: Plan, at: datetime) -> Sample:
    return Sample(at=at, plan_name=plan.name, used_memory=None, connected_clients=None,
                  evicted_keys=None, rejected_connections=None, ok=False)


@dataclass
class Case:
    name: str
    current: Plan
    samples: list[Sample]
    action: str
    target: str | None = None
    ladder: list[Plan] = field(default_factory=lambda: LADDER)
    min_plan: Plan | None = None
    max_plan: Plan | None = None
    last_change_at: datetime | None = None
    policy: Policy = POLICY
    breaching: bool = False
    data_drop: bool = False
    cannot_scale_further: bool = False
    rule: str | None = None
    fields: dict = field(default_factory=dict)  # dotted path on the Decision -> expected value


def run(case: Case) -> Decision:
    plans = sort_ladder(case.ladder)
    return decide(
        current=case.current,
        ladder=case.ladder,
        min_plan=case.min_plan or plans[0],
        max_plan=case.max_plan or plans[-1],
        samples=case.samples,
        policy=case.policy,
        last_change_at=case.last_change_at,
        now=NOW,
    )


def ramp(start: float, stop: float, over: float) -> Callable[[float], float]:
    """A value rising linearly from ``start`` (``over`` minutes ago) to ``stop`` (now)."""
    return lambda age: stop - (stop - start) * min(age, over) / over


CASES = [
    # --- Breach: the up-window average above a threshold -> up -------------------------
    Case(
        "breach: memory average above threshold -> up",
        P["premium-0"], series(P["premium-0"], 20, mem=86, conn=20),
        "up", "premium-1", breaching=True,
        rule="breach", fields={"metrics": ("memory",), "memory.average_pct": 86.0, "memory.threshold": 80,
                               "window": timedelta(minutes=2), "fit.memory_pct": 43.0, "fit.connection_pct": 10.0},
    ),
    Case(
        "breach: connection average above threshold -> up",
        P["premium-1"], series(P["premium-1"], 20, mem=30, conn=90),
        "up", "premium-2", breaching=True,
        rule="breach", fields={"metrics": ("connections",), "connections.average_pct": 90.0, "fit.connection_pct": 36.0},
    ),
    Case(
        "breach: a short peak under an average below threshold is not a breach",
        P["premium-1"], series(P["premium-1"], 20, mem=lambda a: 95 if a == 0 else 60, conn=20),
        "stay",
        rule="peak_over_threshold",
    ),
    # --- Up goes straight to the cheapest plan that fits -------------------------------
    Case(
        "up: straight to the cheapest plan that fits, skipping plans too small",
        F["f-100"], series(F["f-100"], 20, mem=95, conn=10),
        "up", "f-120", ladder=FINE, breaching=True,
        rule="breach", fields={"fit.plan.name": "f-120", "fit.memory_pct": 79.2},
    ),
    Case(
        "up: no plan up to the max fits -> max plan, cannot scale further",
        F["f-100"], series(F["f-100"], 20, mem=95, conn=10),
        "up", "f-110", ladder=FINE, max_plan=F["f-110"], breaching=True, cannot_scale_further=True,
        rule="breach", fields={"fit.plan.name": "f-110"},
    ),
    Case(
        "up: at the max plan and breaching -> stay, cannot scale further",
        P["premium-1"], series(P["premium-1"], 20, mem=lambda a: 90 if a <= 2 else 50, conn=20),
        "stay", None, max_plan=P["premium-1"], breaching=True, cannot_scale_further=True,
        rule="breach", fields={"max_plan.name": "premium-1"},
    ),
    # --- Data drop: at once, whatever the averages ---------------------------------------
    Case(
        "data drop: evictions rising, on only two samples -> up at once",
        P["premium-1"], series(P["premium-1"], 0.5, mem=40, conn=20, evicted=lambda a: 100 if a else 150),
        "up", "premium-2", breaching=True, data_drop=True,
        rule="data_drop", fields={"dropped.evicted_keys_rise": 50, "metrics": ("memory",)},
    ),
    Case(
        "data drop: rejected connections rising -> up at once",
        P["premium-1"], series(P["premium-1"], 20, mem=40, conn=30, rejected=lambda a: 7 if a > 1 else 19),
        "up", "premium-2", breaching=True, data_drop=True,
        rule="connections_refused", fields={"dropped.rejected_connections_rise": 12, "metrics": ("connections",)},
    ),
    Case(
        "data drop: memory at the plan limit, on one sample -> up at once",
        P["premium-0"], series(P["premium-0"], 0, mem=99.5, conn=10),
        "up", "premium-2", breaching=True, data_drop=True,
        rule="data_drop", fields={"dropped.memory_full_pct": 99.5, "dropped.sized_for_factor": 2.0},
    ),
    Case(
        "data drop: a counter that went down is a restart, not a rise",
        P["premium-1"], series(P["premium-1"], 20, mem=40, conn=20, evicted=lambda a: 500 if a > 1 else 0),
        "stay",
        rule="lower_plan_too_small",
    ),
    Case(
        "data drop: at the max plan -> stay, cannot scale further",
        P["premium-1"], series(P["premium-1"], 1, mem=99.9, conn=20),
        "stay", None, max_plan=P["premium-1"], breaching=True, data_drop=True, cannot_scale_further=True,
        rule="data_drop",
    ),
    # --- Early ("premature"): the trend crosses within the horizon -----------------------
    Case(
        "early: a steady rise projected over the threshold -> up before the breach",
        P["premium-1"], series(P["premium-1"], 10, mem=ramp(60, 77, 10), conn=20),
        "up", "premium-2", breaching=False,
        rule="early_trend", fields={"metrics": ("memory",), "memory.trend_projected_pct": 82.1,
                                    "memory.trend_horizon": timedelta(minutes=3), "memory.latest_pct": 77.0,
                                    "memory.trend_slope_pct_per_min": 1.7, "memory.trend_meaningful": True},
    ),
    Case(
        "early: a rise far below the threshold does not scale",
        P["premium-1"], series(P["premium-1"], 10, mem=ramp(10, 30, 10), conn=20),
        "stay",
        rule="window_not_observed",
    ),
    # --- Down -----------------------------------------------------------------------------
    Case(
        "down: whole stabilisation window low -> cheapest plan that fits, several steps",
        P["premium-3"], series(P["premium-3"], 16, mem=4, conn=4),
        "down", "premium-0",
        rule="scale_down", fields={"down.window": timedelta(minutes=15), "fit.memory_pct": 40.0, "fit.connection_pct": 40.0,
                                   "down.rising": ()},
    ),
    Case(
        "down: samples must cover the whole stabilisation window",
        P["premium-3"], series(P["premium-3"], 10, mem=4, conn=4),
        "stay", rule="window_not_observed", fields={"down.observed": timedelta(minutes=10)},
    ),
    Case(
        "down: a gap in the samples means the window was not observed",
        P["premium-3"],
        [s for s in series(P["premium-3"], 16, mem=4, conn=4) if not (3 < (NOW - s.at).total_seconds() / 60 < 10)],
        "stay", rule="gap_in_window", fields={"down.max_gap": timedelta(minutes=5)},
    ),
    Case(
        "down: a failed read in the window never allows a down",
        P["premium-3"], series(P["premium-3"], 16, mem=4, conn=4) + [failed(P["premium-3"], NOW - timedelta(minutes=7))],
        "stay", rule="failed_reads_in_window", fields={"down.failed_reads": 1},
    ),
    Case(
        "down: evictions rising anywhere in the window block a down",
        P["premium-3"], series(P["premium-3"], 16, mem=4, conn=4, evicted=lambda a: 0 if a > 12 else 40),
        "stay", rule="data_dropped_in_window",
    ),
    Case(
        "down: rejected connections rising in the window block a down",
        P["premium-3"], series(P["premium-3"], 16, mem=4, conn=4, rejected=lambda a: 0 if a > 12 else 3),
        "stay", rule="data_dropped_in_window",
    ),
    Case(
        "down: judged on the window's peak, not its average",
        P["premium-2"], series(P["premium-2"], 16, mem=lambda a: 20 if abs(a - 3) < 0.1 else 5, conn=5),
        "down", "premium-1",  # the 50 MiB peak needs premium-1; the 12.5 MiB level would fit mini
        rule="scale_down", fields={"down.peak_memory_pct": 20.0, "fit.memory_pct": 50.0, "fit.connection_pct": 12.5},
    ),
    Case(
        "down: a metric over its threshold in the window blocks a down",
        P["premium-2"], series(P["premium-2"], 16, mem=lambda a: 85 if abs(a - 8) < 0.1 else 5, conn=5),
        "stay", rule="peak_over_threshold", fields={"metrics": ("memory",), "down.peak_memory_pct": 85.0},
    ),
    Case(
        "down: the lower plan must hold the peak under threshold less the margin",
        P["premium-1"], series(P["premium-1"], 16, mem=35, conn=20),  # 35 MiB = 70% of premium-0 > 64%
        "stay", rule="lower_plan_too_small", fields={"fit.plan.name": "premium-0", "fit.memory_pct": 70.0,
                                                     "down.margin": 0.2, "down.memory_limit_pct": 64.0},
    ),
    Case(
        "down: never below the min plan",
        P["premium-2"], series(P["premium-2"], 16, mem=2, conn=2),
        "down", "premium-1", min_plan=P["premium-1"],
        rule="scale_down",
    ),
    Case(
        "down: at the min plan -> stay",
        P["premium-1"], series(P["premium-1"], 16, mem=2, conn=2),
        "stay", min_plan=P["premium-1"], rule="at_min_plan",
    ),
    Case(
        "down: a rising load must still fit the lower plan a window ahead",
        # 25 -> 31 MiB over 16 min, rising 0.375 MiB/min: premium-0 holds the peak (62%) but
        # not the projection 15 min ahead (73%); premium-1 holds that and 2 h of it (76%).
        P["premium-2"], series(P["premium-2"], 16, mem=ramp(10, 12.4, 16), conn=5),
        "down", "premium-1", rule="scale_down", fields={"down.rising": ("memory",)},
    ),
    Case(
        "down: the last half of the window fits a deeper plan -> wait for one step",
        P["premium-3"], series(P["premium-3"], 16, mem=lambda a: 18 if a > 9 else 4, conn=4),
        "stay", rule="waiting_for_deeper_step", fields={"down.deeper.name": "premium-0"},
    ),
    # --- After a change; samples that do not count --------------------------------------
    Case(
        "after a change: no samples on the new plan yet -> stay, waiting",
        P["premium-2"], series(P["premium-1"], 10, mem=95, conn=20),
        "stay", last_change_at=NOW - timedelta(minutes=1), rule="waiting_for_new_plan",
        fields={"since_change": timedelta(minutes=1)},
    ),
    Case(
        "after a change: samples before the change do not count",
        P["premium-2"],
        series(P["premium-2"], 10, mem=95, conn=20, end=NOW - timedelta(minutes=2))
        + series(P["premium-2"], 1, mem=30, conn=10),
        "stay", last_change_at=NOW - timedelta(minutes=1, seconds=30),
        rule="window_not_observed", fields={"memory.average_pct": 30.0, "down.observed": timedelta(minutes=1)},
    ),
    Case(
        "after a change: data drop acts on the first sample on the new plan",
        P["premium-2"], series(P["premium-2"], 0, mem=100, conn=20),
        "up", "premium-4", last_change_at=NOW - timedelta(seconds=20), breaching=True, data_drop=True,
        rule="data_drop",
    ),
    Case(
        "samples on another plan never count",
        P["premium-1"], series(P["premium-1"], 20, mem=95, conn=20, plan_name="premium-0"),
        "stay", rule="no_samples",
    ),
    Case(
        "too few samples -> stay",
        P["premium-1"], series(P["premium-1"], 0.5, mem=95, conn=20),
        "stay", rule="too_few_samples", fields={"samples": 2, "samples_needed": 3},
    ),
    Case(
        "failed reads only -> stay, never down",
        P["premium-3"], [failed(P["premium-3"], NOW - timedelta(seconds=30 * i)) for i in range(40)],
        "stay",
        rule="too_few_samples",
    ),
    Case(
        "samples older than the windows are ignored",
        P["premium-1"], series(P["premium-1"], 20, mem=95, conn=20, end=NOW - timedelta(hours=2)),
        "stay", rule="no_samples",
    ),
    # --- Unlimited connections -------------------------------------------------------------
    Case(
        "unlimited connections: the connection threshold never applies",
        F["f-200"], series(F["f-200"], 20, mem=50, conn=5000),
        "stay", ladder=FINE,
        rule="lower_plan_too_small",
    ),
    # --- Outside min..max -----------------------------------------------------------------
    Case(
        "below the min plan -> up into the range",
        P["premium-0"], series(P["premium-0"], 5, mem=20, conn=10),
        "up", "premium-2", min_plan=P["premium-2"], rule="below_min_plan",
    ),
    Case(
        "below the min plan with no samples -> up to the min plan",
        P["mini"], [], "up", "premium-1", min_plan=P["premium-1"],
        rule="below_min_plan",
    ),
    Case(
        "above the max plan (raised by hand): not moved before a whole stabilisation window",
        P["premium-4"], series(P["premium-4"], 5, mem=5, conn=5),
        "stay", max_plan=P["premium-2"], rule="window_not_observed", fields={"above_max_plan": True},
    ),
    Case(
        "above the max plan: after a whole low window, down into the range with the margin",
        P["premium-4"], series(P["premium-4"], 16, mem=5, conn=5),  # 37.5 MiB: 75% of premium-0 > 64%
        "down", "premium-1", max_plan=P["premium-2"], rule="scale_down", fields={"above_max_plan": True},
    ),
    Case(
        "above the max plan: a load the range cannot hold stays on the plan set by hand",
        P["premium-4"], series(P["premium-4"], 16, mem=60, conn=5),
        "stay", max_plan=P["premium-2"], rule="lower_plan_too_small",
        fields={"fit.plan.name": "premium-2", "fit.memory_pct": 180.0},
    ),
    Case(
        "above the max plan and breaching -> stay, cannot scale further",
        P["premium-4"], series(P["premium-4"], 16, mem=90, conn=5),
        "stay", max_plan=P["premium-2"], breaching=True, cannot_scale_further=True, rule="breach",
    ),
    Case(
        "above the max plan with no samples -> stay",
        P["premium-4"], [], "stay", max_plan=P["premium-2"], rule="no_samples",
    ),
    # --- Ladder order ---------------------------------------------------------------------
    Case(
        "ladder: unsorted input, equal memory -> the cheapest plan wins",
        Plan.from_limits("a-100", 100, 100, 30),
        series(Plan.from_limits("a-100", 100, 100, 30), 20, mem=lambda a: 90 if a <= 2 else 50, conn=10),
        "up", "b-200-cheap",
        ladder=[
            Plan.from_limits("b-200-dear", 200, 100, 80),
            Plan.from_limits("c-400", 400, 100, 100),
            Plan.from_limits("a-100", 100, 100, 30),
            Plan.from_limits("b-200-cheap", 200, 100, 50),
        ],
        breaching=True,
        rule="breach",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case):
    assert_decides(case, run(case), tolerance=0.05)


def assert_decides(case: Case, d, *, tolerance):
    """The decision is the case's: action, target, flags, rule and the named fields (floats
    within `tolerance`), with a one-line reason."""
    assert d.action == case.action, d.reason
    assert (d.target.name if d.target else None) == case.target, d.reason
    assert d.breaching is case.breaching, d.reason
    assert d.data_drop is case.data_drop, d.reason
    assert d.cannot_scale_further is case.cannot_scale_further, d.reason
    assert d.rule == case.rule, d.reason
    for path, expected in case.fields.items():
        value = attribute(d, path)
        if isinstance(expected, float):
            assert value == pytest.approx(expected, abs=tolerance), (path, d.reason)
        else:
            assert value == expected, (path, d.reason)
    assert d.reason and "\n" not in d.reason


def attribute(obj, dotted: str):
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def test_flat_noisy_load_never_scales_early():
    """Noise around a flat level under the threshold: no up at any of ~1,000 checks."""
    plan = P["premium-1"]
    for seed, (level, sigma) in enumerate([(60, 3), (70, 3), (70, 5), (74, 1), (50, 8)]):
        rng = random.Random(seed)
        samples = []
        start = NOW - timedelta(hours=2)
        for k in range(240):
            at = start + timedelta(seconds=30 * k)
            samples.append(
                Sample(at, plan.name, int(rng.gauss(level, sigma) / 100 * plan.memory_bytes),
                       int(rng.gauss(level, sigma) / 100 * 80), 0, 0)
            )
            if k % 2 == 0 and k >= 40:
                d = decide(current=plan, ladder=LADDER, min_plan=LADDER[0], max_plan=LADDER[-1],
                           samples=samples, policy=POLICY, last_change_at=None, now=at)
                assert d.action != "up", (level, sigma, at, d.reason)


def test_decision_reports_window_averages():
    d = run(Case("", P["premium-1"], series(P["premium-1"], 20, mem=lambda a: 50 if a <= 2 else 10, conn=25), "stay"))
    assert d.memory_pct == pytest.approx(50.0, abs=0.2)
    assert d.connection_pct == pytest.approx(25.0, abs=0.5)
    assert d.window == timedelta(minutes=2)


def test_unlimited_plan_has_no_connection_percentage():
    d = run(Case("", F["f-200"], series(F["f-200"], 20, mem=50, conn=5000), "stay", ladder=FINE))
    assert d.connection_pct is None
    assert d.memory_pct == pytest.approx(50.0, abs=0.1)


def test_trend_projection_also_sizes_the_target():
    """A steep rise: the target holds the projection, not just today's peak."""
    d = run(Case("", F["f-100"], series(F["f-100"], 10, mem=ramp(30, 78, 10), conn=10), "up", ladder=FINE))
    assert d.action == "up" and d.rule == "early_trend"
    # 78 MiB now, rising 4.8 MiB/min: 92.4 MiB in 3 min needs 115.5 MiB under 80% -> f-120.
    assert d.target.name == "f-120"


def test_slow_metric_rate_still_decides():
    """5-minute samples with a 1-minute scaling rate: the up window reaches back to the
    last min_samples samples instead of seeing too few."""
    d = run(Case("", P["premium-0"], series(P["premium-0"], 15, mem=90, conn=10, every=300), "up"))
    assert d.action == "up" and d.breaching


# --- Data types -------------------------------------------------------------------------


def test_plan_from_limits_converts_units():
    plan = Plan.from_limits("premium-0", 50, 40, 15)
    assert plan == Plan("premium-0", 50 * 1_048_576, 40, 15.0)
    unlimited = Plan.from_limits("rediscloud:100", 100, -1, 10)
    assert unlimited.connection_limit is None and unlimited.unlimited_connections
    assert unlimited.connection_pct(10_000) is None
    assert MIB == 1_048_576


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(name="", memory_bytes=1, connection_limit=1, monthly_cost=1),
        dict(name="x", memory_bytes=0, connection_limit=1, monthly_cost=1),
        dict(name="x", memory_bytes=1, connection_limit=0, monthly_cost=1),
        dict(name="x", memory_bytes=1, connection_limit=-2, monthly_cost=1),
        dict(name="x", memory_bytes=1, connection_limit=1, monthly_cost=-1),
    ],
)
def test_plan_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        Plan(**kwargs)


def test_policy_defaults_derive_from_the_interval():
    one = Policy(80, 80, timedelta(minutes=1))
    assert one.up_window == timedelta(minutes=2)
    assert one.stabilisation_window == timedelta(minutes=15)
    assert one.trend_window == timedelta(minutes=10)
    assert one.trend_horizon == timedelta(minutes=3)  # plan change (2 min) + one interval
    assert (one.down_margin, one.min_samples, one.data_drop_factor) == (0.2, 3, 2.0)
    ten = Policy(80, 80, timedelta(minutes=10))
    assert ten.up_window == timedelta(minutes=20)
    assert ten.stabilisation_window == timedelta(minutes=50)
    assert ten.trend_horizon == timedelta(minutes=12)
    assert ten.stabilisation_window > ten.up_window
    custom = Policy(70, 60, timedelta(minutes=5), stabilisation_window=timedelta(hours=1))
    assert custom.stabilisation_window == timedelta(hours=1)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((0, 80, timedelta(minutes=1)), {}),
        ((80, 101, timedelta(minutes=1)), {}),
        ((80, 80, timedelta(0)), {}),
        ((80, 80, timedelta(minutes=1)), dict(down_margin=1.0)),
        ((80, 80, timedelta(minutes=1)), dict(min_samples=0)),
        ((80, 80, timedelta(minutes=1)), dict(data_drop_factor=0.5)),
    ],
)
def test_policy_rejects_nonsense(args, kwargs):
    with pytest.raises(ValueError):
        Policy(*args, **kwargs)


def test_decide_rejects_plans_outside_the_ladder_and_inverted_range():
    with pytest.raises(ValueError, match="not in the plan ladder"):
        decide(current=Plan.from_limits("other", 1, 1, 1), ladder=LADDER, min_plan=LADDER[0],
               max_plan=LADDER[-1], samples=[], policy=POLICY, last_change_at=None, now=NOW)
    with pytest.raises(ValueError, match="above max plan"):
        decide(current=P["premium-1"], ladder=LADDER, min_plan=P["premium-2"],
               max_plan=P["premium-0"], samples=[], policy=POLICY, last_change_at=None, now=NOW)


def test_engine_is_pure_standard_library():
    """No Django, no I/O, no clock: only standard-library imports, no datetime.now()."""
    source = Path(__file__).resolve().parents[2].joinpath("scaling", "engine.py").read_text()
    tree = ast.parse(source)
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
    assert modules <= {"__future__", "math", "dataclasses", "datetime", "functools", "typing"}, modules
    for banned in ("now()", "utcnow(", "time.time", "open("):
        assert banned not in source


def test_a_queue_filling_in_minutes_is_moved_up_on_its_trend_before_the_breach():
    """Memory climbing from 20 % to 65 % of premium-0 in 3 minutes, samples every 30 s: the
    projection (not yet the average) moves it up while every reading is under 80 %."""
    plan = P["premium-0"]
    samples = [
        Sample(NOW - timedelta(seconds=30 * (6 - k)), plan.name, int((20 + 7.5 * k) / 100 * plan.memory_bytes), 5, 0, 0)
        for k in range(7)
    ]
    d = decide(current=plan, ladder=LADDER, min_plan=LADDER[0], max_plan=LADDER[-1], samples=samples,
               policy=POLICY, last_change_at=None, now=NOW)
    assert d.action == "up" and not d.breaching, d.reason
    assert d.rule == "early_trend"


def test_noise_just_after_a_plan_change_rarely_looks_like_a_trend():
    """Flat noisy load (50-74 % +- 1-8 points) in the first 30 minutes on a new plan: at
    most 2 in 1,000 checks scale up on a projection (a short span needs a twice as
    significant slope: measured 5 in 9,000, against 11 with the quarter-window span alone
    and 4 with the former half-window span, which let a queue fill for a minute longer)."""
    plan = P["premium-1"]
    trend_ups = checks = 0
    for seed in range(100):
        rng = random.Random(seed)
        level, sigma = rng.choice([50, 60, 65, 70, 74]), rng.choice([1, 3, 5, 8])
        samples = []
        for k in range(60):
            at = NOW + timedelta(seconds=30 * k + 5)
            samples.append(Sample(at, plan.name, int(max(0, rng.gauss(level, sigma)) / 100 * plan.memory_bytes),
                                  int(max(0, rng.gauss(level, sigma)) / 100 * 80), 0, 0))
            if k % 2:
                d = decide(current=plan, ladder=LADDER, min_plan=LADDER[0], max_plan=LADDER[-1], samples=samples,
                           policy=POLICY, last_change_at=NOW, now=at)
                checks += 1
                trend_ups += d.action == "up" and d.rule == "early_trend"
    assert trend_ups <= 2 * checks / 1000, f"{trend_ups} of {checks}"


def test_an_early_scale_up_quotes_the_latest_sample_and_the_fitted_trend_each_by_name():
    """Issue 10: a queue flat at 20 % for four minutes that climbs to 78.2 % in the last two.
    The reason said "now 53.4 %, rising 11.44 points/min" (the fitted line's level and
    slope) while the chart showed 78.2 %: the latest sample and the fitted trend are two
    numbers, each quoted under its own name."""
    plan = P["premium-0"]
    climb = {4: 30.0, 3: 42.0, 2: 54.0, 1: 66.0, 0: 78.2}  # the last five samples, 30 s apart
    samples = [
        Sample(NOW - timedelta(seconds=30 * k), plan.name, int(climb.get(k, 20.0) / 100 * plan.memory_bytes), 8, 0, 0)
        for k in range(12, -1, -1)
    ]
    d = decide(current=plan, ladder=LADDER, min_plan=LADDER[0], max_plan=LADDER[-1], samples=samples,
               policy=POLICY, last_change_at=None, now=NOW)

    assert d.action == "up" and d.rule == "early_trend" and d.metrics == ("memory",)
    assert d.memory.latest_pct == pytest.approx(78.2, abs=0.01)
    fitted_level = d.memory.trend_projected_pct - d.memory.trend_slope_pct_per_min * 3
    assert fitted_level < 70  # the fitted line lags the latest sample: quoting it as "now" misleads
    assert "latest sample 78.2%" in d.reason
    assert f"fitted trend {d.memory.trend_slope_pct_per_min:+.2f} points/min" in d.reason
    assert f"projected to reach {d.memory.trend_projected_pct:.1f}%" in d.reason
    assert "now " not in d.reason



def test_each_rule_is_a_function_that_decides_or_passes():
    """A rule reads the situation and returns a decision, or None to let the next one judge."""
    def situation(mem):
        return Situation(current=P["premium-0"], ladder=LADDER, min_plan=LADDER[0], max_plan=LADDER[-1],
                         samples=series(P["premium-0"], 5, mem=mem, conn=10), policy=POLICY, last_change_at=None, now=NOW)

    assert breach(situation(50)) is None
    decision = breach(situation(90))
    assert (decision.action, decision.rule, decision.target.name) == ("up", "breach", "premium-1")
    assert RULES[-1].__name__ == "scale_down"  # the last rule always decides
    assert {rule.__name__ for rule in RULES} >= {"data_drop", "breach", "early_trend", "too_few_samples"}
