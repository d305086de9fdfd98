"""The offline simulation (scaling/simulation.py) and the acceptance bar on the example
traces in examples/traces/. Pure tests: no database, no network."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.scaling.ladders import HEROKU_KVS

import scaling.simulation as simulation
from benchmarks.baselines import baseline_original_rule, hindsight_floor_cost
from scaling.engine import Plan, Policy
from scaling.schedules import parse_schedule
from scaling.simulation import (
    HOURS_PER_MONTH,
    PlanChange,
    TraceError,
    TracePoint,
    parse_trace,
    simulate,
)

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "examples" / "traces"
MIB = 1_048_576
T0 = datetime(2024, 3, 4, tzinfo=timezone.utc)

LADDER = HEROKU_KVS
P = {p.name: p for p in LADDER}
RANK = {p.name: i for i, p in enumerate(LADDER)}
POLICY = Policy(80, 80, timedelta(minutes=1))
RATES = dict(
    metric_rate=timedelta(seconds=30),
    scaling_interval=timedelta(minutes=1),
    change_delay=timedelta(seconds=60),
)


def points(*segments: tuple[float, float, int], step: int = 30) -> list[TracePoint]:
    """A trace from (minutes, MiB, clients) segments, one point every ``step`` seconds,
    plus a final point ending the last segment."""
    out, t = [], 0
    for minutes, mib, clients in segments:
        for _ in range(int(minutes * 60 // step)):
            out.append(TracePoint(T0 + timedelta(seconds=t), int(mib * MIB), clients))
            t += step
    last = out[-1]
    out.append(TracePoint(T0 + timedelta(seconds=t), last.used_memory, last.connected_clients))
    return out


def run(trace, start="premium-0", *, policy=POLICY, min_plan="mini", max_plan="premium-9", **rates):
    kwargs = dict(RATES, **rates)
    return simulate(trace=trace, ladder=LADDER, start_plan=P[start], policy=policy,
                    min_plan=P[min_plan], max_plan=P[max_plan], **kwargs)


# --- parse_trace -------------------------------------------------------------------------


def test_parse_trace_accepts_iso_with_and_without_zone_and_epoch():
    text = (
        "timestamp,used_memory,connected_clients\n"
        "2024-03-04T00:00:00Z,100,1\n"
        "2024-03-04T00:00:30,200,2\n"  # naive: UTC
        "2024-03-04T01:01:00+01:00,300,3\n"  # = 00:01:00Z
        "1709510490,400,4\n"  # epoch seconds = 00:01:30Z
        "1709510520.5,500,5\n"
    )
    trace = parse_trace(text)
    assert [p.at for p in trace] == [
        T0,
        T0 + timedelta(seconds=30),
        T0 + timedelta(seconds=60),
        T0 + timedelta(seconds=90),
        T0 + timedelta(seconds=120.5),
    ]
    assert all(p.at.tzinfo is not None for p in trace)
    assert [(p.used_memory, p.connected_clients) for p in trace] == [(100, 1), (200, 2), (300, 3), (400, 4), (500, 5)]


def test_parse_trace_sources_and_extra_columns(tmp_path):
    text = "note,connected_clients,timestamp,used_memory\nx,3,2024-03-04T00:00:00Z,10\n\ny,4,2024-03-04T00:01:00Z,20\n"
    path = tmp_path / "t.csv"
    path.write_text("\ufeff" + text)  # a byte-order mark is tolerated
    expected = [TracePoint(T0, 10, 3), TracePoint(T0 + timedelta(minutes=1), 20, 4)]
    assert parse_trace(path) == expected
    assert parse_trace(str(path)) == expected
    assert parse_trace(io.StringIO(text)) == expected
    assert parse_trace(text.splitlines(keepends=True)) == expected
    with open(path, "rb") as fh:
        assert parse_trace(fh) == expected


HEADER = "timestamp,used_memory,connected_clients\n"


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("", 1, "empty trace"),
        ("\n\n", 1, "empty trace"),
        (HEADER, 1, "no data rows"),
        ("timestamp,used_memory\n2024-03-04T00:00:00Z,1\n", 1, "missing column connected_clients"),
        ("time,memory,clients\n1,1,1\n", 1, "missing columns timestamp, used_memory, connected_clients"),
        (HEADER + "2024-03-04T00:00:00Z,1,1\nyesterday,1,1\n", 3, "timestamp 'yesterday'"),
        (HEADER + "2024-03-04T00:00:00Z,12MB,1\n", 2, "used_memory '12MB' is not a number"),
        (HEADER + "2024-03-04T00:00:00Z,1,many\n", 2, "connected_clients 'many' is not a number"),
        (HEADER + "2024-03-04T00:00:00Z,-5,1\n", 2, "used_memory must not be negative"),
        (HEADER + "2024-03-04T00:00:00Z,1,-1\n", 2, "connected_clients must not be negative"),
        (HEADER + "2024-03-04T00:00:00Z,1.5,1\n", 2, "whole number"),
        (HEADER + "2024-03-04T00:00:00Z,nan,1\n", 2, "not a number"),
        (HEADER + "2024-03-04T00:00:00Z,1\n", 2, "expected 3 fields, got 2"),
        (HEADER + "2024-03-04T00:01:00Z,1,1\n2024-03-04T00:00:00Z,1,1\n", 3, "before the previous row"),
        (HEADER + "2024-03-04T00:00:00Z,1,1\n\n2024-03-04T00:00:00Z,1,1\n", 4, "duplicate timestamp"),
        (HEADER + "-5,1,1\n", 2, "negative epoch"),
    ],
)
def test_parse_trace_errors_name_the_line(text, line, words):
    with pytest.raises(TraceError) as info:
        parse_trace(io.StringIO(text))
    message = str(info.value)
    assert info.value.line == line
    assert message.startswith(f"line {line}: ")
    assert words in message
    assert "\n" not in message


def test_parse_trace_missing_file_is_a_trace_error(tmp_path):
    with pytest.raises(TraceError, match="cannot read trace") as info:
        parse_trace(tmp_path / "nope.csv")
    assert "\n" not in str(info.value)


# --- simulate: the replay ------------------------------------------------------------------


def test_constant_load_costs_the_prorated_price_and_changes_nothing():
    trace = points((60, 60, 30))  # 60 MiB on premium-1: 60%, between the up and down limits
    result = run(trace, "premium-1")
    assert result.plan_changes == []
    assert result.final_plan == P["premium-1"]
    assert result.cost == pytest.approx(30 / HOURS_PER_MONTH * 1.0)
    assert HOURS_PER_MONTH == 730
    assert result.seconds_over_threshold == 0 and result.seconds_over_capacity == 0


def test_overload_is_seen_as_data_drop_and_fixed_after_the_change_delay():
    # 30 MiB on premium-0, then at 10 min the load needs 80 MiB: over capacity.
    trace = points((10, 30, 10), (30, 80, 10))
    result = run(trace)
    first = result.plan_changes[0]
    assert first.from_plan == "premium-0"
    assert "data is being dropped" in first.reason and "evicted keys rose" in first.reason
    # Seen at the 10:00 sample, which is taken before the 10:00 engine run.
    assert T0 + timedelta(minutes=10) <= first.at <= T0 + timedelta(minutes=11)
    # Over capacity from 10:00 until the change lands change_delay after the decision.
    landed = first.at + RATES["change_delay"]
    assert result.seconds_over_capacity == pytest.approx((landed - (T0 + timedelta(minutes=10))).total_seconds())
    assert RANK[first.to_plan] >= RANK["premium-1"]


def test_connection_overload_is_seen_as_rejected_connections():
    trace = points((10, 20, 20), (20, 20, 70))  # 70 clients > premium-0's 40
    result = run(trace)
    assert "rejected connections rose" in result.plan_changes[0].reason


def test_changes_land_after_the_delay_and_no_decision_while_pending(monkeypatch):
    calls = []
    real_decide = simulation.decide

    def spy(**kwargs):
        decision = real_decide(**kwargs)
        calls.append((kwargs["now"], kwargs["current"].name, kwargs["last_change_at"], list(kwargs["samples"])))
        return decision

    monkeypatch.setattr(simulation, "decide", spy)
    delay = timedelta(minutes=5)
    trace = points((10, 30, 10), (40, 400, 10))  # needs several steps up
    result = run(trace, change_delay=delay)
    changes = result.plan_changes
    assert len(changes) >= 2
    # No decision while a change is pending.
    for change in changes:
        assert not [c for c in calls if change.at < c[0] < change.at + delay]
    # The plan in effect at any moment, from the decisions and the delay.
    timeline = [(T0, "premium-0")] + [(c.at + delay, c.to_plan) for c in changes]

    def plan_at(at):
        return [name for start, name in timeline if start <= at][-1]

    for now, current, last_change_at, samples in calls:
        assert current == plan_at(now)
        for sample in samples:
            assert sample.plan_name == plan_at(sample.at)  # old plan until the change lands
        if last_change_at is not None:
            assert (last_change_at, current) in timeline  # last_change_at is the landing time
    assert result.final_plan.name == changes[-1].to_plan


def test_result_json_has_exactly_the_documented_keys():
    result = run(points((10, 30, 10), (30, 80, 10)))
    data = result.to_json_dict()
    assert set(data) == {"plan_changes", "cost", "seconds_over_threshold", "seconds_over_capacity", "final_plan"}
    assert data["final_plan"] == result.final_plan.name
    change = data["plan_changes"][0]
    assert set(change) == {"at", "from", "to", "reason"}
    assert datetime.fromisoformat(change["at"]) == result.plan_changes[0].at
    json.dumps(data)


def test_threshold_and_capacity_time_are_integrated_against_the_plan_in_effect():
    # Stay on premium-1 (min = max): 90 MiB for 10 min is over the 80% threshold but under
    # capacity; 120 MiB for 5 min is over both.
    trace = points((10, 50, 10), (10, 90, 10), (5, 120, 10), (5, 50, 10))
    result = run(trace, "premium-1", min_plan="premium-1", max_plan="premium-1")
    assert result.plan_changes == []
    assert result.seconds_over_threshold == pytest.approx(15 * 60)
    assert result.seconds_over_capacity == pytest.approx(5 * 60)


def test_simulate_checks_its_arguments():
    with pytest.raises(ValueError, match="not in the plan ladder"):
        simulate(trace=points((5, 1, 1)), ladder=LADDER, start_plan=Plan.from_limits("x", 1, 1, 1), policy=POLICY,
                 min_plan=LADDER[0], max_plan=LADDER[-1], **RATES)


# --- The original rule and the hindsight floor --------------------------------------------


def test_original_rule_steps_one_plan_at_a_time_and_flaps():
    # 36 MiB: 72% of premium-0 but 36% of premium-1; bursts push premium-0 over 80%.
    segments = []
    for _ in range(6):
        segments += [(8, 36, 10), (3, 46, 10)]
    trace = points((5, 30, 10), *segments)
    original = baseline_original_rule(trace=trace, ladder=LADDER, start_plan=P["premium-1"], policy=POLICY,
                                      min_plan=P["mini"], max_plan=P["premium-9"], **RATES)
    assert original.plan_changes
    for change in original.plan_changes:
        assert abs(RANK[change.to_plan] - RANK[change.from_plan]) == 1
    assert flaps(original.plan_changes) >= 2
    engine = run(trace, "premium-1")
    assert flaps(engine.plan_changes) == 0
    assert len(engine.plan_changes) <= len(original.plan_changes) / 2


def test_hindsight_floor_is_the_cheapest_plan_holding_each_point():
    trace = points((60, 30, 10), (60, 200, 100))  # premium-0, then premium-2
    floor = hindsight_floor_cost(trace=trace, ladder=LADDER, min_plan=P["mini"], max_plan=P["premium-9"])
    assert floor == pytest.approx((15 + 60) / HOURS_PER_MONTH)
    capped = hindsight_floor_cost(trace=trace, ladder=LADDER, min_plan=P["mini"], max_plan=P["premium-1"])
    assert capped == pytest.approx((15 + 30) / HOURS_PER_MONTH)  # the max plan when nothing holds it
    # With the thresholds as the limits: 200 MiB needs premium-2 still (80%), 30 MiB premium-0.
    within = hindsight_floor_cost(trace=trace, ladder=LADDER, min_plan=P["mini"], max_plan=P["premium-9"],
                                  memory_limit_pct=80, connection_limit_pct=80)
    assert within == pytest.approx(floor)


def test_hindsight_floor_honours_a_scheduled_minimum_while_its_window_is_open():
    # Monday 2024-03-04 from midnight: a window 00:30-01:00 UTC asking for premium-2.
    trace = points((120, 30, 10))
    schedule = parse_schedule("daily 00:30-01:00 UTC premium-2")
    floor = hindsight_floor_cost(trace=trace, ladder=LADDER, min_plan=P["mini"], max_plan=P["premium-9"],
                                 memory_limit_pct=80, connection_limit_pct=80, schedules=[schedule])
    plain = hindsight_floor_cost(trace=trace, ladder=LADDER, min_plan=P["mini"], max_plan=P["premium-9"],
                                 memory_limit_pct=80, connection_limit_pct=80)
    assert plain == pytest.approx(2 * 15 / HOURS_PER_MONTH)  # 30 MiB: premium-0 for 2 h
    assert floor == pytest.approx((1.5 * 15 + 0.5 * 60) / HOURS_PER_MONTH)


def test_hindsight_floor_with_scale_in_switched_off_never_steps_down():
    trace = points((60, 30, 10), (60, 200, 100), (60, 30, 10))  # premium-0, premium-2, premium-0
    floor = hindsight_floor_cost(trace=trace, ladder=LADDER, min_plan=P["mini"], max_plan=P["premium-9"],
                                 scale_down=False)
    assert floor == pytest.approx((15 + 60 + 60) / HOURS_PER_MONTH)


def test_hindsight_floor_gives_a_cache_evicting_under_its_hit_rate_more_memory_than_it_had():
    rows, evicted, hits, misses = [], 0, 0, 0
    for minute in range(121):  # a full premium-0 cache; after minute 60, 70 % hits and evictions
        if minute > 60:
            evicted, hits, misses = evicted + 500, hits + 700, misses + 300
        elif minute:
            hits, misses = hits + 970, misses + 30
        rows.append(TracePoint(T0 + timedelta(minutes=minute), 49 * MIB, 10, evicted_keys=evicted,
                               keyspace_hits=hits, keyspace_misses=misses))
    common = dict(trace=rows, ladder=LADDER, min_plan=P["mini"], max_plan=P["premium-9"], memory_limit_pct=100,
                  connection_limit_pct=80)
    assert hindsight_floor_cost(**common) == pytest.approx(2 * 15 / HOURS_PER_MONTH)
    outgrown = hindsight_floor_cost(**common, cache_min_hit_rate=90, recorded_on=P["premium-0"])
    assert outgrown == pytest.approx((61 * 15 + 59 * 30) / 60 / HOURS_PER_MONTH)


# --- The example traces --------------------------------------------------------------------

# The queue traces make_traces.py writes (the acceptance bars on them, and on the cache
# traces, are in test_example_traces_judged.py).
EXAMPLES = ["daily_queue_cycle", "sudden_spike", "slow_leak", "connection_storm", "scheduled_batch", "flap_bait",
            "weekly_sawtooth"]
FLAP_WINDOW = POLICY.stabilisation_window


def flaps(changes: list[PlanChange], within: timedelta = FLAP_WINDOW) -> int:
    """Changes that reverse the previous one's direction within ``within``."""
    count = 0
    for a, b in zip(changes, changes[1:]):
        first = RANK[a.to_plan] - RANK[a.from_plan]
        second = RANK[b.to_plan] - RANK[b.from_plan]
        if first * second < 0 and b.at - a.at <= within:
            count += 1
    return count


def test_example_traces_are_small_and_valid():
    for name in EXAMPLES:
        path = TRACES / f"{name}.csv"
        assert path.stat().st_size < 2_000_000
        assert len(parse_trace(path)) > 100


def test_example_traces_are_reproducible(tmp_path):
    subprocess.run([sys.executable, str(TRACES / "make_traces.py"), str(tmp_path)], check=True, capture_output=True)
    for name in EXAMPLES:
        assert (tmp_path / f"{name}.csv").read_bytes() == (TRACES / f"{name}.csv").read_bytes(), name


def test_simulation_and_engine_need_no_django():
    code = "import sys, scaling.simulation; assert not [m for m in sys.modules if m.startswith('django')]"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)


# --- hostile traces: one line, and a cost that grows with the samples --------------------


@pytest.mark.parametrize(
    "row, words",
    [
        ("9999-12-31T23:59:59,1,1", "out of range"),
        ("0001-01-01T00:30:00+01:00,1,1", "out of range"),
        ("1000-01-01T00:00:00,1,1", "out of range"),
        ("99999999999,1,1", "out of range"),
        ("1e300,1,1", "out of range"),
        ("0,123456789012345678901234567890,1", "used_memory is too large"),
        ("0,1e30,1", "used_memory is too large"),
        ("0,1,2147483648", "connected_clients is too large"),
        ("0,1,1" + "0" * 400, "connected_clients is too large"),
    ],
)
def test_times_out_of_range_and_values_too_large_are_one_line_naming_the_row(row, words):
    with pytest.raises(TraceError) as info:
        parse_trace(f"timestamp,used_memory,connected_clients\n{row}\n")
    assert str(info.value).startswith("line 2: ") and words in str(info.value)
    assert "\n" not in str(info.value)


def test_a_trace_spanning_years_costs_engine_runs_in_proportion_to_its_rows_not_its_span(monkeypatch):
    calls = []
    real_decide = simulation.decide

    def counting(**kwargs):
        calls.append(kwargs["now"])
        return real_decide(**kwargs)

    monkeypatch.setattr(simulation, "decide", counting)
    years = 3
    end = T0 + timedelta(days=365 * years)
    trace = [TracePoint(T0, 30 * MIB, 10), TracePoint(T0 + timedelta(days=400), 30 * MIB, 10),
             TracePoint(end, 30 * MIB, 10)]

    result = run(trace, "premium-0", min_plan="premium-0")

    assert len(calls) < 2000  # not one per minute of three years (1.6 million)
    assert result.decisions == int((end - T0) / timedelta(minutes=1))  # every check is still counted
    assert result.plan_changes == [] and result.final_plan == P["premium-0"]
    hours = (end - T0).total_seconds() / 3600
    assert result.cost == pytest.approx(P["premium-0"].monthly_cost / HOURS_PER_MONTH * hours)


def test_a_long_quiet_stretch_replays_the_same_as_a_dense_trace_of_it():
    """Skipping a quiet stretch must not change what the engine decides around it."""
    quiet = timedelta(days=2)
    spike_at = T0 + quiet
    sparse = [TracePoint(T0, 30 * MIB, 10), TracePoint(spike_at, 80 * MIB, 10),
              TracePoint(spike_at + timedelta(hours=2), 10 * MIB, 10), TracePoint(spike_at + timedelta(days=1), 10 * MIB, 10)]
    dense = sorted({*sparse, *(TracePoint(T0 + timedelta(seconds=s), 30 * MIB, 10)
                               for s in range(0, int(quiet.total_seconds()), 30))}, key=lambda p: p.at)
    dense += [TracePoint(spike_at + timedelta(hours=2) + timedelta(seconds=s), 10 * MIB, 10)
              for s in range(30, 86400 - 7200, 30)]
    dense = sorted({p.at: p for p in dense}.values(), key=lambda p: p.at)

    a, b = run(sparse), run(dense)

    assert a.plan_changes == b.plan_changes and a.plan_changes
    assert a.final_plan == b.final_plan
    assert a.cost == pytest.approx(b.cost)
    assert a.seconds_over_capacity == pytest.approx(b.seconds_over_capacity)
    assert a.decisions == b.decisions


def test_a_trace_path_with_a_nul_byte_is_a_trace_error():
    with pytest.raises(TraceError) as info:
        parse_trace("trace\x00.csv")
    assert "not a usable file name" in str(info.value)


def test_jumping_over_quiet_stretches_stops_at_a_schedules_edges():
    """The replay skips quiet stretches; with a schedule it must still run the engine before
    each window's raise and close: the same changes as a replay that skips nothing."""
    from scaling import simulation as sim
    from scaling.schedules import parse_schedule

    start = datetime(2024, 3, 4, tzinfo=timezone.utc)
    # Two flat rows a week apart: the whole week is one quiet stretch.
    trace = [sim.TracePoint(start, 10 * MIB, 5), sim.TracePoint(start + timedelta(days=7), 10 * MIB, 5)]
    policy = Policy(80, 80, timedelta(minutes=1), schedules=(parse_schedule("wed 12:00-13:00 UTC premium-2"),))
    plans = {p.name: p for p in HEROKU_KVS}
    common = dict(trace=trace, plans=sorted(HEROKU_KVS, key=lambda p: p.memory_bytes), start_plan=plans["mini"],
                  memory_threshold=80, connection_threshold=80, metric_rate=timedelta(seconds=30),
                  scaling_interval=timedelta(minutes=1), change_delay=timedelta(seconds=60),
                  keep=policy.lookback + timedelta(seconds=30))

    def engine(current, samples, last_change_at, _last, now):
        d = sim.decide(current=current, ladder=HEROKU_KVS, min_plan=plans["mini"], max_plan=plans["premium-9"],
                       samples=samples, policy=policy, last_change_at=last_change_at, now=now)
        return d.action, d.target, d.reason

    edges = lambda now: sim.next_schedule_edge(policy.schedules, now, policy.schedule_raise_lead)  # noqa: E731
    skipping = sim._replay(engine, next_clock_edge=edges, **common)
    exact = sim._replay(engine, skip_quiet=False, **common)
    changes = [(c.at, c.to_plan) for c in skipping.plan_changes]
    assert changes == [(c.at, c.to_plan) for c in exact.plan_changes]
    assert changes[0] == (datetime(2024, 3, 6, 11, 47, tzinfo=timezone.utc), "premium-2")
    assert changes[1][1] == "mini" and changes[1][0] >= datetime(2024, 3, 6, 13, tzinfo=timezone.utc)
    assert skipping.decisions == exact.decisions


def test_window_peaks_follow_a_window_sliding_forward_as_the_stored_samples_would_give_them():
    from scaling.engine import Sample

    def sample(minute, mem, conn, ok=True):
        return Sample(at=T0 + timedelta(minutes=minute), plan_name="premium-0", used_memory=mem,
                      connected_clients=conn, evicted_keys=0, rejected_connections=0, ok=ok)

    peaks = simulation.WindowPeaks(lambda now: (now - timedelta(minutes=10), now - timedelta(minutes=5)))
    history = [sample(0, 5, 1), sample(1, 9, 2), sample(2, 3, 7), sample(3, 99, 99, ok=False), sample(6, 4, 1),
               sample(8, 2, 1)]
    at = lambda minute: peaks.at(T0 + timedelta(minutes=minute), [s for s in history if s.at <= T0 + timedelta(minutes=minute)])
    assert at(4) == (None, None)  # minutes -6..-1: nothing stored then
    assert at(7) == (9, 7)  # -3..2: the samples at 0, 1 and 2
    assert at(11) == (9, 7)  # 1..6 (the failed read at 3 does not count)
    assert at(12) == (4, 7)  # 2..7
    assert at(13) == (4, 1)  # 3..8
    assert at(20) == (None, None)  # 10..15: nothing stored then
