from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from scaling.models import RedisInstance
from scaling.services.dispatch import due_work_dispatch, next_slot
from tests.factories import make_instance

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt_timezone.utc)


def _dispatch(now):
    samples, checks = [], []
    due_work_dispatch(now=now, enqueue_samples=samples.extend, enqueue_check=lambda pk, slot: checks.append((pk, slot)))
    return samples, checks


@pytest.mark.parametrize("rate", [30, 60, 300])
def test_the_next_slot_is_on_the_instances_grid_and_strictly_later(rate):
    first = next_slot(instance_id=42, rate_seconds=rate, after=T0)
    assert T0 < first <= T0 + timedelta(seconds=rate)
    assert next_slot(instance_id=42, rate_seconds=rate, after=first) == first + timedelta(seconds=rate)


def test_instances_spread_their_slots_over_the_interval():
    slots = {next_slot(instance_id=pk, rate_seconds=60, after=T0) for pk in range(1, 61)}
    assert len(slots) > 30


def test_a_new_instance_is_sampled_at_the_next_tick(plans):
    instance = make_instance(next_sample_at=None)
    samples, _ = _dispatch(T0)
    assert [pk for pk, _ in samples] == [instance.pk]


def test_a_due_slot_is_enqueued_once_even_when_the_dispatcher_runs_twice(plans):
    instance = make_instance(next_sample_at=T0 - timedelta(seconds=1), next_check_at=T0 - timedelta(seconds=1))
    first_samples, first_checks = _dispatch(T0)
    second_samples, second_checks = _dispatch(T0)
    assert first_samples == [(instance.pk, T0 - timedelta(seconds=1))] and second_samples == []
    assert len(first_checks) == 1 and second_checks == []
    instance.refresh_from_db()
    assert T0 < instance.next_sample_at <= T0 + timedelta(seconds=instance.metric_rate)


def test_each_instance_is_sampled_at_its_own_metric_rate_over_an_hour(plans):
    rates = {"fast": 30, "minute": 60, "slow": 300}
    instances = {name: make_instance(name=name, metric_rate=rate, next_sample_at=T0) for name, rate in rates.items()}
    counts = {instance.pk: 0 for instance in instances.values()}
    for tick in range(0, 3600, 10):
        samples, _ = _dispatch(T0 + timedelta(seconds=tick))
        for pk, _slot in samples:
            counts[pk] += 1
    for name, rate in rates.items():
        assert counts[instances[name].pk] in (3600 // rate, 3600 // rate + 1), name


def test_a_dispatcher_that_fell_behind_takes_one_sample_not_a_burst(plans):
    instance = make_instance(metric_rate=30, next_sample_at=T0 - timedelta(minutes=10))
    samples, _ = _dispatch(T0)
    assert len(samples) == 1
    instance.refresh_from_db()
    assert instance.next_sample_at > T0


def test_scaling_checks_are_not_dispatched_for_instances_with_scaling_off(plans):
    make_instance(scaling_enabled=False, next_check_at=T0 - timedelta(seconds=1))
    _, checks = _dispatch(T0)
    assert checks == []


def test_a_large_due_set_is_enqueued_in_batches(plans):
    for n in range(60):
        make_instance(name=f"i{n}", next_sample_at=T0)
    batches = []
    due_work_dispatch(now=T0, enqueue_samples=batches.append, enqueue_check=lambda *a: None)
    assert sum(len(batch) for batch in batches) == 60
    assert max(len(batch) for batch in batches) <= 25
    assert RedisInstance.objects.filter(next_sample_at__lte=T0).count() == 0


def test_the_database_claim_moves_each_instance_to_the_same_next_slot_as_the_python_grid(plans):
    instances = [make_instance(name=f"g{n}", metric_rate=rate, next_sample_at=T0 - timedelta(seconds=n))
                 for n, rate in enumerate([30, 60, 300, 30, 60, 300, 30])]
    now = T0 + timedelta(seconds=17.5)
    _dispatch(now)
    for instance in instances:
        instance.refresh_from_db()
        assert instance.next_sample_at == next_slot(instance_id=instance.pk, rate_seconds=instance.metric_rate, after=now)


def test_instances_whose_last_reads_failed_are_batched_apart_so_slow_servers_hold_few_worker_threads(plans):
    # 50 healthy and 10 failing (slow, down, ...) instances due together: the failing ones
    # share their own batch instead of one each in every healthy batch, so at most one
    # worker thread waits out their deadline and the healthy batches finish at once.
    failing = set()
    for n in range(60):
        instance = make_instance(name=f"i{n}", next_sample_at=T0, consecutive_failures=2 if n % 6 == 0 else 0)
        if n % 6 == 0:
            failing.add(instance.pk)
    batches = []

    due_work_dispatch(now=T0, enqueue_samples=batches.append, enqueue_check=lambda *a: None)

    assert sum(len(batch) for batch in batches) == 60
    mixed = [batch for batch in batches if {pk for pk, _ in batch} & failing and {pk for pk, _ in batch} - failing]
    assert not mixed
    assert [len({pk for pk, _ in batch} & failing) for batch in batches] == [0, 0, 10]
