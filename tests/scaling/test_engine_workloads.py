"""The engine's workload and scale-in rules (DESIGN section 9): caches judged by their hit
rate, queues by every eviction; ``--no-scale-down`` only ever moves up. Pure: no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from scaling.engine import HitRate, Policy, Sample
from tests.scaling.test_engine import NOW, P, POLICY, Case, assert_decides, ramp, run, series

CACHE = replace(POLICY, workload="cache")
CACHE_95 = replace(POLICY, workload="cache", min_hit_rate=95)
NO_DOWN = replace(POLICY, scale_down=False)


def with_lookups(samples: list[Sample], hit_pct, per_min: int = 6000) -> list[Sample]:
    """The samples with cumulative ``keyspace_hits``/``keyspace_misses`` counters growing by
    ``per_min`` lookups a minute, ``hit_pct`` % of them hits (a number, or a function of the
    sample's age in minutes)."""
    out, hits, misses = [], 10_000_000, 1_000_000
    previous = None
    for sample in samples:
        if previous is not None:
            age = (NOW - sample.at).total_seconds() / 60
            pct = hit_pct(age) if callable(hit_pct) else hit_pct
            lookups = per_min * (sample.at - previous).total_seconds() / 60
            hits += int(lookups * pct / 100)
            misses += int(lookups * (100 - pct) / 100)
        out.append(replace(sample, keyspace_hits=hits, keyspace_misses=misses))
        previous = sample.at
    return out


def evicting(per_min: int = 500):
    """An eviction counter rising ``per_min`` keys a minute (a function of age)."""
    return lambda age: 1_000_000 - per_min * age


FULL_CACHE = dict(mem=99.5, conn=20, evicted=evicting())

CASES = [
    # --- A cache full and evicting is normal while the hit rate holds ------------------
    Case(
        "cache: full and evicting with a 97% hit rate -> stays (memory full is normal)",
        P["premium-0"], with_lookups(series(P["premium-0"], 20, **FULL_CACHE), 97),
        "stay", policy=CACHE, rule="peak_over_threshold",
    ),
    Case(
        "queue: the same load is data dropped -> up at once",
        P["premium-0"], with_lookups(series(P["premium-0"], 20, **FULL_CACHE), 97),
        "up", "premium-2", policy=POLICY, breaching=True, data_drop=True, rule="data_drop",
    ),
    # --- The working set outgrew the plan: hit rate under the minimum while evicting ---
    Case(
        "cache: evicting with a 60% hit rate -> up to a plan of twice its memory",
        P["premium-0"], with_lookups(series(P["premium-0"], 20, **FULL_CACHE), 60),
        "up", "premium-1", policy=CACHE, breaching=True, rule="cache_hit_rate_low",
        fields={"metrics": ("memory",), "hit_rate.pct": 60.0, "hit_rate.min_pct": 90, "data_drop": False},
    ),
    Case(
        "cache: a 92% hit rate is under a min-hit-rate of 95 -> up",
        P["premium-0"], with_lookups(series(P["premium-0"], 20, **FULL_CACHE), 92),
        "up", "premium-1", policy=CACHE_95, breaching=True, rule="cache_hit_rate_low",
    ),
    Case(
        "cache: a low hit rate without evictions (warming up) -> no scale-up",
        P["premium-0"], with_lookups(series(P["premium-0"], 20, mem=60, conn=20), 40),
        "stay", policy=CACHE, rule="lower_plan_too_small",
    ),
    Case(
        "cache: full memory without an eviction counter and a 60% hit rate -> up",
        P["premium-0"], with_lookups([replace(x, evicted_keys=None) for x in series(P["premium-0"], 20, mem=99.5)], 60),
        "up", "premium-1", policy=CACHE, breaching=True, rule="cache_hit_rate_low",
    ),
    Case(
        "cache: a low hit rate at the max plan -> stay, cannot scale further",
        P["premium-0"], with_lookups(series(P["premium-0"], 20, **FULL_CACHE), 50),
        "stay", policy=CACHE, max_plan=P["premium-0"], breaching=True, cannot_scale_further=True,
        rule="cache_hit_rate_low",
    ),
    # --- Memory % alone never scales a cache up -----------------------------------------
    Case(
        "cache: memory averaging 90% without evictions -> no breach",
        P["premium-0"], with_lookups(series(P["premium-0"], 20, mem=90, conn=20), 99),
        "stay", policy=CACHE, rule="peak_over_threshold",
    ),
    Case(
        "queue: memory averaging 90% -> breach",
        P["premium-0"], series(P["premium-0"], 20, mem=90, conn=20),
        "up", "premium-1", policy=POLICY, breaching=True, rule="breach",
    ),
    Case(
        "cache: memory climbing steeply towards its limit -> no early scale-up",
        P["premium-0"], with_lookups(series(P["premium-0"], 10, mem=ramp(40, 78, 10), conn=20), 99),
        "stay", policy=CACHE, rule="window_not_observed",
    ),
    # --- Connections scale a cache as they scale a queue --------------------------------
    Case(
        "cache: connections averaging 90% -> up on connections only (memory does not size it)",
        P["premium-0"], with_lookups(series(P["premium-0"], 20, conn=90, **{"mem": 99.5, "evicted": evicting()}), 97),
        "up", "premium-1", policy=CACHE, breaching=True, rule="breach",
        fields={"metrics": ("connections",), "fit.memory_pct": None},
    ),
    Case(
        "cache: rejected connections rising -> up on connections, sized by their demand",
        P["premium-0"],
        with_lookups(series(P["premium-0"], 20, mem=99.5, conn=100, evicted=evicting(),
                            rejected=lambda age: 500 - 10 * age), 97),
        "up", "premium-1", policy=CACHE, breaching=True, data_drop=True, rule="connections_refused",
        fields={"metrics": ("connections",), "dropped.evicted_keys_rise": 0, "dropped.memory_full_pct": None,
                "dropped.connection_demand": 45},
    ),
    # --- Down: the queue's rules, evictions allowed only while the hit rate holds -------
    Case(
        "cache: memory low, evicting expired-key pressure, hit rate 97% -> down",
        P["premium-2"], with_lookups(series(P["premium-2"], 20, mem=8, conn=5, evicted=evicting(5)), 97),
        "down", "premium-0", policy=CACHE, rule="scale_down",
    ),
    Case(
        "queue: the same evictions hold it up",
        P["premium-2"], with_lookups(series(P["premium-2"], 20, mem=8, conn=5, evicted=evicting(5)), 97),
        "up", "premium-3", policy=POLICY, breaching=True, data_drop=True, rule="data_drop",
    ),
    Case(
        "cache: evictions at a 50% hit rate earlier in the stabilisation window -> no down",
        P["premium-2"],
        with_lookups(series(P["premium-2"], 20, mem=8, conn=5,
                            evicted=lambda age: 1000 if age < 6 else 1000 + 50 * (age - 6) * -1 + 50 * 14),
                     lambda age: 97 if age < 6 else 50),
        "stay", policy=CACHE, rule="data_dropped_in_window",
        fields={"hit_rate.holds": False},
    ),
    # --- Scale-in protection --------------------------------------------------------------
    Case(
        "no scale-down: a quiet queue on a big plan -> stays",
        P["premium-2"], series(P["premium-2"], 30, mem=5, conn=5),
        "stay", policy=NO_DOWN, rule="scale_down_disabled",
    ),
    Case(
        "no scale-down: a breach still goes up",
        P["premium-0"], series(P["premium-0"], 20, mem=90, conn=20),
        "up", "premium-1", policy=NO_DOWN, breaching=True, rule="breach",
    ),
    Case(
        "no scale-down: a plan above the maximum is kept, not brought down",
        P["premium-3"], series(P["premium-3"], 30, mem=5, conn=5),
        "stay", policy=NO_DOWN, max_plan=P["premium-1"], rule="scale_down_disabled",
    ),
    Case(
        "no scale-down: a quiet cache -> stays",
        P["premium-2"], with_lookups(series(P["premium-2"], 30, mem=8, conn=5), 99),
        "stay", policy=replace(CACHE, scale_down=False), rule="scale_down_disabled",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_workload_rule(case: Case):
    assert_decides(case, run(case), tolerance=0.5)


def test_a_low_hit_rate_reason_quotes_the_hit_rate_the_minimum_and_the_evictions():
    d = run(Case("", P["premium-0"], with_lookups(series(P["premium-0"], 20, **FULL_CACHE), 60), "up", policy=CACHE))
    assert "cache hit rate 60.0%" in d.reason
    assert "minimum 90%" in d.reason
    assert "keys were evicted" in d.reason and "premium-1 keeps" in d.reason


def test_scale_down_disabled_says_so():
    d = run(Case("", P["premium-2"], series(P["premium-2"], 30, mem=5, conn=5), "stay", policy=NO_DOWN))
    assert "scale-down is switched off" in d.reason


def test_hit_rate_counts_rises_only_and_survives_a_restart():
    at = NOW - timedelta(minutes=3)
    samples = [
        Sample(at=at + timedelta(minutes=i), plan_name="x", used_memory=1, connected_clients=1, evicted_keys=0,
               rejected_connections=0, keyspace_hits=h, keyspace_misses=m)
        for i, (h, m) in enumerate([(100, 10), (190, 20), (5, 1), (95, 11)])  # restart before the third
    ]
    rate = HitRate.over(samples, 90)
    assert (rate.hits, rate.misses) == (180, 20)
    assert rate.pct == pytest.approx(90.0) and rate.holds
    assert HitRate(hits=0, misses=0, evicted_keys=5, min_pct=90).pct is None


@pytest.mark.parametrize("kwargs", [{"workload": "database"}, {"min_hit_rate": 0}, {"min_hit_rate": 101}])
def test_policy_rejects_a_bad_workload_or_hit_rate(kwargs):
    with pytest.raises(ValueError):
        Policy(80, 80, timedelta(minutes=1), **kwargs)


def test_a_full_cache_without_an_eviction_counter_says_memory_was_full():
    samples = with_lookups([replace(x, evicted_keys=None) for x in series(P["premium-0"], 20, mem=99.5)], 60)
    d = run(Case("", P["premium-0"], samples, "up", policy=CACHE))
    assert "while memory was full (99.5% of the limit)" in d.reason
