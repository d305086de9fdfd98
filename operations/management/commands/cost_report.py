import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from operations.cost import BadReportWindow, cost_report_build, report_window
from operations.cost_text import cost_report_lines


class Command(BaseCommand):
    help = ("Cost of each instance's plans over a window (default: this month so far), what its max "
            "plan and its highest used plan would have cost, and the savings.")

    def add_arguments(self, parser):
        parser.add_argument("--since", help="YYYY-MM-DD (00:00 UTC) or ISO date and time; default: start of this month")
        parser.add_argument("--until", help="YYYY-MM-DD (that day included) or ISO date and time; default: now")
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object with stable keys")

    def handle(self, *args, since=None, until=None, as_json=False, **options):
        try:
            since, until = report_window(since_text=since, until_text=until, now=timezone.now())
        except BadReportWindow as error:
            raise CommandError(str(error)) from None
        report = cost_report_build(since=since, until=until)
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write("\n".join(cost_report_lines(report)))

