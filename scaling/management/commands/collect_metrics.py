from django.core.management.base import BaseCommand, CommandError

from scaling.services.collection import instances_collect_now
from scaling.services.instances import ResolutionError


class Command(BaseCommand):
    help = "Take one sample now of the named instances (all if none named)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", metavar="NAME")

    def handle(self, *args, **options):
        try:
            result = instances_collect_now(names=options["names"])
        except ResolutionError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{result.stored} samples stored, {result.failed} of them failed reads")
