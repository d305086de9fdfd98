from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from scaling.services.plan_prices import PlanPriceError, plan_prices_load_from_heroku
from scaling.services.plans import DEFAULT_PLANS_CSV, PlanDataError, plans_load


class Command(BaseCommand):
    help = ("Load plan data (service_name,plan_name,mem_limit,conn_limit,cost[,price_source,price_confirmed,source]);"
            " idempotent, all rows or none. --from-heroku: the prices from Heroku's API, the limits kept.")

    def add_arguments(self, parser):
        parser.add_argument("csv", nargs="?", help=f"a CSV file (default: the bundled {DEFAULT_PLANS_CSV.name})")
        parser.add_argument("--from-heroku", action="store_true",
                            help="read every plan's monthly price from Heroku (GET /addon-services/{service}/plans)")

    def handle(self, *args, **options):
        if options["from_heroku"]:
            if options["csv"]:
                raise CommandError("give a CSV or --from-heroku, not both")
            return self._from_heroku()
        try:
            result = plans_load(path=options["csv"])
        except PlanDataError as error:
            raise CommandError(f"nothing loaded: {error}") from None
        self.stdout.write(f"plans: {result.created} created, {result.updated} updated, {result.unchanged} unchanged")

    def _from_heroku(self):
        try:
            result = plan_prices_load_from_heroku(now=timezone.now())
        except PlanPriceError as error:
            raise CommandError(f"no price changed: {error}") from None
        write = self.stdout.write
        write(f"prices from Heroku ({', '.join(result.services)}, read {result.fetched_at:%Y-%m-%d %H:%M:%S} UTC): "
              f"{result.confirmed} plans priced, {len(result.changed)} changed")
        for change in result.changed:
            write(f"  {change.plan}: ${change.old} -> ${change.new} a month")
        if result.unknown:
            write(f"listed by Heroku, not in the plan data (not loaded: add their limits with your own CSV): "
                  f"{', '.join(result.unknown)}")
        if result.unlisted:
            write(f"in the plan data, not listed by Heroku (price kept as it was): {', '.join(result.unlisted)}")
