from celery import shared_task
from django.utils import timezone

from logs.services import metric_logs_prune


@shared_task(name="logs.prune_metrics")
def prune_metrics():
    result = metric_logs_prune(now=timezone.now())
    return {"deleted": result.deleted}
