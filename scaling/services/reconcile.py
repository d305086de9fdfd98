"""Bulk reconciliation: one paginated `GET /addons` per Heroku account for all its instances
(DESIGN section 7)."""

import logging
from dataclasses import dataclass

from scaling.models import HerokuAccount, RedisInstance, RedisPlan, default_account_id
from scaling.services.adoption import plan_adopt_if_changed
from scaling.heroku import HerokuError
from scaling.services.heroku_access import account_client
from scaling.services.instances import ResolutionError, instance_refresh

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileResult:
    checked: int
    adopted: int
    missing: int
    unknown_plans: int


def addons_reconcile(*, now, client=None):
    """Per Heroku account with instances, one paginated listing of its add-ons
    (`account_addons_reconcile`). An account whose listing fails (drained, key refused, Heroku
    down) never stops the others: its error is raised after them, so the task shows it.
    `client`: used for the `default` account (tests, benchmarks)."""
    ids = set(RedisInstance.objects.exclude(addon_id=None).values_list("account", flat=True).distinct())
    if None in ids:
        ids = (ids - {None}) | {default_account_id()}
    results, errors = [], []
    for account in HerokuAccount.objects.filter(pk__in=ids).order_by("name"):
        try:
            results.append(account_addons_reconcile(account=account, now=now,
                                                    client=client if account.is_default else None))
        except HerokuError as error:
            logger.warning("Heroku account %s: add-on reconciliation failed: %s", account.name, error)
            errors.append(error)
    if errors:
        raise errors[0]
    return ReconcileResult(*(sum(getattr(r, field) for r in results) for field in ReconcileResult.__dataclass_fields__))


def account_addons_reconcile(*, account, now, client=None):
    """Adopt plans changed by hand; find again the add-on of instances whose add-on is gone
    (replaced under the same config var), or say that it is gone. One account's add-ons."""
    client = client or account_client(account=account)
    addons = {addon.id: addon for addon in client.list_addons()}
    plans = {plan.plan_name: plan for plan in RedisPlan.objects.all()}
    adopted = missing = unknown = checked = 0
    instances = RedisInstance.objects.with_plans().filter(account.instances_q()).exclude(addon_id=None)
    for instance in instances.iterator(chunk_size=1000):
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
