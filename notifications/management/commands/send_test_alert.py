from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from notifications.services import UnknownChannel, alert_test_send


class Command(BaseCommand):
    help = "Send one `test` alert through the delivery relay, to every channel that receives it or to one."

    def add_arguments(self, parser):
        parser.add_argument("--channel", metavar="NAME", help="only this alert channel (admin: Alert channels)")

    def handle(self, *args, channel, **options):
        try:
            _, deliveries = alert_test_send(now=timezone.now(), channel_name=channel)
        except UnknownChannel as error:
            raise CommandError(str(error)) from None
        if not deliveries:
            raise CommandError("no alert channel receives the test event (admin: Alert channels)")
        for delivery in deliveries:
            self.stdout.write(f"queued for {delivery.channel.name} ({delivery.channel.kind}): delivery {delivery.pk}")
        self.stdout.write("deliveries are sent by the worker; see admin: Deliveries")
