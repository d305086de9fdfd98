from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from scaling.services.checks import instances_check_now
from scaling.services.instances import ResolutionError
from scaling.tasks import follow_later


class Command(BaseCommand):
    help = "Run the scaling engine once now for the named instances (all with scaling enabled if none named)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME")
        parser.add_argument("--dry-run", action="store_true", help="decide and record, change nothing")

    def handle(self, *args, **options):
        try:
            outcomes = instances_check_now(names=options["names"], dry_run=options["dry_run"], now=timezone.now(),
                                           follow_later=follow_later)
        except ResolutionError as error:
            raise CommandError(str(error)) from None
        for outcome in outcomes:
            self.stdout.write(f"{outcome.instance}: {outcome.outcome}: {outcome.detail}")
