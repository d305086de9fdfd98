"""Celery tasks: a few lines over one service."""

from celery import shared_task
from django.utils import timezone

from operations.weekly_summary import weekly_summary_send


@shared_task(name="operations.weekly_summary")
def weekly_summary():
    result = weekly_summary_send(now=timezone.now())
    return {"sent": result.sent, "reason": result.reason}
