"""Celery tasks of the delivery relay: a few lines each over one service."""

from celery import shared_task
from django.utils import timezone

from notifications.relay import delivery_attempt, deliveries_due


@shared_task(name="notifications.deliver")
def deliver(delivery_id):
    return delivery_attempt(delivery_id=delivery_id, now=timezone.now()).outcome


@shared_task(name="notifications.sweep_deliveries")
def sweep_deliveries():
    due = deliveries_due(now=timezone.now())
    for delivery_id in due:
        deliver.delay(str(delivery_id))
    return len(due)
