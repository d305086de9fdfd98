"""`simulate` with the workload and scale-in flags and the optional counter columns of
DESIGN section 9: the example cache traces through a real `manage.py simulate` process,
and the replay of trace counters through :mod:`scaling.simulation`."""

import json
import os
import sys
from dataclasses import replace
from datetime import timedelta

import pytest

import scaling.simulation as simulation
from scaling.engine import Policy
from scaling.simulation import TraceError, parse_trace
from tests.helpers import ROOT, run
from tests.scaling.ladders import HEROKU_KVS

TRACES = ROOT / "examples" / "traces"
P = {p.name: p for p in HEROKU_KVS}


def _simulate(*args):
    env = dict(os.environ, DEBUG="true", DJANGO_SETTINGS_MODULE="autoscaler.settings",
               DATABASE_URL="sqlite:////nonexistent-dir/x.sqlite3")
    return run([sys.executable, "manage.py", "simulate", *args], env=env)


def _json(*args):
    result = _simulate(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


START = ("--plan", "heroku-redis:premium-0", "--max-plan", "heroku-redis:premium-5")


@pytest.mark.slow
def test_a_cache_with_a_good_hit_rate_stays_on_its_plan_while_it_evicts():
    report = _json(str(TRACES / "cache_good_hit_rate.csv"), *START, "--workload", "cache")
    assert report["plan_changes"] == [] and report["final_plan"] == "heroku-redis:premium-0"
    assert report["seconds_over_capacity"] == 0 and report["seconds_over_threshold"] == 0


@pytest.mark.slow
def test_the_same_trace_replayed_as_a_queue_leaves_premium_0_for_its_full_memory():
    report = _json(str(TRACES / "cache_good_hit_rate.csv"), *START)
    assert report["plan_changes"][0]["to"] != "heroku-redis:premium-0"
    assert report["final_plan"] != "heroku-redis:premium-0"


@pytest.mark.slow
def test_a_cache_whose_working_set_outgrows_it_goes_up_once_on_its_hit_rate():
    report = _json(str(TRACES / "cache_outgrown.csv"), *START, "--workload", "cache")
    [change] = report["plan_changes"]
    assert (change["from"], change["to"]) == ("heroku-redis:premium-0", "heroku-redis:premium-1")
    assert change["at"] > "2024-03-04T03:00:00Z" and "cache hit rate" in change["reason"]
    assert report["final_plan"] == "heroku-redis:premium-1"


@pytest.mark.slow
def test_a_stricter_min_hit_rate_moves_the_good_cache_up_too():
    report = _json(str(TRACES / "cache_good_hit_rate.csv"), *START, "--workload", "cache", "--min-hit-rate", "99")
    assert report["plan_changes"] and "minimum 99%" in report["plan_changes"][0]["reason"]


@pytest.mark.slow
def test_no_scale_down_only_ever_moves_up():
    free = _json(str(TRACES / "sudden_spike.csv"), *START)
    protected = _json(str(TRACES / "sudden_spike.csv"), *START, "--no-scale-down")
    ladder = [p.name for p in sorted(HEROKU_KVS, key=lambda p: p.memory_bytes)]

    def downs(report):
        return [c for c in report["plan_changes"]
                if ladder.index(c["to"].split(":")[1]) < ladder.index(c["from"].split(":")[1])]

    assert downs(free) and not downs(protected)
    assert protected["plan_changes"] and protected["final_plan"] != "heroku-redis:premium-0"
    assert protected["seconds_over_capacity"] <= free["seconds_over_capacity"]


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (("--workload", "database"), "invalid choice: 'database'"),
    (("--min-hit-rate", "0"), "--min-hit-rate: must be from 1 to 100, not 0"),
])
def test_bad_workload_flags_are_one_line_and_exit_non_zero(args, message):
    result = _simulate(str(TRACES / "cache_good_hit_rate.csv"), "--plan", "premium-0", *args)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


def test_counter_columns_are_parsed_when_present_and_none_when_absent():
    [with_counters] = parse_trace("timestamp,used_memory,connected_clients,evicted_keys,keyspace_hits,keyspace_misses,"
                                  "rejected_connections\n0,10,2,5,90,10,3\n")
    assert (with_counters.evicted_keys, with_counters.keyspace_hits, with_counters.keyspace_misses,
            with_counters.rejected_connections) == (5, 90, 10, 3)
    [plain] = parse_trace("timestamp,used_memory,connected_clients\n0,10,2\n")
    assert plain.keyspace_hits is None and plain.evicted_keys is None


@pytest.mark.parametrize("cell, words", [("-1", "must not be negative"), ("lots", "not a number"), ("1.5", "whole number")])
def test_a_bad_counter_names_the_line_and_the_column(cell, words):
    with pytest.raises(TraceError) as caught:
        parse_trace(f"timestamp,used_memory,connected_clients,keyspace_hits\n0,10,2,5\n60,10,2,{cell}\n")
    assert str(caught.value).startswith("line 3: keyspace_hits") and words in str(caught.value)


def _sparse_cache_trace(hit_pct_after):
    """Hourly rows (long quiet stretches the replay jumps over), a cache full on premium-0,
    its hit rate changing at 06:00."""
    rows, hits, misses, evicted = [], 0, 0, 0
    for hour in range(13):
        pct = 97 if hour < 6 else hit_pct_after
        hits, misses, evicted = hits + 60 * 50 * pct, misses + 60 * 50 * (100 - pct), evicted + 6000
        rows.append(f"{hour * 3600},{P['premium-0'].memory_bytes},10,{evicted},{hits},{misses}")
    return parse_trace("timestamp,used_memory,connected_clients,evicted_keys,keyspace_hits,keyspace_misses\n"
                       + "\n".join(rows) + "\n")


@pytest.mark.parametrize("hit_pct_after", [97, 60])
def test_jumping_over_quiet_stretches_decides_as_replaying_every_minute(hit_pct_after):
    trace = _sparse_cache_trace(hit_pct_after)
    policy = Policy(80, 80, timedelta(minutes=1), workload="cache")
    plans = simulation.sort_ladder(HEROKU_KVS)

    def replay(skip_quiet):
        def engine(current, samples, last_change_at, _last_decision_at, now):
            d = simulation.decide(current=current, ladder=plans, min_plan=plans[0], max_plan=plans[-1],
                                  samples=samples, policy=policy, last_change_at=last_change_at, now=now)
            return d.action, d.target, d.reason
        return simulation._replay(
            engine, trace=trace, plans=plans, start_plan=P["premium-0"], memory_threshold=80,
            connection_threshold=80, metric_rate=timedelta(seconds=30), scaling_interval=timedelta(minutes=1),
            change_delay=timedelta(seconds=60), keep=policy.lookback + timedelta(seconds=30), skip_quiet=skip_quiet)

    fast, slow = replay(True), replay(False)
    assert fast.plan_changes == slow.plan_changes and fast.final_plan == slow.final_plan
    assert fast.decisions == slow.decisions
    assert bool(fast.plan_changes) is (hit_pct_after < 90)


def _cache_trace_at(memory_share, hit_pct, hours=2):
    """A cache on premium-0 using ``memory_share`` of it (Redis often holds under its
    maxmemory), evicting 200 keys a minute, ``hit_pct`` of its lookups hitting."""
    rows, hits, misses, evicted = [], 0, 0, 0
    for minute in range(hours * 60 + 1):
        hits, misses, evicted = hits + 50 * hit_pct, misses + 50 * (100 - hit_pct), evicted + 200
        rows.append(f"{minute * 60},{int(P['premium-0'].memory_bytes * memory_share)},10,{evicted},{hits},{misses}")
    return parse_trace("timestamp,used_memory,connected_clients,evicted_keys,keyspace_hits,keyspace_misses\n"
                       + "\n".join(rows) + "\n")


@pytest.mark.parametrize("memory_share", [1.0, 0.9])
def test_a_recorded_cache_under_its_limit_still_goes_up_once_on_a_poor_hit_rate(memory_share):
    policy = Policy(80, 80, timedelta(minutes=1), workload="cache")
    plans = simulation.sort_ladder(HEROKU_KVS)
    result = simulation.simulate(
        trace=_cache_trace_at(memory_share, 70), ladder=plans, start_plan=P["premium-0"], policy=policy,
        min_plan=plans[0], max_plan=P["premium-5"], metric_rate=timedelta(seconds=30),
        scaling_interval=timedelta(minutes=1), change_delay=timedelta(seconds=60))
    [change] = result.plan_changes
    assert (change.from_plan, change.to_plan) == ("premium-0", "premium-1") and "cache hit rate 70.0%" in change.reason
    assert result.final_plan.name == "premium-1"
