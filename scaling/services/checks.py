"""The scaling check: recent samples -> engine decision -> plan change on Heroku -> record, mail.

A plan change reads as the transitions of its ScalingAction (logs/models.py):
1. `instance_check_scaling` claims the instance, asks the engine, and opens a pending action
   (the outbox row, written before the PATCH; at most one pending per instance);
2. marks it sent and sends the PATCH; an answer showing the new plan provisioned succeeds it
   at once, a refusal fails it, anything else leaves it pending;
3. a pending action is followed by `plan_change_follow` (its own task, scheduled with a
   countdown: no worker ever sleeps waiting for Heroku) and by every check of the instance
   until Heroku shows the new plan (succeeded) or shows that the PATCH did not land and no
   longer can (failed, and the next check decides again). A PATCH that may still land is
   never sent a second time.

One worker at a time per instance: on PostgreSQL a session-level advisory lock on the
check's own connection (it dies with the process, so a killed check frees its instance at
once); elsewhere a lease on the instance row claimed with a compare-and-set update.
"""

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import Error as DatabaseFault, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q

from autoscaler.redaction import redact
from logs.models import ScalingAction
from notifications import services as mail
from scaling.heroku import HerokuError, HerokuNotFound, HerokuRateLimited
from scaling.models import RedisInstance, RedisPlan
from scaling.services.adoption import plan_adopt_if_changed
from scaling.services.heroku_access import account_client
from scaling.services.engine_input import instance_engine_decide
from scaling.services.instances import ResolutionError, instance_refresh, instances_named

logger = logging.getLogger(__name__)

# SQLite only (no advisory locks): how long a check holds its instance. Longer than a check
# takes (a few API calls, never a wait for Heroku); safety does not rest on it: a check that
# outlives its lease finds the pending action and only follows it (one PATCH per pending row).
CHECK_LEASE = timedelta(minutes=3)
# PostgreSQL: the advisory lock key of "a check or follow of instance N" is (CHECK_LOCK_SPACE, N).
CHECK_LOCK_SPACE = 0x5CA1E
PROVISIONING_TIMEOUT = timedelta(minutes=30)  # a change not confirmed by then is failed
# A PATCH whose answer was lost may still be applied by Heroku: its router gives a request
# 30 s, so once this much has passed since it was sent (three times that), an add-on still
# provisioned on the old plan means that the change did not land and no longer can.
PATCH_SETTLE = timedelta(seconds=90)
REFUSAL_PAUSE = timedelta(hours=1)  # a change Heroku refused is not tried again before this
PATCH_UNANSWERED = "the PATCH got no usable answer: "

Status = ScalingAction.Status


@dataclass(frozen=True)
class CheckOutcome:
    instance: str
    outcome: str  # busy, stay, followed, dry-run, succeeded, pending, failed, paused, error
    detail: str


def instance_decide(*, instance, now):
    """The engine's decision on the instance's recent samples (no side effects)."""
    return instance_engine_decide(instance=instance, now=now)


def _stamps(now):
    """The moment of each step of this run, on the clock of `now` (the run's start): an
    action's created_at, patch_sent_at and finished_at are each recorded when they happen."""
    started = time.monotonic()
    return lambda: now + timedelta(seconds=time.monotonic() - started)


# --- One worker per instance ------------------------------------------------------------


@contextmanager
def instance_claimed(*, instance_id, now):
    """True inside while this worker alone checks or follows the instance, else False."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s::int)", [CHECK_LOCK_SPACE, instance_id])
            claimed = cursor.fetchone()[0]
        try:
            yield claimed
        finally:
            if claimed:
                _unlock(instance_id)
        return
    free = Q(check_claimed_until__isnull=True) | Q(check_claimed_until__lt=now)
    claimed = RedisInstance.objects.filter(free, pk=instance_id).update(check_claimed_until=now + CHECK_LEASE) == 1
    try:
        yield claimed
    finally:
        if claimed:
            _release_lease(instance_id)


def _unlock(instance_id):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s::int)", [CHECK_LOCK_SPACE, instance_id])
    except (InterfaceError, OperationalError):
        if connection.in_atomic_block:
            raise
        # The connection broke during the check: the lock died with it. The next statement
        # of this worker opens a new connection.
        connection.close()


def _release_lease(instance_id):
    try:
        RedisInstance.objects.filter(pk=instance_id).update(check_claimed_until=None)
    except (InterfaceError, OperationalError):
        if connection.in_atomic_block:
            raise
        # The connection broke during the check: release over a new one, or this instance
        # would not be checked again before the lease expires.
        connection.close()
        RedisInstance.objects.filter(pk=instance_id).update(check_claimed_until=None)


# --- The check ----------------------------------------------------------------------------


def instance_check_scaling(*, instance_id, now, dry_run=False, client=None, follow_later=None):
    """One engine run for one instance, acting on its decision unless dry run.

    `follow_later(action_id)`: schedules `plan_change_follow` for a change it sent and left
    pending (the Celery task); without it, or if that task is lost, the instance's next
    check follows the change.
    """
    with instance_claimed(instance_id=instance_id, now=now) as claimed:
        if not claimed:
            return CheckOutcome(str(instance_id), "busy", "another check of this instance is running")
        instance = RedisInstance.objects.with_plans().get(pk=instance_id)
        try:
            pending = _pending_action(instance=instance)
            if pending is not None:
                # Its follow task is already scheduled (one chain per change, started with the
                # PATCH): the check only looks, so that checks do not multiply the follows.
                return _follow(action=pending, instance=instance, now=now, client=client, follow_later=None)
            outcome = _decide_and_act(instance=instance, now=now, dry_run=dry_run or instance.dry_run, client=client,
                                      follow_later=follow_later)
        except DatabaseFault:
            raise  # the database's own trouble (any of Django's database errors): nothing can be recorded now; the next check retries
        except Exception as error:  # noqa: BLE001 - an instance that cannot be judged is shown and alerted
            return _check_failed(instance=instance, now=now, error=error)
        _check_ok(instance=instance)
        return outcome


def _pending_action(*, instance):
    return ScalingAction.objects.select_related("from_plan", "to_plan").filter(instance=instance, status=Status.PENDING).first()


def _check_failed(*, instance, now, error):
    text = redact(f"{type(error).__name__}: {error}")[:2000]
    logger.exception("check of instance %s failed", instance.name)
    with transaction.atomic():
        RedisInstance.objects.filter(pk=instance.pk).update(check_error=text, check_failed_since=instance.check_failed_since or now)
        instance.check_error = text
        mail.check_failed_notify(instance=instance, error=text, now=now)
    return CheckOutcome(instance.name, "error", text)


def _check_ok(*, instance):
    if instance.check_error:
        RedisInstance.objects.filter(pk=instance.pk).update(check_error="", check_failed_since=None)
        instance.check_error = ""


def _decide_and_act(*, instance, now, dry_run, client, follow_later):
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
    change = dict(instance=instance, from_plan=instance.current_plan, to_plan=target, direction=decision.action,
                  reason=decision.reason, at=now)
    if dry_run:
        last = ScalingAction.objects.filter(instance=instance).order_by("-created_at").first()
        if last and last.status == Status.DRY_RUN and (last.from_plan_id, last.to_plan_id) == (instance.current_plan_id, target.pk):
            # The same would-be change, decided again every check: recorded once, not once a minute.
            return CheckOutcome(instance.name, "dry-run", f"would still scale {decision.action} to {target.plan_name}: {decision.reason}")
        with transaction.atomic():
            action = ScalingAction.record_dry_run(**change)
            mail.dry_run_notify(instance=instance, action=action, decision=decision, now=now)
        return CheckOutcome(instance.name, "dry-run", f"would scale {decision.action} to {target.plan_name}: {decision.reason}")
    try:
        with transaction.atomic():
            action = ScalingAction.open(**change)
    except IntegrityError:
        return CheckOutcome(instance.name, "busy", "another plan change of this instance is in flight")
    return _send_change(action=action, instance=instance, now=now, client=client or account_client(account=instance.account),
                        follow_later=follow_later)


def _refused_recently(*, instance, target, now):
    return (
        ScalingAction.objects.filter(instance=instance, to_plan=target, status=Status.FAILED, retry_not_before__gt=now)
        .order_by("-created_at").first()
    )


def _send_change(*, action, instance, now, client, follow_later):
    at = _stamps(now)
    action.mark_sent(at=at())
    try:
        addon = client.change_plan(app=instance.app_name, addon_id=str(instance.addon_id), plan=action.to_plan.plan_name)
    except HerokuError as error:
        if error.outcome_unknown:
            # The PATCH may have landed, or may still land: it is followed with GETs, never
            # sent again. Why it is in doubt stays on the pending row (the admin shows it).
            logger.warning("instance %s: plan change outcome unknown (%s); will follow", instance.name, error)
            action.note(f"{PATCH_UNANSWERED}{error}")
            return _still_pending(action=action, instance=instance, follow_later=follow_later, detail=str(error))
        pause = timedelta(seconds=error.retry_after) if isinstance(error, HerokuRateLimited) else REFUSAL_PAUSE
        if error.retryable and not isinstance(error, HerokuRateLimited):
            pause = timedelta(0)
        if isinstance(error, HerokuNotFound) and _addon_replaced(instance=instance, now=now, client=client):
            pause = timedelta(0)  # the next check changes the add-on that replaced it
        return _fail(action=action, instance=instance, now=now, at=at(), error=str(error), retry_not_before=now + pause)
    if addon.plan_name == action.to_plan.plan_name and addon.state == "provisioned":
        return _succeed(action=action, instance=instance, now=now, at=at(), client=client)
    return _still_pending(action=action, instance=instance, follow_later=follow_later,
                          detail=f"{action.to_plan.plan_name} is {addon.state}")


def _still_pending(*, action, instance, follow_later, detail):
    if follow_later is not None:
        follow_later(action.pk)
    return CheckOutcome(instance.name, "pending", detail)


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


# --- Following a change ---------------------------------------------------------------------


def plan_change_follow(*, action_id, now, client=None, follow_later=None):
    """The follow task: look at the add-on of a pending change once; still pending, it is
    scheduled again through `follow_later`. Idempotent: a change already completed (by a
    check, or by a copy of this task) is left alone."""
    action = ScalingAction.objects.select_related("from_plan", "to_plan").filter(pk=action_id).first()
    if action is None or action.status != Status.PENDING or action.instance_id is None:
        return CheckOutcome(str(action_id), "followed", "nothing pending")
    with instance_claimed(instance_id=action.instance_id, now=now) as claimed:
        if not claimed:
            # A check of the instance is running: it follows the change itself; look again later.
            return _still_pending(action=action, instance=action.instance, follow_later=follow_later,
                                  detail="the instance is being checked")
        action.refresh_from_db()
        if action.status != Status.PENDING:
            return CheckOutcome(action.instance_name, "followed", "already completed")
        instance = RedisInstance.objects.with_plans().get(pk=action.instance_id)
        return _follow(action=action, instance=instance, now=now, client=client, follow_later=follow_later)


def action_follow_claimed(*, action, instance, now, client=None):
    """Look at a pending change's add-on once, for a caller that already holds the
    instance's claim (removal settling a change in flight); schedules nothing."""
    return _follow(action=action, instance=instance, now=now, client=client, follow_later=None)


def _follow(*, action, instance, now, client, follow_later):
    at = _stamps(now)
    if not action.sent:
        # The worker died between writing the row and sending it: nothing can land.
        return _fail(action=action, instance=instance, now=now, at=at(),
                     error="the plan change was never sent (interrupted); deciding again")
    client = client or account_client(account=instance.account)
    overdue = now - action.patch_sent_at > PROVISIONING_TIMEOUT
    try:
        addon = client.get_addon(str(instance.addon_id), app=instance.app_name, priority=True)
    except HerokuError as error:
        # Whatever the error, the PATCH may have been applied: failing the action now would
        # let the next check send it again. It stays pending, with the reason on its row,
        # until Heroku can be read or the provisioning timeout has passed.
        if overdue:
            return _fail(action=action, instance=instance, now=now, at=at(),
                         error=f"cannot follow the change for {PROVISIONING_TIMEOUT}: {error}")
        if not action.error.startswith(PATCH_UNANSWERED):
            action.note(f"cannot read the add-on yet: {error}")
        return _still_pending(action=action, instance=instance, follow_later=follow_later,
                              detail=f"cannot read the add-on yet: {error}")
    if addon.plan_name == action.to_plan.plan_name:
        # On the new plan; after the provisioning timeout that is a success too (Heroku bills
        # it, and a second PATCH to the plan it is on would only be refused).
        if addon.state == "provisioned" or overdue:
            return _succeed(action=action, instance=instance, now=now, at=at(), client=client)
        return _still_pending(action=action, instance=instance, follow_later=follow_later,
                              detail=f"{addon.plan_name} is {addon.state}")
    if addon.plan_name == action.from_plan.plan_name:
        settled = addon.state == "provisioned" and now - action.patch_sent_at >= PATCH_SETTLE
        if not settled and not overdue:
            # A PATCH whose answer was lost may still be at work in Heroku: wait for it.
            return _still_pending(action=action, instance=instance, follow_later=follow_later,
                                  detail=f"Heroku still shows {addon.plan_name} ({addon.state}); the change may still land")
        why = action.error if action.error.startswith(PATCH_UNANSWERED) else "interrupted"
        return _fail(action=action, instance=instance, now=now, at=at(),
                     error=f"the plan change did not reach Heroku ({why}); deciding again")
    _fail(action=action, instance=instance, now=now, at=at(),
          error=f"the add-on moved to {addon.plan_name} outside the app", notify=False)
    plan = RedisPlan.objects.filter(plan_name=addon.plan_name).first()
    if plan is not None:
        plan_adopt_if_changed(instance=instance, plan=plan, now=now, found_by="following a plan change")
    return CheckOutcome(instance.name, "followed", f"adopted {addon.plan_name} set outside the app")


# --- Completing a change --------------------------------------------------------------------


def _succeed(*, action, instance, now, at, client):
    with transaction.atomic():
        if not action.succeed(at=at):
            return CheckOutcome(instance.name, "followed", "already completed")
        RedisInstance.objects.filter(pk=instance.pk).update(current_plan=action.to_plan, plan_changed_at=at)
        instance.current_plan, instance.plan_changed_at = action.to_plan, at
        # The alert in the transaction of the change it reports (its delivery is the relay's).
        mail.scaling_succeeded_notify(instance=instance, action=action, now=now)
    try:
        # A plan change may move the add-on: read its URL again now, not after a failed sample.
        instance_refresh(instance=instance, now=now, client=client)
    except (ResolutionError, HerokuError) as error:
        logger.warning("instance %s: refresh after the plan change failed: %s", instance.name, error)
    return CheckOutcome(instance.name, "succeeded", f"{action.from_plan.plan_name} -> {action.to_plan.plan_name}: {action.reason}")


def _fail(*, action, instance, now, at, error, retry_not_before=None, notify=True):
    with transaction.atomic():
        done = action.fail(at=at, error=error, retry_not_before=retry_not_before)
        if done and notify:
            mail.scaling_failed_notify(instance=instance, action=action, now=now)
    logger.warning("instance %s: plan change to %s failed: %s", instance.name, action.to_plan.plan_name, error)
    return CheckOutcome(instance.name, "failed", error)


def instances_check_now(*, names=None, dry_run=False, now, follow_later=None):
    """`check_scaling [NAME ...] [--dry-run]`: one engine run for the named (or all enabled) instances."""
    queryset = instances_named(names=names, default=RedisInstance.objects.filter(scaling_enabled=True))
    outcomes = []
    for pk in queryset.values_list("pk", flat=True):
        try:
            outcomes.append(instance_check_scaling(instance_id=pk, now=now, dry_run=dry_run, follow_later=follow_later))
        except Exception as error:  # noqa: BLE001 - one broken instance never stops the others
            logger.exception("check of instance %s failed", pk)
            outcomes.append(CheckOutcome(str(pk), "error", str(error)))
    return outcomes
