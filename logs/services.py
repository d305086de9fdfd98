"""The record's upkeep: retention."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from logs.models import MetricLog

PRUNE_BATCH = 5000


@dataclass(frozen=True)
class PruneResult:
    deleted: int
    batches: int
    cutoff: object


def metric_logs_prune(*, now, retention_days=None, batch_size=PRUNE_BATCH, max_batches=None):
    """Delete samples older than the retention period, a batch per short transaction.

    Small batches keep each DELETE's row locks brief, so collection keeps inserting while a
    day of samples goes; `max_batches` bounds one run (the next run continues).
    """
    days = retention_days if retention_days is not None else settings.N_RETENTION_DAYS
    cutoff = now - timedelta(days=days)
    deleted = batches = 0
    while max_batches is None or batches < max_batches:
        batch = list(MetricLog.objects.filter(collected_at__lt=cutoff).order_by("collected_at").values_list("pk", flat=True)[:batch_size])
        if not batch:
            break
        deleted += MetricLog.objects.filter(pk__in=batch).delete()[0]
        batches += 1
    return PruneResult(deleted=deleted, batches=batches, cutoff=cutoff)
