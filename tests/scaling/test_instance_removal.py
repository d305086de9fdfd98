"""Removing an instance while a plan change is in flight: the change is settled first, nothing
is left pending without an instance, and registering the add-on again sends no fresh PATCH."""


import pytest
from django.utils import timezone

from logs.models import ScalingAction
from scaling.models import RedisInstance, RedisPlan
from scaling.services.checks import PATCH_SETTLE
from scaling.services.instances import addon_resolve
from scaling.services.registration import RegistrationError, instance_register, instance_remove
from tests.claims import claimed_by_another_worker
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def changing(plans, heroku):
    """An instance whose change premium-0 -> premium-1 was PATCHed and is being followed."""
    addon = heroku.add_redis_addon("orders-app", plan="heroku-redis:premium-0", url="redis://:pw@redis.example.com:6379")
    instance = make_instance(name="orders", plan="heroku-redis:premium-0", min_plan="heroku-redis:premium-0",
                             max_plan="heroku-redis:premium-3", addon_id=addon["id"], addon_name=addon["name"],
                             redis_url="redis://:pw@redis.example.com:6379", resolved_at=timezone.now())
    now = timezone.now()
    action = ScalingAction.objects.create(
        instance=instance, instance_name=instance.name, created_at=now, patch_sent_at=now,
        from_plan=instance.current_plan, to_plan=RedisPlan.objects.get(plan_name="heroku-redis:premium-1"),
        direction="up", reason="memory 91% > 80%", status="pending",
    )
    return instance, addon, action


def _pending_anywhere():
    return ScalingAction.objects.filter(status="pending").count()


@pytest.mark.parametrize("keep_record", [True, False])
def test_removal_settles_a_change_that_landed_and_leaves_nothing_pending(changing, heroku, keep_record):
    instance, addon, action = changing
    heroku.set_plan_by_hand(addon["id"], "heroku-redis:premium-1")  # Heroku applied the PATCH

    instance_remove(name="orders", keep_record=keep_record)

    assert not RedisInstance.objects.filter(name="orders").exists()
    assert _pending_anywhere() == 0
    if keep_record:
        action.refresh_from_db()
        assert action.status == "succeeded" and action.instance_id is None
    assert heroku.count("PATCH") == 0


def test_removal_settles_a_change_that_never_reached_heroku_as_failed(changing, heroku):
    instance, addon, action = changing  # the add-on is still on premium-0, and settled there:
    # the PATCH went out longer ago than a lost answer could still land (checks.PATCH_SETTLE)
    ScalingAction.objects.filter(pk=action.pk).update(patch_sent_at=action.patch_sent_at - PATCH_SETTLE * 2)

    instance_remove(name="orders", keep_record=True)

    action.refresh_from_db()
    assert action.status == "failed" and "did not reach Heroku" in action.error
    assert _pending_anywhere() == 0


def test_removal_during_provisioning_waits_then_refuses_in_one_line_and_removes_nothing(changing, heroku):
    instance, addon, action = changing
    heroku.addons[addon["id"]].update(plan="heroku-redis:premium-1", state="provisioning",
                                      ready_at=heroku.clock() + 3600)

    with pytest.raises(RegistrationError) as caught:
        instance_remove(name="orders", keep_record=True)

    assert str(caught.value) == (
        "instance 'orders' has a plan change to heroku-redis:premium-1 in flight (heroku-redis:premium-1 is"
        " provisioning); remove it once the change has landed"
    )
    assert RedisInstance.objects.filter(name="orders").exists()
    action.refresh_from_db()
    assert action.status == "pending" and action.instance_id == instance.pk

    heroku.addons[addon["id"]]["ready_at"] = 0  # landed
    instance_remove(name="orders", keep_record=True)
    action.refresh_from_db()
    assert action.status == "succeeded" and _pending_anywhere() == 0


def test_removal_does_not_race_a_running_check(changing, heroku):
    instance, addon, action = changing
    with claimed_by_another_worker(instance.pk), pytest.raises(RegistrationError) as caught:
        instance_remove(name="orders", keep_record=True)

    assert "a scaling check of 'orders' is running" in str(caught.value)
    assert RedisInstance.objects.filter(name="orders").exists()


def test_registering_the_add_on_again_after_removal_takes_the_landed_plan_and_sends_no_patch(changing, heroku):
    instance, addon, action = changing
    heroku.set_plan_by_hand(addon["id"], "heroku-redis:premium-1")
    instance_remove(name="orders", keep_record=True)

    resolved = addon_resolve(app_name="orders-app", config_var="REDIS_URL")
    plans = {p.plan_name: p for p in RedisPlan.objects.all()}
    again = instance_register(
        name="orders", app_name="orders-app", config_var="REDIS_URL", resolved=resolved, metric_rate=30,
        memory_threshold=80, connection_threshold=80, scaling_enabled=True, min_plan=plans["heroku-redis:premium-0"],
        max_plan=plans["heroku-redis:premium-3"], scaling_rate=60, notify_breach=True, notify_success=True,
        notify_failure=True, now=timezone.now(),
    )

    assert again.current_plan.plan_name == "heroku-redis:premium-1"
    assert not ScalingAction.objects.filter(instance=again).exists()
    assert heroku.count("PATCH") == 0 and _pending_anywhere() == 0


def test_the_admin_does_not_delete_an_instance_with_a_change_in_flight_and_deletes_through_the_removal(admin_client, changing, heroku):
    from django.urls import reverse

    instance, addon, action = changing
    heroku.addons[addon["id"]].update(plan="heroku-redis:premium-1", state="provisioning", ready_at=heroku.clock() + 3600)
    url = reverse("admin:scaling_redisinstance_delete", args=[instance.pk])

    refused = admin_client.post(url, {"post": "yes"}, follow=True)
    assert "has a plan change to heroku-redis:premium-1 in flight" in refused.content.decode()
    assert "deleted successfully" not in refused.content.decode()
    assert RedisInstance.objects.filter(pk=instance.pk).exists()
    assert ScalingAction.objects.get(pk=action.pk).status == "pending"

    heroku.addons[addon["id"]]["ready_at"] = 0  # landed
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not RedisInstance.objects.filter(pk=instance.pk).exists() and _pending_anywhere() == 0
    assert ScalingAction.objects.get(pk=action.pk).status == "succeeded"


def test_the_admins_bulk_delete_settles_each_change_first(admin_client, changing, heroku):
    from django.urls import reverse

    instance, addon, action = changing
    heroku.set_plan_by_hand(addon["id"], "heroku-redis:premium-1")
    other = make_instance(name="carts")

    response = admin_client.post(reverse("admin:scaling_redisinstance_changelist"),
                                 {"action": "delete_selected", "_selected_action": [instance.pk, other.pk], "post": "yes"})

    assert response.status_code == 302
    assert not RedisInstance.objects.exists()
    action.refresh_from_db()
    assert action.status == "succeeded" and _pending_anywhere() == 0
