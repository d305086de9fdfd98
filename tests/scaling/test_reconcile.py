import pytest
from django.utils import timezone

from logs.models import ScalingAction
from scaling.models import RedisInstance
from scaling.services.reconcile import addons_reconcile
from tests.factories import make_instance

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
