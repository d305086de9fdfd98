from django.core.management.base import BaseCommand
from django.utils import timezone

from logs.services import metric_logs_prune


class Command(BaseCommand):
    help = "Delete samples older than N_RETENTION_DAYS, in small batches."

    def handle(self, *args, **options):
        result = metric_logs_prune(now=timezone.now())
        self.stdout.write(f"deleted {result.deleted} samples older than {result.cutoff:%Y-%m-%d %H:%M} UTC in {result.batches} batches")
