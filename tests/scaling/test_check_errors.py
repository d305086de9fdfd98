"""An instance whose checks fail, for whatever reason, is visibly not ok: the error is kept
on the instance, the overview shows it, and it is alerted once."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.urls import reverse

from logs.models import MetricLog
from notifications.models import Notification
from scaling.models import RedisInstance, RedisPlan
from scaling.services.checks import instance_check_scaling, instances_check_now
from scaling.services.plans import plans_load
from tests.factories import make_instance
from tests.helpers import alerts_delivered

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=dt_timezone.utc)


def _instance_with_samples(plans, *, used_memory=10 * MIB):
    instance = make_instance(name="queue", plan="heroku-redis:premium-0", min_plan="heroku-redis:premium-0",
                             max_plan="heroku-redis:premium-3", addon_id="01234567-89ab-cdef-0123-456789abcdef")
    for step in range(6):
        at = T0 + timedelta(seconds=30 * step)
        MetricLog.objects.create(instance=instance, slot=at, collected_at=at, plan=instance.current_plan,
                                 used_memory=used_memory, connected_clients=5, evicted_keys=0, rejected_connections=0,
                                 memory_pct=100 * used_memory / (50 * MIB))
    return instance


def _reload_min_plan_above_max():
    """Plan data reloaded with premium-0 bigger than premium-3 (the instance's max)."""
    RedisPlan.objects.filter(plan_name="heroku-redis:premium-0").update(mem_limit=100_000)


def test_a_check_that_cannot_judge_the_instance_records_its_error_and_alerts_once(plans, heroku):
    instance = _instance_with_samples(plans)
    _reload_min_plan_above_max()

    outcomes = [instance_check_scaling(instance_id=instance.pk, now=T0 + timedelta(minutes=3 + n)) for n in range(5)]

    assert {o.outcome for o in outcomes} == {"error"}
    stored = RedisInstance.objects.get(pk=instance.pk)
    assert "premium-0" in stored.check_error and stored.check_failed_since == T0 + timedelta(minutes=3)
    alerts = Notification.objects.filter(instance=instance, kind="check-failed")
    assert alerts.count() == 1
    [message] = [m for m in alerts_delivered() if "cannot be judged" in m.subject]
    assert stored.check_error in message.body
    assert heroku.calls == []


def test_the_overview_shows_an_instance_that_cannot_be_judged_not_ok(plans, heroku, admin_client):
    instance = _instance_with_samples(plans)
    _reload_min_plan_above_max()
    instance_check_scaling(instance_id=instance.pk, now=T0 + timedelta(minutes=3))

    page = admin_client.get(reverse("admin:scaling_redisinstance_overview")).content.decode()
    row = page[page.index('data-instance="queue"'):]
    row = row[:row.index("</tr>")]
    assert 'data-state="check failing"' in row
    assert "min plan heroku-redis:premium-0 is above max plan heroku-redis:premium-3" in row


def test_a_check_that_judges_again_clears_the_error(plans, heroku):
    instance = _instance_with_samples(plans)
    _reload_min_plan_above_max()
    instance_check_scaling(instance_id=instance.pk, now=T0 + timedelta(minutes=3))
    plans_load()  # the bundled plan data loaded again: premium-0 is 50 MB again

    outcome = instance_check_scaling(instance_id=instance.pk, now=T0 + timedelta(minutes=4))

    assert outcome.outcome == "stay", outcome
    stored = RedisInstance.objects.get(pk=instance.pk)
    assert stored.check_error == "" and stored.check_failed_since is None


def test_one_instance_that_cannot_be_judged_does_not_stop_the_others(plans, heroku):
    broken = _instance_with_samples(plans)
    healthy = make_instance(name="healthy", plan="heroku-redis:premium-1", min_plan="heroku-redis:premium-1",
                            max_plan="heroku-redis:premium-3")
    _reload_min_plan_above_max()

    outcomes = {o.instance: o.outcome for o in instances_check_now(now=T0 + timedelta(minutes=3))}

    assert outcomes == {broken.name: "error", healthy.name: "stay"}
