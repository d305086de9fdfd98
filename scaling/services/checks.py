"""The scaling check: recent samples -> engine decision -> plan change on Heroku -> record, mail.

One check at a time per instance: a lease on the instance row is claimed with a
compare-and-set update, and at most one pending ScalingAction can exist per instance (a
database constraint). The action row is written before the PATCH and completed after
Heroku confirms, so a worker killed in between leaves a pending row that the next check
follows with a GET instead of sending the PATCH again.
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q

from logs.models import ScalingAction
from notifications import services as mail
from scaling.heroku import HerokuError, HerokuNotFound, HerokuRateLimited
from scaling.models import RedisInstance, RedisPlan
from scaling.services.adoption import plan_adopt_if_changed
from scaling.services.engine_input import instance_engine_decide
from scaling.services.heroku_access import heroku_client
from scaling.services.instances import ResolutionError, instance_refresh, instances_named

logger = logging.getLogger(__name__)

# How long a check holds its instance. Longer than a check normally takes (following a
# change for PLAN_FOLLOW_SECONDS plus a few API calls), short so that a change left pending by
# a killed worker is confirmed soon. Safety does not rest on it: a check that outlives its
# lease finds the pending action and only follows it (one PATCH per pending row).
CHECK_LEASE = timedelta(minutes=3)
PROVISIONING_TIMEOUT = timedelta(minutes=30)  # a change still not provisioned by then is failed
REFUSAL_PAUSE = timedelta(hours=1)  # a change Heroku refused is not tried again before this
PATCH_UNANSWERED = "the PATCH got no usable answer: "

Status = ScalingAction.Status


@dataclass(frozen=True)
class CheckOutcome:
    instance: str
    outcome: str  # busy, stay, followed, dry-run, succeeded, pending, failed, paused
    detail: str


def instance_decide(*, instance, now):
    """The engine's decision on the instance's recent samples (no side effects)."""
    return instance_engine_decide(instance=instance, now=now)


def _claim(instance_id, now):
    free = Q(check_claimed_until__isnull=True) | Q(check_claimed_until__lt=now)
    return RedisInstance.objects.filter(free, pk=instance_id).update(check_claimed_until=now + CHECK_LEASE) == 1


def _release(instance_id):
    try:
        RedisInstance.objects.filter(pk=instance_id).update(check_claimed_until=None)
    except (InterfaceError, OperationalError):
        if connection.in_atomic_block:
            raise
        # The connection broke during the check (PostgreSQL restarted): release over a new
        # one, or this instance would not be checked again before the lease expires.
        connection.close()
        RedisInstance.objects.filter(pk=instance_id).update(check_claimed_until=None)


def instance_check_scaling(*, instance_id, now, dry_run=False, client=None, follow_seconds=None):
    """One engine run for one instance, acting on its decision unless dry run."""
    if not _claim(instance_id, now):
        return CheckOutcome(str(instance_id), "busy", "another check of this instance is running")
    try:
        instance = RedisInstance.objects.with_plans().get(pk=instance_id)
        pending = ScalingAction.objects.select_related("from_plan", "to_plan").filter(instance=instance, status=Status.PENDING).first()
        if pending is not None:
            return action_follow(action=pending, instance=instance, now=now, client=client)
        return _decide_and_act(instance=instance, now=now, dry_run=dry_run or instance.dry_run, client=client,
                               follow_seconds=follow_seconds)
    finally:
        _release(instance_id)


def _decide_and_act(*, instance, now, dry_run, client, follow_seconds):
    decision = instance_decide(instance=instance, now=now)
    if decision.breaching:
        mail.breach_notify(instance=instance, decision=decision, now=now)
    if decision.cannot_scale_further:
        mail.cannot_scale_notify(instance=instance, decision=decision, now=now)
    if decision.action == "stay" or decision.target is None:
        return CheckOutcome(instance.name, "stay", decision.reason)

    if not instance.addon_id:
        return CheckOutcome(instance.name, "stay", f"would scale {decision.action}, but the add-on is not resolved yet")
    target = RedisPlan.objects.get(plan_name=decision.target.name)
    paused = _refused_recently(instance=instance, target=target, now=now)
    if paused is not None and not dry_run:
        return CheckOutcome(instance.name, "paused", f"not trying {target.plan_name} again before "
                            f"{paused.retry_not_before:%H:%M} UTC: {paused.error}")
    fields = dict(
        instance=instance, instance_name=instance.name, created_at=now, from_plan=instance.current_plan,
        to_plan=target, direction=decision.action, reason=decision.reason,
    )
    if dry_run:
        last = ScalingAction.objects.filter(instance=instance).order_by("-created_at").first()
        if last and last.status == Status.DRY_RUN and (last.from_plan_id, last.to_plan_id) == (instance.current_plan_id, target.pk):
            # The same would-be change, decided again every check: recorded once, not once a minute.
            return CheckOutcome(instance.name, "dry-run", f"would still scale {decision.action} to {target.plan_name}: {decision.reason}")
        action = ScalingAction.objects.create(status=Status.DRY_RUN, finished_at=now, **fields)
        mail.dry_run_notify(instance=instance, action=action, decision=decision, now=now)
        return CheckOutcome(instance.name, "dry-run", f"would scale {decision.action} to {target.plan_name}: {decision.reason}")
    try:
        with transaction.atomic():
            action = ScalingAction.objects.create(status=Status.PENDING, patch_sent_at=now, **fields)
    except IntegrityError:
        return CheckOutcome(instance.name, "busy", "another plan change of this instance is in flight")
    return _send_change(action=action, instance=instance, now=now, client=client or heroku_client(),
                        follow_seconds=follow_seconds)


def _refused_recently(*, instance, target, now):
    return (
        ScalingAction.objects.filter(instance=instance, to_plan=target, status=Status.FAILED, retry_not_before__gt=now)
        .order_by("-created_at").first()
    )


def _send_change(*, action, instance, now, client, follow_seconds):
    try:
        addon = client.change_plan(app=instance.app_name, addon_id=str(instance.addon_id), plan=action.to_plan.plan_name)
    except HerokuError as error:
        if error.outcome_unknown:
            # The PATCH may have landed: the next check follows the add-on with a GET. Why it
            # is in doubt stays on the pending row (the admin shows it) and in its outcome.
            logger.warning("instance %s: plan change outcome unknown (%s); will follow", instance.name, error)
            _note(action, f"{PATCH_UNANSWERED}{error}")
            return CheckOutcome(instance.name, "pending", str(error))
        pause = timedelta(seconds=error.retry_after) if isinstance(error, HerokuRateLimited) else REFUSAL_PAUSE
        if error.retryable and not isinstance(error, HerokuRateLimited):
            pause = timedelta(0)
        if isinstance(error, HerokuNotFound) and _addon_replaced(instance=instance, now=now, client=client):
            pause = timedelta(0)  # the next check changes the add-on that replaced it
        return _fail(action=action, instance=instance, now=now, error=str(error), retry_not_before=now + pause)
    if addon.plan_name == action.to_plan.plan_name and addon.state == "provisioned":
        return _succeed(action=action, instance=instance, now=now, client=client)
    return _follow_for_a_while(action=action, instance=instance, client=client, follow_seconds=follow_seconds, now=now)


def _addon_replaced(*, instance, now, client):
    """After a 404 on the PATCH: find the add-on again by its config var. True if another
    add-on (a new id) now stands behind it."""
    old_id = str(instance.addon_id)
    try:
        instance_refresh(instance=instance, now=now, client=client)
    except (ResolutionError, HerokuError) as error:
        logger.warning("instance %s: add-on not found and not found again: %s", instance.name, error)
        return False
    return str(instance.addon_id) != old_id


def _follow_for_a_while(*, action, instance, client, follow_seconds, now):
    """Poll the add-on briefly; a change still provisioning is left pending for the next check."""
    budget = settings.PLAN_FOLLOW_SECONDS if follow_seconds is None else follow_seconds
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        time.sleep(min(5.0, max(deadline - time.monotonic(), 0)))
        outcome = action_follow(action=action, instance=instance, now=now, client=client)
        if outcome.outcome != "pending":
            return outcome
    return CheckOutcome(instance.name, "pending", f"{action.to_plan.plan_name} is provisioning")


def action_follow(*, action, instance, now, client=None):
    """Look at the add-on once and complete a pending action from what Heroku says."""
    client = client or heroku_client()
    try:
        addon = client.get_addon(str(instance.addon_id), app=instance.app_name, priority=True)
    except HerokuError as error:
        # Whatever the error, the PATCH may have been applied: failing the action now would
        # let the next check send it again. It stays pending, with the reason on its row,
        # until Heroku can be read or the provisioning timeout has passed.
        if now - action.created_at > PROVISIONING_TIMEOUT:
            return _fail(action=action, instance=instance, now=now,
                         error=f"cannot follow the change for {PROVISIONING_TIMEOUT}: {error}")
        if not action.error.startswith(PATCH_UNANSWERED):
            _note(action, f"cannot read the add-on yet: {error}")
        return CheckOutcome(instance.name, "pending", f"cannot read the add-on yet: {error}")
    if addon.plan_name == action.to_plan.plan_name:
        if addon.state == "provisioned":
            return _succeed(action=action, instance=instance, now=now, client=client)
        if now - action.created_at > PROVISIONING_TIMEOUT:
            return _fail(action=action, instance=instance, now=now,
                         error=f"still {addon.state} on {addon.plan_name} after {PROVISIONING_TIMEOUT}")
        return CheckOutcome(instance.name, "pending", f"{addon.plan_name} is {addon.state}")
    if addon.plan_name == action.from_plan.plan_name:
        # Heroku never applied it (the worker died before the PATCH reached Heroku): the
        # engine decides again on fresh samples rather than replaying an old decision.
        why = action.error if action.error.startswith(PATCH_UNANSWERED) else "interrupted"
        return _fail(action=action, instance=instance, now=now,
                     error=f"the plan change did not reach Heroku ({why}); deciding again")
    _fail(action=action, instance=instance, now=now,
          error=f"the add-on moved to {addon.plan_name} outside the app", notify=False)
    plan = RedisPlan.objects.filter(plan_name=addon.plan_name).first()
    if plan is not None:
        plan_adopt_if_changed(instance=instance, plan=plan, now=now, found_by="following a plan change")
    return CheckOutcome(instance.name, "followed", f"adopted {addon.plan_name} set outside the app")


def _note(action, text):
    """Why a change in flight is in doubt, on its pending row."""
    action.error = text[:2000]
    ScalingAction.objects.filter(pk=action.pk, status=Status.PENDING).update(error=action.error)


def _succeed(*, action, instance, now, client):
    with transaction.atomic():
        done = ScalingAction.objects.filter(pk=action.pk, status=Status.PENDING).update(status=Status.SUCCEEDED, finished_at=now)
        if not done:
            return CheckOutcome(instance.name, "followed", "already completed")
        RedisInstance.objects.filter(pk=instance.pk).update(current_plan=action.to_plan, plan_changed_at=now)
    instance.current_plan, instance.plan_changed_at = action.to_plan, now
    action.status = Status.SUCCEEDED
    try:
        # A plan change may move the add-on: read its URL again now, not after a failed sample.
        instance_refresh(instance=instance, now=now, client=client)
    except (ResolutionError, HerokuError) as error:
        logger.warning("instance %s: refresh after the plan change failed: %s", instance.name, error)
    mail.scaling_succeeded_notify(instance=instance, action=action, now=now)
    return CheckOutcome(instance.name, "succeeded", f"{action.from_plan.plan_name} -> {action.to_plan.plan_name}: {action.reason}")


def _fail(*, action, instance, now, error, retry_not_before=None, notify=True):
    done = ScalingAction.objects.filter(pk=action.pk, status=Status.PENDING).update(
        status=Status.FAILED, finished_at=now, error=error[:2000], retry_not_before=retry_not_before,
    )
    action.status, action.error = Status.FAILED, error
    if done and notify:
        mail.scaling_failed_notify(instance=instance, action=action, now=now)
    logger.warning("instance %s: plan change to %s failed: %s", instance.name, action.to_plan.plan_name, error)
    return CheckOutcome(instance.name, "failed", error)


def instances_check_now(*, names=None, dry_run=False, now):
    """`check_scaling [NAME ...] [--dry-run]`: one engine run for the named (or all enabled) instances."""
    queryset = instances_named(names=names, default=RedisInstance.objects.filter(scaling_enabled=True))
    outcomes = []
    for pk in queryset.values_list("pk", flat=True):
        try:
            outcomes.append(instance_check_scaling(instance_id=pk, now=now, dry_run=dry_run))
        except Exception as error:  # noqa: BLE001 - one broken instance never stops the others
            logger.exception("check of instance %s failed", pk)
            outcomes.append(CheckOutcome(str(pk), "error", str(error)))
    return outcomes
