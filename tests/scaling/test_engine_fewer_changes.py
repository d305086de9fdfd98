"""The engine's rules for fewer, cheaper plan changes (issue 13): a storm of rejected
connections sized by how far over the limit the demand is, and a steady climb that the trend
says will pass the next plan too going straight to the one after. Pure: no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from scaling.engine import MIB, PeriodAgo, decide
from tests.scaling.test_engine import LADDER, NOW, P, POLICY, Case, assert_decides, ramp, run, series


def refused(per_sample: int, over_minutes: float = 1.0):
    """A rejected-connections counter rising ``per_sample`` between 30 s samples in the last
    ``over_minutes`` (a function of the sample's age in minutes)."""
    return lambda age: 1_000 + per_sample * max(0, int(round((over_minutes - age) * 2)))


CASES = [
    # --- connections_refused: sized by the demand, not a fixed factor ----------------------
    Case(
        "storm: 150 refused between samples on a full premium-0 (40) -> premium-3, demand 190",
        P["premium-0"], series(P["premium-0"], 20, mem=30, conn=lambda a: 100 if a <= 1 else 40,
                               rejected=refused(150)),
        "up", "premium-3", breaching=True, data_drop=True,
        rule="connections_refused",
        fields={"metrics": ("connections",), "dropped.rejected_connections_rise": 300,
                "dropped.rejected_step": 150, "dropped.connection_demand": 190, "fit.connection_pct": 47.5},
    ),
    Case(
        "storm: 5 refused between samples on a full premium-0 -> premium-1, not a doubling",
        P["premium-0"], series(P["premium-0"], 20, mem=30, conn=lambda a: 100 if a <= 1 else 40,
                               rejected=refused(5)),
        "up", "premium-1", breaching=True, data_drop=True,
        rule="connections_refused",
        fields={"dropped.rejected_step": 5, "dropped.connection_demand": 45, "fit.connection_pct": 56.25},
    ),
    Case(
        "storm: with memory dropping too, the data drop rule sizes both (connections by demand)",
        P["premium-0"], series(P["premium-0"], 20, mem=lambda a: 99.5 if a <= 1 else 40,
                               conn=lambda a: 100 if a <= 1 else 40, rejected=refused(150)),
        "up", "premium-3", breaching=True, data_drop=True,
        rule="data_drop", fields={"metrics": ("memory", "connections"), "dropped.connection_demand": 190},
    ),
    # --- steady_climb: a climb passing two plans within the sizing horizon ----------------
    Case(
        "climb: a steady rise for an hour that will outgrow premium-1 within 2 h goes straight to premium-2",
        # 20% -> 79% of premium-0 in 60 min: +0.49 MiB/min, 39.5 MiB now, about 98.5 MiB in 2 h
        P["premium-0"], series(P["premium-0"], 60, mem=ramp(20, 79, 60), conn=20),
        "up", "premium-2", breaching=False,
        rule="steady_climb",
        fields={"metrics": ("memory",), "climb.first.name": "premium-1", "climb.horizon.seconds": 7200,
                "climb.projected_pct": 98.5, "fit.plan.name": "premium-2"},
    ),
    Case(
        "climb: a rise seen for only 10 minutes is not projected 2 h ahead",
        P["premium-0"], series(P["premium-0"], 10, mem=ramp(60, 79, 10), conn=20),
        "up", "premium-1", breaching=False,
        rule="early_trend",
    ),
    Case(
        "climb: an oscillation that fell for half an hour and rose for half an hour is not a climb",
        P["premium-0"], series(P["premium-0"], 60, mem=lambda a: 20 + (30 - a) * 59 / 30 if a <= 30 else 20 + (a - 30) * 1.5,
                               conn=20),
        "up", "premium-1", breaching=False,
        rule="early_trend",
    ),
    Case(
        "climb: a breach with a slow rise stays one plan (the next holds it past the horizon)",
        P["premium-0"], series(P["premium-0"], 20, mem=ramp(80, 86, 20), conn=20),
        "up", "premium-1", breaching=True,
        rule="breach",
    ),
    Case(
        "climb: never past the max plan",
        P["premium-0"], series(P["premium-0"], 60, mem=ramp(20, 79, 60), conn=20),
        "up", "premium-1", breaching=False, max_plan=P["premium-1"],
        rule="early_trend",
    ),
    # --- still_climbing: no step down into a plan the climb would outgrow -----------------
    Case(
        "still climbing: no step down into a plan a steady rise outgrows within 2 h",
        # 30 -> 40 MiB over 16 min (0.625 MiB/min): premium-1 holds it now and for 15 min
        # more, but about 115 MiB in 2 h would need premium-2 again.
        P["premium-2"], series(P["premium-2"], 16, mem=ramp(12, 16, 16), conn=5),
        "stay", rule="still_climbing",
        fields={"climb.first.name": "premium-1", "climb.projected_pct": 115.0, "metrics": ("memory",)},
    ),
    # --- early_trend: a step that has already happened is not a rise ----------------------
    Case(
        "trend: a step up 7 minutes ago that has stayed flat since does not scale early",
        P["premium-2"], series(P["premium-2"], 10, mem=lambda a: 8 if a > 7 else 72, conn=10),
        "stay", rule="window_not_observed",
        fields={"memory.trend_meaningful": False},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case):
    assert_decides(case, run(case), tolerance=0.05)


SETTLING = [
    Case(
        "settling: 4 min after a step down, a projected rise (not a breach) waits",
        P["premium-0"],
        series(P["premium-1"], 16, mem=14, conn=12, end=NOW - timedelta(minutes=5))
        + series(P["premium-0"], 4, mem=ramp(50, 70, 4), conn=25),
        "stay", last_change_at=NOW - timedelta(minutes=4, seconds=30),
        rule="settling_after_down", fields={"since_change": timedelta(minutes=4, seconds=30)},
    ),
    Case(
        "settling: 4 min after a step down, a breach still moves up",
        P["premium-0"],
        series(P["premium-1"], 16, mem=14, conn=12, end=NOW - timedelta(minutes=5))
        + series(P["premium-0"], 4, mem=ramp(60, 90, 4), conn=25),
        "up", "premium-1", breaching=True, last_change_at=NOW - timedelta(minutes=4, seconds=30),
        rule="breach",
    ),
    Case(
        "settling: 4 min after a step up, a projected rise moves up again",
        P["premium-1"],
        series(P["premium-0"], 16, mem=70, conn=20, end=NOW - timedelta(minutes=5))
        + series(P["premium-1"], 4, mem=ramp(50, 70, 4), conn=10),
        "up", "premium-2", last_change_at=NOW - timedelta(minutes=4, seconds=30),
        rule="early_trend",
    ),
]


@pytest.mark.parametrize("case", SETTLING, ids=[c.name for c in SETTLING])
def test_settling_rule(case: Case):
    assert_decides(case, run(case), tolerance=0.05)


SCALE_IN_OFF = replace(POLICY, scale_down=False)
CHANGED = NOW - timedelta(minutes=1, seconds=45)


def full_after_move_up(from_plan, *, from_mem=99.5):
    """Memory at ``from_mem`` % of ``from_plan`` for 4 min, then the move up to premium-2
    (1 min 45 s ago) and premium-2 full since (both with evictions rising)."""
    return (series(from_plan, 4, mem=from_mem, conn=20, evicted=lambda a: 1_000 - int(a * 100),
                   end=CHANGED - timedelta(seconds=15))
            + series(P["premium-2"], 1.5, mem=99.5, conn=10, evicted=lambda a: 2_000 - int(a * 100)))


DROP_AFTER_DROP_UP = [
    Case(
        "scale-in off: premium-2 full right after a move up for a full premium-0 -> premium-3, 2x at the limit",
        P["premium-2"], full_after_move_up(P["premium-0"]),
        "up", "premium-3", breaching=True, data_drop=True, last_change_at=CHANGED, policy=SCALE_IN_OFF,
        rule="drop_after_drop_up",
        fields={"dropped.memory_at_limit": True, "dropped.sized_for_factor": 2.0, "fit.memory_pct": 99.5},
    ),
    Case(
        "scale-in on: the same drop is sized under the threshold (a step down undoes an overshoot) -> premium-4",
        P["premium-2"], full_after_move_up(P["premium-0"]),
        "up", "premium-4", breaching=True, data_drop=True, last_change_at=CHANGED,
        rule="data_drop", fields={"dropped.memory_at_limit": False},
    ),
    Case(
        "scale-in off: premium-2 full after a move up from a premium-0 that was not full -> premium-4, under the threshold",
        P["premium-2"], full_after_move_up(P["premium-0"], from_mem=85),
        "up", "premium-4", breaching=True, data_drop=True, last_change_at=CHANGED, policy=SCALE_IN_OFF,
        rule="data_drop", fields={"dropped.memory_at_limit": False},
    ),
    Case(
        "scale-in off: a first drop (no change before) is sized under the threshold -> premium-2",
        P["premium-0"], series(P["premium-0"], 2, mem=99.5, conn=20),
        "up", "premium-2", breaching=True, data_drop=True, policy=SCALE_IN_OFF,
        rule="data_drop", fields={"dropped.memory_at_limit": False},
    ),
]


@pytest.mark.parametrize("case", DROP_AFTER_DROP_UP, ids=[c.name for c in DROP_AFTER_DROP_UP])
def test_drop_after_drop_up_rule(case: Case):
    assert_decides(case, run(case), tolerance=0.05)


# --- daily_pattern: no step down the same hours a day ago would outgrow --------------------

def period_ago(ahead_mib, then_mib, *, clients=10):
    """A PeriodAgo whose next 8 h a day ago peaked at ``ahead_mib`` and whose stabilisation
    window then at ``then_mib`` (``None``: nothing stored then)."""
    since, until = POLICY.pattern_window(NOW)
    mib = (lambda v: None if v is None else int(v * MIB))
    return PeriodAgo(since=since, until=until, peak_memory=mib(ahead_mib), peak_connections=clients,
                     then_peak_memory=mib(then_mib), then_peak_connections=clients)


QUIET_ON_PREMIUM_2 = series(P["premium-2"], 20, mem=8, conn=5)  # 20 MiB, 10 clients: premium-0 would do


@pytest.mark.parametrize(
    "ago, action, target, rule, fields",
    [
        (period_ago(70, 20), "down", "premium-1", "daily_pattern",
         {"fit.memory_pct": 70.0, "period_ago.peak_memory": 70 * MIB}),
        (period_ago(150, 20), "stay", None, "daily_pattern", {"fit.plan.name": "premium-0"}),
        (period_ago(30, 20), "down", "premium-0", "scale_down", {}),
        (period_ago(70, 90), "down", "premium-0", "scale_down", {}),  # a day ago this hour was busy: no pattern
        (period_ago(None, None), "down", "premium-0", "scale_down", {}),  # nothing stored a day ago
        (None, "down", "premium-0", "scale_down", {}),
    ],
    ids=["a day ago the next 8 h reached 70 MiB: down only to premium-1",
         "a day ago the next 8 h reached 150 MiB: stays on premium-2",
         "a day ago the next 8 h fit premium-0: down to it",
         "a day ago this hour did not fit premium-0 (the pattern does not repeat): down to it",
         "nothing stored a day ago: down to premium-0",
         "no period ago given: down to premium-0"],
)
def test_daily_pattern_rule(ago, action, target, rule, fields):
    d = decide(current=P["premium-2"], ladder=LADDER, min_plan=LADDER[0], max_plan=LADDER[-1],
               samples=QUIET_ON_PREMIUM_2, policy=POLICY, last_change_at=None, now=NOW, period_ago=ago)
    case = Case("", P["premium-2"], QUIET_ON_PREMIUM_2, action, target, rule=rule, fields=fields)
    assert_decides(case, d, tolerance=0.05)


def test_the_pattern_window_is_the_next_8_hours_a_day_ago_and_its_down_window_the_15_minutes_before():
    assert POLICY.pattern_window(NOW) == (NOW - timedelta(days=1), NOW - timedelta(hours=16))
    assert POLICY.pattern_down_window(NOW) == (NOW - timedelta(days=1, minutes=15), NOW - timedelta(days=1))


# --- spike_drained: back down to the plan a climb of two plans or more started from ---------

CLIMBED = NOW - timedelta(minutes=40)


def spike_on_premium_5(*, drained_minutes, drained_mem=2.7, before=P["premium-0"], before_mem=56, drained=None):
    """``before`` at ``before_mem`` % (28 MiB on premium-0) for 15 min and full in its last
    minute, the climb to premium-5 40 min ago, 600 MiB (59 %) there, and the last ``drained_minutes`` back at ``drained_mem`` %
    (2.7 %: 28 MiB) -- or ``drained`` (a function of the age) when given."""
    level = drained or (lambda age: drained_mem if age <= drained_minutes else 59)
    return (series(before, 15, mem=lambda age: 99.5 if age < 1 else before_mem, conn=50,
                   end=CLIMBED - timedelta(seconds=15))
            + series(P["premium-5"], 39.5, mem=level, conn=2))


SPIKE_DRAINED = [
    Case(
        "drained: premium-5 back at premium-0's load for 6 min after a climb from premium-0 -> premium-0",
        P["premium-5"], spike_on_premium_5(drained_minutes=6),
        "down", "premium-0", last_change_at=CLIMBED,
        rule="spike_drained",
        fields={"down.climbed_from.name": "premium-0", "down.window": timedelta(minutes=5),
                "fit.memory_pct": 55.3, "down.memory_limit_pct": 64.0},
    ),
    Case(
        "drained: back for only 3 min -> stays (the spike is in the 5 min)",
        P["premium-5"], spike_on_premium_5(drained_minutes=3),
        "stay", last_change_at=CLIMBED,
        rule="lower_plan_too_small",
    ),
    Case(
        "drained: the load left is more than premium-0 holds under the down limit -> stays",
        P["premium-5"], spike_on_premium_5(drained_minutes=6, drained_mem=3.5),  # 36 MiB: 72 % of premium-0
        "stay", last_change_at=CLIMBED,
        rule="lower_plan_too_small",
    ),
    Case(
        "drained: a climb of one plan (premium-4 -> premium-5) is left to the whole stabilisation window",
        P["premium-5"], spike_on_premium_5(drained_minutes=6, before=P["premium-4"], before_mem=3.7),
        "stay", last_change_at=CLIMBED,
        rule="lower_plan_too_small",
    ),
    Case(
        "drained: a climb the load did not drive (premium-0 never over a threshold: a schedule's raise) -> stays",
        P["premium-5"], series(P["premium-0"], 15, mem=56, conn=50, end=CLIMBED - timedelta(seconds=15))
        + series(P["premium-5"], 39.5, mem=lambda age: 2.7 if age <= 6 else 59, conn=2),
        "stay", last_change_at=CLIMBED,
        rule="lower_plan_too_small",
    ),
    Case(
        "drained: the load rising again in the last 5 min -> stays",
        P["premium-5"], spike_on_premium_5(drained_minutes=6, drained=lambda age: 0.5 + (6 - age) * 0.4 if age <= 6 else 59),
        "stay", last_change_at=CLIMBED,
        rule="lower_plan_too_small",
    ),
]


@pytest.mark.parametrize("case", SPIKE_DRAINED, ids=[c.name for c in SPIKE_DRAINED])
def test_spike_drained_rule(case: Case):
    assert_decides(case, run(case), tolerance=0.05)
