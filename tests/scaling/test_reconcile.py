from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from logs.models import ScalingAction
from notifications.models import Notification
from scaling.models import RedisInstance
from scaling.services.reconcile import addons_reconcile
from tests.factories import make_instance
from tests.helpers import alerts_delivered
from tests.scaling.live import LiveLoop, reader  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def _registered(heroku, name, plan="heroku-redis:premium-0"):
    addon = heroku.add_redis_addon(f"{name}-app", plan=plan)
    instance = make_instance(name=name, plan=plan, addon_id=addon["id"], addon_name=addon["name"])
    return instance, addon


def test_a_plan_changed_by_hand_is_adopted_and_recorded(plans, heroku):
    instance, addon = _registered(heroku, "queue")
    heroku.set_plan_by_hand(addon["id"], "heroku-redis:premium-2")

    result = addons_reconcile(now=timezone.now())

    assert result.adopted == 1
    assert RedisInstance.objects.get(pk=instance.pk).current_plan.plan_name == "heroku-redis:premium-2"
    action = ScalingAction.objects.get(instance=instance)
    assert action.status == "succeeded" and action.direction == "up"
    assert "changed outside the app" in action.reason and "adopted" in action.reason


def test_reconciliation_twice_adopts_once(plans, heroku):
    instance, addon = _registered(heroku, "queue")
    heroku.set_plan_by_hand(addon["id"], "heroku-redis:mini")
    addons_reconcile(now=timezone.now())
    second = addons_reconcile(now=timezone.now())
    assert second.adopted == 0
    assert ScalingAction.objects.filter(instance=instance).count() == 1


def test_reconciliation_lists_all_addons_in_pages_of_a_thousand(plans, heroku):
    for n in range(2500):
        heroku.add_redis_addon(f"other-{n}")
    instance, addon = _registered(heroku, "queue")
    heroku.set_plan_by_hand(addon["id"], "heroku-redis:premium-1")

    result = addons_reconcile(now=timezone.now())

    assert heroku.count("GET", r"^/addons") == 3
    assert result.adopted == 1


def test_a_plan_unknown_to_the_plan_data_is_reported_not_adopted(plans, heroku):
    instance, addon = _registered(heroku, "queue")
    heroku.set_plan_by_hand(addon["id"], "heroku-redis:premium-99")
    result = addons_reconcile(now=timezone.now())
    assert result.unknown_plans == 1
    assert RedisInstance.objects.get(pk=instance.pk).current_plan.plan_name == "heroku-redis:premium-0"


def test_an_addon_gone_from_heroku_is_found_again_by_its_config_var(plans, heroku):
    instance, addon = _registered(heroku, "queue")
    del heroku.addons[addon["id"]]
    replacement = heroku.add_redis_addon("queue-app", plan="heroku-redis:premium-0")
    result = addons_reconcile(now=timezone.now())
    assert result.missing == 1
    assert str(RedisInstance.objects.get(pk=instance.pk).addon_id) == replacement["id"]


def test_an_addon_gone_for_good_is_reported_and_changes_nothing(plans, heroku, caplog):
    instance, addon = _registered(heroku, "queue")
    del heroku.addons[addon["id"]]
    result = addons_reconcile(now=timezone.now())
    assert result.missing == 1
    assert str(RedisInstance.objects.get(pk=instance.pk).addon_id) == addon["id"]
    assert f"add-on {addon['name']} not found on Heroku" in caplog.text


# --- A plan set by hand outside min..max (issue 11) ------------------------------------------

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=dt_timezone.utc)


def _watched(heroku, server, *, min_plan, max_plan, plan="heroku-redis:premium-1"):
    addon = heroku.add_redis_addon("queue-app", plan=plan, url=server.url)
    instance = make_instance(name="queue", app_name="queue-app", plan=plan, min_plan=min_plan, max_plan=max_plan,
                             redis_url=server.url, addon_id=addon["id"], addon_name=addon["name"])
    return instance, addon


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_plan_raised_by_hand_above_the_max_is_adopted_and_comes_down_only_by_the_down_rules(
        plans, heroku, redis_server_factory, reader):
    """The operator raises the add-on above the max plan by hand. Adopted, it restarts the
    stabilisation clock: no PATCH while the new plan has been observed for less than the
    stabilisation window (15 min), then one step back into min..max, sized with the down
    margin. The operator is told once that the plan is outside the range."""
    instance, addon = _watched(heroku, redis_server_factory(), min_plan="heroku-redis:premium-1",
                               max_plan="heroku-redis:premium-2")
    loop = LiveLoop(instance, reader, start=T0).run(20 * 60)  # a long quiet history on premium-1, the min plan
    assert heroku.count("PATCH") == 0
    heroku.set_plan_by_hand(addon["id"], "heroku-redis:premium-4")

    adopted_at = loop.now
    assert addons_reconcile(now=adopted_at).adopted == 1
    assert RedisInstance.objects.get(pk=instance.pk).plan_changed_at == adopted_at
    loop.run(14 * 60)

    assert heroku.count("PATCH") == 0 and loop.plan == "heroku-redis:premium-4"
    outside = Notification.objects.filter(instance=instance, kind=Notification.Kind.PLAN_ADOPTED)
    assert outside.count() == 1 and "above the max plan" in outside.get().subject
    assert sum("premium-4" in m.subject for m in alerts_delivered()) == 1

    loop.run(3 * 60)

    assert heroku.count("PATCH") == 1
    patch_at, outcome = next((at, o) for at, o in loop.outcomes if o.outcome == "succeeded")
    assert patch_at - adopted_at >= timedelta(minutes=15)
    action = ScalingAction.objects.filter(instance=instance, direction="down").get()
    assert action.to_plan.plan_name == "heroku-redis:premium-1"  # a few MB of load: the range's cheapest plan
    assert loop.plan == "heroku-redis:premium-1"
    assert Notification.objects.filter(instance=instance, kind=Notification.Kind.PLAN_ADOPTED).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_plan_lowered_by_hand_below_the_min_is_raised_into_the_range_at_the_next_check(
        plans, heroku, redis_server_factory, reader):
    """Below the minimum the instance has less capacity than the operator asked for: moving
    up is safe, so the first check on the adopted plan raises it at once (and says so once)."""
    instance, addon = _watched(heroku, redis_server_factory(), min_plan="heroku-redis:premium-1",
                               max_plan="heroku-redis:premium-3")
    loop = LiveLoop(instance, reader, start=T0).run(5 * 60)
    heroku.set_plan_by_hand(addon["id"], "heroku-redis:premium-0")
    assert addons_reconcile(now=loop.now).adopted == 1
    loop.run(2 * 60)

    assert heroku.count("PATCH") == 1 and loop.plan == "heroku-redis:premium-1"
    outside = Notification.objects.filter(instance=instance, kind=Notification.Kind.PLAN_ADOPTED)
    assert outside.count() == 1 and "below the min plan" in outside.get().subject


def test_a_plan_changed_by_hand_within_the_range_is_adopted_with_one_plan_adopted_alert(plans, heroku):
    instance, addon = _registered(heroku, "queue")
    old_plan = RedisInstance.objects.get(pk=instance.pk).current_plan.plan_name
    heroku.set_plan_by_hand(addon["id"], "heroku-redis:premium-2")
    addons_reconcile(now=timezone.now())
    addons_reconcile(now=timezone.now())
    [alert] = Notification.objects.filter(instance=instance, kind=Notification.Kind.PLAN_ADOPTED)
    assert alert.event == "plan.adopted"
    assert (alert.data["from"], alert.data["to"]) == (old_plan, "heroku-redis:premium-2")
