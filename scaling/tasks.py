"""Celery tasks: a few lines each over one service."""

from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from operations.heartbeats import dispatcher_tick_record
from scaling.services.collection import samples_collect
from scaling.services.dispatch import due_work_dispatch
from scaling.services.reconcile import addons_reconcile

# A worker back from an outage should not work through an hour of stale slots: tasks older
# than this are dropped by the worker, and the dispatcher's next claims take over.
COLLECT_EXPIRES_SECONDS = 300  # the slowest metric rate
CHECK_EXPIRES_SECONDS = 120


@shared_task(name="scaling.dispatch")
def dispatch():
    dispatcher_tick_record(now=timezone.now())  # /healthz: beat and a worker are alive
    result = due_work_dispatch(
        now=timezone.now(),
        enqueue_samples=lambda due: collect_samples.apply_async(
            args=[[[pk, slot.isoformat()] for pk, slot in due]], expires=COLLECT_EXPIRES_SECONDS),
        enqueue_check=lambda pk, slot: check_instance.apply_async(
            args=[pk, slot.isoformat()], expires=CHECK_EXPIRES_SECONDS),
    )
    return {"samples": result.samples, "checks": result.checks}


@shared_task(name="scaling.collect_samples")
def collect_samples(due):
    result = samples_collect(due=[(pk, datetime.fromisoformat(slot)) for pk, slot in due])
    return {"stored": result.stored, "failed": result.failed}


@shared_task(name="scaling.check_instance")
def check_instance(instance_id, slot):
    from scaling.services.checks import instance_check_scaling

    instance_check_scaling(instance_id=instance_id, now=timezone.now(), follow_later=follow_later)


@shared_task(name="scaling.follow_plan_change")
def follow_plan_change(action_id):
    from scaling.services.checks import plan_change_follow

    plan_change_follow(action_id=action_id, now=timezone.now(), follow_later=follow_later)


def follow_later(action_id):
    """A pending plan change is looked at again in PLAN_FOLLOW_SECONDS, by any worker: none
    waits for Heroku in between."""
    follow_plan_change.apply_async(args=[action_id], countdown=settings.PLAN_FOLLOW_SECONDS)


@shared_task(name="scaling.reconcile_addons")
def reconcile_addons():
    result = addons_reconcile(now=timezone.now())
    return {"checked": result.checked, "adopted": result.adopted}


@shared_task(name="scaling.refresh_plan_prices")
def refresh_plan_prices():
    from scaling.services.plan_prices import plan_prices_refresh

    result = plan_prices_refresh(now=timezone.now())
    return result and {"confirmed": result.confirmed, "changed": len(result.changed), "unknown": len(result.unknown)}
