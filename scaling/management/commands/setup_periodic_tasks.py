from django.core.management.base import BaseCommand

from scaling.services.periodic import periodic_tasks_setup


class Command(BaseCommand):
    help = "Create the beat schedule (dispatcher, reconciliation, prune); existing entries are kept as edited."

    def handle(self, *args, **options):
        result = periodic_tasks_setup()
        for name in result.created:
            self.stdout.write(f"created: {name}")
        for name in result.kept:
            self.stdout.write(f"kept as is: {name}")
