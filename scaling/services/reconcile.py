"""Bulk reconciliation: one paginated `GET /addons` for all instances (DESIGN section 7)."""

import logging
from dataclasses import dataclass

from scaling.models import RedisInstance, RedisPlan
from scaling.services.adoption import plan_adopt_if_changed
from scaling.heroku import HerokuError
from scaling.services.heroku_access import heroku_client
from scaling.services.instances import ResolutionError, instance_refresh

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileResult:
    checked: int
    adopted: int
    missing: int
    unknown_plans: int


def addons_reconcile(*, now, client=None):
    """Adopt plans changed by hand; find again the add-on of instances whose add-on is gone
    (replaced under the same config var), or say that it is gone."""
    client = client or heroku_client()
    addons = {addon.id: addon for addon in client.list_addons()}
    plans = {plan.plan_name: plan for plan in RedisPlan.objects.all()}
    adopted = missing = unknown = checked = 0
    for instance in RedisInstance.objects.with_plans().exclude(addon_id=None).iterator(chunk_size=1000):
        checked += 1
        addon = addons.get(str(instance.addon_id))
        if addon is None:
            missing += 1
            _find_again(instance=instance, now=now, client=client)
            continue
        if addon.plan_name == instance.current_plan.plan_name or addon.state != "provisioned":
            continue
        plan = plans.get(addon.plan_name)
        if plan is None:
            unknown += 1
            logger.warning("instance %s: add-on is on plan %s, unknown to the plan data", instance.name, addon.plan_name)
            continue
        if plan_adopt_if_changed(instance=instance, plan=plan, now=now, found_by="the add-on reconciliation"):
            adopted += 1
    return ReconcileResult(checked=checked, adopted=adopted, missing=missing, unknown_plans=unknown)


def _find_again(*, instance, now, client):
    """At most 2 calls an hour per vanished add-on: a replacement is found by its config var."""
    try:
        instance_refresh(instance=instance, now=now, client=client)
    except (ResolutionError, HerokuError) as error:
        logger.warning("instance %s: add-on %s not found on Heroku: %s", instance.name, instance.addon_name, error)
