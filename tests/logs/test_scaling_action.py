"""A plan change's life on its model: pending -> succeeded / failed, each transition one
compare-and-set update stamped when it happens; of two workers only one completes it."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.db import IntegrityError, transaction

from logs.models import ScalingAction
from tests.factories import make_instance

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def change(plans):
    instance = make_instance(name="queue", plan="heroku-redis:premium-0", min_plan="heroku-redis:premium-0",
                             max_plan="heroku-redis:premium-3")
    return ScalingAction.open(instance=instance, from_plan=instance.current_plan, to_plan=instance.max_plan,
                              direction="up", reason="memory 90 % over 80 %", at=T0)


def test_a_change_opens_pending_and_not_yet_sent(change):
    stored = ScalingAction.objects.get(pk=change.pk)
    assert stored.status == "pending" and not stored.sent and stored.created_at == T0
    assert stored.finished_at is None


def test_each_transition_is_stamped_when_it_happens(change):
    assert change.mark_sent(at=T0 + timedelta(seconds=1))
    assert change.succeed(at=T0 + timedelta(seconds=75))

    stored = ScalingAction.objects.get(pk=change.pk)
    assert (stored.created_at, stored.patch_sent_at, stored.finished_at) == (
        T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=75))
    assert stored.status == "succeeded"


def test_of_two_workers_completing_one_change_only_the_first_wins(change):
    copy = ScalingAction.objects.get(pk=change.pk)  # what a second worker loaded
    assert change.succeed(at=T0 + timedelta(seconds=60))

    assert not copy.fail(at=T0 + timedelta(seconds=61), error="late")
    assert not copy.note("late")
    assert not copy.mark_sent(at=T0 + timedelta(seconds=62))
    stored = ScalingAction.objects.get(pk=change.pk)
    assert stored.status == "succeeded" and stored.error == "" and stored.finished_at == T0 + timedelta(seconds=60)
    assert copy.status == "pending"  # the loser's copy is not told a story that did not happen


def test_a_failure_keeps_its_reason_and_when_to_try_again(change):
    assert change.fail(at=T0 + timedelta(seconds=2), error="422 invalid_params " + "x" * 3000,
                       retry_not_before=T0 + timedelta(hours=1))
    stored = ScalingAction.objects.get(pk=change.pk)
    assert stored.status == "failed" and stored.error.startswith("422 invalid_params") and len(stored.error) == 2000
    assert stored.retry_not_before == T0 + timedelta(hours=1)


def test_one_change_in_flight_per_instance(change):
    with pytest.raises(IntegrityError), transaction.atomic():
        ScalingAction.open(instance=change.instance, from_plan=change.from_plan, to_plan=change.to_plan,
                           direction="up", reason="again", at=T0 + timedelta(seconds=5))


def test_a_dry_run_is_recorded_finished(plans):
    instance = make_instance(name="queue", plan="heroku-redis:premium-0", min_plan="heroku-redis:premium-0",
                             max_plan="heroku-redis:premium-3")
    action = ScalingAction.record_dry_run(instance=instance, from_plan=instance.current_plan,
                                          to_plan=instance.max_plan, direction="up", reason="test", at=T0)
    assert (action.status, action.finished_at) == ("dry-run", T0)
    assert not action.succeed(at=T0 + timedelta(seconds=1))
