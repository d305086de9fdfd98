from django.core.management.base import BaseCommand, CommandError

from scaling.services.plans import DEFAULT_PLANS_CSV, PlanDataError, plans_load


class Command(BaseCommand):
    help = "Load plan data (service_name,plan_name,mem_limit,conn_limit,cost); idempotent, all rows or none."

    def add_arguments(self, parser):
        parser.add_argument("csv", nargs="?", help=f"a CSV file (default: the bundled {DEFAULT_PLANS_CSV.name})")

    def handle(self, *args, **options):
        try:
            result = plans_load(path=options["csv"])
        except PlanDataError as error:
            raise CommandError(f"nothing loaded: {error}") from None
        self.stdout.write(f"plans: {result.created} created, {result.updated} updated, {result.unchanged} unchanged")
