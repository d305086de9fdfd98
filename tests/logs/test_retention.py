from datetime import timedelta

import pytest
from django.utils import timezone

from logs.models import MetricLog
from logs.services import metric_logs_prune
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


def test_pruning_removes_samples_older_than_the_retention_in_batches_and_keeps_the_rest(plans):
    instance = make_instance()
    now = timezone.now()
    MetricLog.objects.bulk_create(
        MetricLog(instance=instance, plan=instance.current_plan, slot=now - timedelta(minutes=m), collected_at=now - timedelta(minutes=m), used_memory=1)
        for m in range(0, 3 * 24 * 60, 10)
    )
    result = metric_logs_prune(now=now, retention_days=2, batch_size=50)
    assert result.deleted == 143  # the third day, every 10 minutes (the sample at the cutoff stays)
    assert result.batches == 3
    assert not MetricLog.objects.filter(collected_at__lt=now - timedelta(days=2)).exists()
    assert MetricLog.objects.count() == 2 * 24 * 6 + 1


def test_pruning_with_nothing_old_deletes_nothing(plans):
    instance = make_instance()
    now = timezone.now()
    MetricLog.objects.create(instance=instance, plan=instance.current_plan, slot=now, collected_at=now, used_memory=1)
    assert metric_logs_prune(now=now, retention_days=1).deleted == 0
