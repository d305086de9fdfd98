"""One way into the engine (scaling/services/engine_input.py): the live check and
`simulate` give the engine the same policy, ladder and samples for the same settings."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from logs.models import MetricLog
from scaling.models import RedisInstance, RedisPlan
from scaling.services.collection import SERVER_FULL
from scaling.services.engine_input import (
    METRIC_RATES,
    SCALING_RATES,
    engine_ladder,
    engine_ladder_named,
    engine_plans_by_name,
    engine_policy,
    engine_samples,
    plan_range_position,
)
from scaling.services.plans import plans_load
from scaling.services.simulate import trace_simulate
from tests.factories import make_instance

pytestmark = pytest.mark.django_db
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=dt_timezone.utc)


def test_simulate_gives_the_engine_the_policy_of_an_instance_with_the_same_settings(plans):
    instance = make_instance(memory_threshold=70, connection_threshold=60, metric_rate=60, scaling_rate=300)
    report = trace_simulate(trace_path=ROOT / "examples" / "traces" / "sudden_spike.csv", plan="premium-0",
                            memory_threshold=70, connection_threshold=60, metric_rate="1m", scaling_rate="5m")
    assert report.policy == engine_policy(instance)
    assert report.policy.scaling_interval == timedelta(minutes=5) and report.policy.memory_threshold == 70


def test_simulate_and_the_check_see_the_same_ladder(plans):
    for name in ("heroku-redis:premium-0", "heroku-redis:private-7", "rediscloud:100"):
        assert set(engine_ladder(plans[name])) == set(engine_ladder_named(name, engine_plans_by_name())), name


def test_the_rates_are_the_instance_choices_and_nothing_else():
    assert METRIC_RATES == {"30s": 30, "1m": 60, "5m": 300}
    assert SCALING_RATES == {"1m": 60, "5m": 300, "10m": 600}
    assert set(METRIC_RATES.values()) == set(RedisInstance.MetricRate.values)


def test_new_plan_data_reaches_the_next_check_at_once(plans, tmp_path):
    plan = plans["heroku-redis:premium-0"]
    before = {p.name: p.monthly_cost for p in engine_ladder(plan)}
    csv = tmp_path / "plans.csv"
    csv.write_text("service_name,plan_name,mem_limit,conn_limit,cost\nheroku-redis,heroku-redis:premium-0,50,40,16.5\n")
    plans_load(path=csv)
    after = {p.name: p.monthly_cost for p in engine_ladder(RedisPlan.objects.get(plan_name=plan.plan_name))}
    assert before["heroku-redis:premium-0"] != 16.5 and after["heroku-redis:premium-0"] == 16.5


def test_a_read_refused_at_maxclients_is_a_sample_at_the_limit_with_one_more_rejection(plans):
    plan = plans["heroku-redis:premium-0"]

    def log(seconds, **fields):
        return MetricLog(collected_at=T0 + timedelta(seconds=seconds), plan=plan, **fields)

    full = dict(error_kind=SERVER_FULL, error="max number of clients reached")
    samples = engine_samples([
        log(0, **full),  # nothing known yet: a failed read
        log(30, used_memory=1000, connected_clients=12, evicted_keys=0, rejected_connections=4),
        log(60, **full),
        log(90, **full),
    ])
    assert [s.ok for s in samples] == [False, True, True, True]
    assert [(s.connected_clients, s.rejected_connections, s.used_memory) for s in samples[2:]] == [
        (plan.conn_limit, 5, 1000), (plan.conn_limit, 6, 1000)]


def test_a_plan_outside_the_range_is_placed_in_the_engine_ladder_order(plans):
    low, high = plans["heroku-redis:premium-1"], plans["heroku-redis:premium-3"]
    assert plan_range_position(plan=plans["heroku-redis:premium-0"], min_plan=low, max_plan=high) == "below"
    assert plan_range_position(plan=plans["heroku-redis:premium-2"], min_plan=low, max_plan=high) is None
    assert plan_range_position(plan=plans["heroku-redis:premium-5"], min_plan=low, max_plan=high) == "above"
    assert plan_range_position(plan=high, min_plan=low, max_plan=high) is None



def test_an_instances_schedules_and_lead_reach_the_engine(plans):
    instance = make_instance(schedules=["mon-fri 08:00-18:00 Europe/Berlin heroku-redis:premium-2"],
                             schedule_lead_minutes=30)
    policy = engine_policy(instance)
    assert [s.spec for s in policy.schedules] == ["mon-fri 08:00-18:00 Europe/Berlin heroku-redis:premium-2"]
    assert policy.schedule_lead == timedelta(minutes=30)
    assert engine_policy(make_instance(name="plain")).schedules == ()


@pytest.mark.parametrize(
    "schedules, message",
    [
        (["mon-fri 08:00-18:00 Mars/Base heroku-redis:premium-2"], "time zone 'Mars/Base'"),
        (["daily 08:00-18:00 UTC rediscloud:100"], "is not a plan of heroku-redis"),
        (["daily 08:00-18:00 UTC heroku-redis:premium-99"], "is not a known plan"),
        ("daily 08:00-18:00 UTC heroku-redis:premium-2", "a list of"),
    ],
)
def test_an_instance_with_a_bad_schedule_does_not_validate(plans, schedules, message):
    from django.core.exceptions import ValidationError

    instance = make_instance()
    instance.schedules = schedules
    with pytest.raises(ValidationError, match=message):
        instance.full_clean()


def test_the_engine_policy_carries_the_workload_min_hit_rate_and_scale_in_protection():
    from scaling.models import RedisInstance
    from scaling.services.engine_input import engine_policy

    policy = engine_policy(RedisInstance(memory_threshold=80, connection_threshold=70, scaling_rate=300,
                                         workload="cache", min_hit_rate=85, scale_down_enabled=False))
    assert (policy.workload, policy.min_hit_rate, policy.scale_down) == ("cache", 85, False)
    assert engine_policy(RedisInstance(memory_threshold=80, connection_threshold=70, scaling_rate=60)).workload == "queue"


@pytest.mark.django_db
def test_stored_hit_and_miss_counters_reach_the_engine(plans):
    from scaling.services.engine_input import engine_samples

    instance = make_instance(name="cache", workload="cache")
    at = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)
    MetricLog.objects.create(instance=instance, plan=instance.current_plan, slot=at, collected_at=at,
                             used_memory=10, connected_clients=2, keyspace_hits=900, keyspace_misses=100)
    [sample] = engine_samples(MetricLog.objects.filter(instance=instance).select_related("plan"))
    assert (sample.keyspace_hits, sample.keyspace_misses) == (900, 100)


def test_the_check_gives_the_engine_the_peaks_of_the_samples_stored_a_day_ago(plans):
    from scaling.services.engine_input import instance_engine_period_ago

    instance = make_instance()
    plan = plans["heroku-redis:premium-0"]
    now = T0 + timedelta(days=1)
    policy = engine_policy(instance)
    for slot, (minutes_after, memory, clients, error) in enumerate([
        (-20, 1_000, 5, ""),  # before the down window a day ago
        (-10, 2_000, 6, ""),  # in it
        (60, 7_000, 3, ""),  # in the next 8 h a day ago
        (120, None, None, "timeout"),  # a failed read
        (9 * 60, 9_000, 9, ""),  # after them
    ]):
        at = T0 + timedelta(minutes=minutes_after)
        MetricLog.objects.create(instance=instance, slot=at, collected_at=at, plan=plan, used_memory=memory,
                                 connected_clients=clients, error=error)
    ago = instance_engine_period_ago(instance, policy=policy, now=now)
    assert (ago.since, ago.until) == (T0, T0 + timedelta(hours=8))
    assert (ago.peak_memory, ago.peak_connections, ago.then_peak_memory, ago.then_peak_connections) == (7_000, 3, 2_000, 6)
    assert instance_engine_period_ago(instance, policy=policy, now=now + timedelta(days=2)).measured is False
