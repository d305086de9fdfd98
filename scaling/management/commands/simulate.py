import json

from django.core.management.base import BaseCommand, CommandError

from scaling.models import UNCONFIRMED_PRICE
from scaling.services.engine_input import METRIC_RATES, SCALING_RATES
from scaling.services.simulate import SimulationInputError, trace_simulate


def _duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Command(BaseCommand):
    help = ("Replay a recorded load (CSV: timestamp,used_memory,connected_clients, optionally evicted_keys,"
            "rejected_connections,keyspace_hits,keyspace_misses) through the scaling engine, offline.")

    def add_arguments(self, parser):
        parser.add_argument("trace", metavar="TRACE.csv")
        parser.add_argument("--plan", required=True, help="the plan at the start, e.g. heroku-redis:premium-0")
        parser.add_argument("--memory-threshold", type=int, default=80)
        parser.add_argument("--connection-threshold", type=int, default=80)
        parser.add_argument("--metric-rate", choices=list(METRIC_RATES), default="30s")
        parser.add_argument("--scaling-rate", choices=list(SCALING_RATES), default="1m")
        parser.add_argument("--min-plan")
        parser.add_argument("--max-plan")
        parser.add_argument("--change-delay", type=int, default=60, help="seconds from a decision until the plan change lands")
        parser.add_argument("--schedule", action="append", default=[], metavar='"DAYS HH:MM-HH:MM TZ PLAN"',
                            help="a minimum plan during a window, e.g. \"mon-fri 08:00-18:00 UTC premium-2\" (repeatable)")
        parser.add_argument("--schedule-lead", default="10", metavar="MIN",
                            help="minutes before a scheduled window its plan should be up (default 10)")
        parser.add_argument("--workload", choices=["queue", "cache"], default="queue",
                            help="cache: evictions are normal, scaled up on a hit rate under --min-hit-rate")
        parser.add_argument("--min-hit-rate", type=int, default=90, help="a cache's hit rate %% to keep (default 90)")
        parser.add_argument("--no-scale-down", dest="scale_down", action="store_false",
                            help="scale-in protection: the plan only ever moves up")
        parser.add_argument("--json", action="store_true", help="one JSON object instead of the report")

    def handle(self, *args, **options):
        try:
            report = trace_simulate(
                trace_path=options["trace"], plan=options["plan"], memory_threshold=options["memory_threshold"],
                connection_threshold=options["connection_threshold"], metric_rate=options["metric_rate"],
                scaling_rate=options["scaling_rate"], min_plan=options["min_plan"], max_plan=options["max_plan"],
                change_delay=options["change_delay"], schedules=options["schedule"],
                schedule_lead=options["schedule_lead"],
                workload=options["workload"],
                min_hit_rate=options["min_hit_rate"], scale_down=options["scale_down"],
            )
        except SimulationInputError as error:
            raise CommandError(str(error), returncode=2) from None
        result = report.result
        if options["json"]:
            self.stdout.write(json.dumps(result.to_json_dict(), indent=2))
            return
        write = self.stdout.write
        write(f"Simulated {_duration(result.duration_seconds)} of load from {options['trace']}, starting on {report.start_plan.name}")
        write("")
        write("Plan changes (decided at; lands after --change-delay):" if result.plan_changes else "Plan changes: none")
        for change in result.plan_changes:
            write(f"  {change.at:%Y-%m-%d %H:%M:%S}  {change.from_plan} -> {change.to_plan}")
            write(f"      {change.reason}")
        write("")
        write(f"{'':44}{'cost':>10}{'over threshold':>16}{'over capacity':>15}")
        for label, run in (("autoscaled", result), (f"fixed at max ({report.fixed_max.final_plan.name})", report.fixed_max),
                           (f"fixed at start ({report.start_plan.name})", report.fixed_start)):
            write(f"{label:44}{'$' + format(run.cost, '.2f'):>10}{_duration(run.seconds_over_threshold):>16}{_duration(run.seconds_over_capacity):>15}")
        write("")
        write(f"Final plan: {result.final_plan.name}")
        if report.unconfirmed_prices:
            write(f"{UNCONFIRMED_PRICE.capitalize()}s in these costs (nobody confirmed them; load_plans --from-heroku "
                  f"reads Heroku's): {', '.join(name.split(':', 1)[1] for name in report.unconfirmed_prices)}")
        write(f"Saved against the max plan: ${report.fixed_max.cost - result.cost:.2f}; "
              f"time over capacity avoided against the start plan: {_duration(report.fixed_start.seconds_over_capacity - result.seconds_over_capacity)}")
