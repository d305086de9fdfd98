from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from scaling.services.encryption import UnreadableURLs, redis_urls_reencrypt


class Command(BaseCommand):
    help = ("Re-encrypt every stored Redis URL with the first key of ENCRYPTION_KEYS (after adding a new key "
            "first; README, Key rotation).")

    def add_arguments(self, parser):
        parser.add_argument("--forget-unreadable", action="store_true",
                            help="clear URLs no configured key can read; they are read again from Heroku")

    def handle(self, *args, forget_unreadable, **options):
        try:
            result = redis_urls_reencrypt(forget_unreadable=forget_unreadable)
        except (UnreadableURLs, ImproperlyConfigured) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"{result.reencrypted} Redis URLs re-encrypted with the newest key")
        if result.channels_reencrypted:
            self.stdout.write(f"{result.channels_reencrypted} alert channels' URLs and secrets re-encrypted")
        if result.forgotten:
            self.stdout.write(f"{len(result.forgotten)} unreadable URLs cleared, to be read again from Heroku: "
                              + ", ".join(result.forgotten))
