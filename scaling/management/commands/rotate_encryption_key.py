from django.core.management.base import BaseCommand
from django.db import transaction

from scaling.crypto import reencrypt
from scaling.models import RedisInstance


class Command(BaseCommand):
    help = "Re-encrypt every stored Redis URL with the first key of ENCRYPTION_KEYS (after adding a new key)."

    @transaction.atomic
    def handle(self, *args, **options):
        count = 0
        for instance in RedisInstance.objects.select_for_update().exclude(redis_url_encrypted=""):
            RedisInstance.objects.filter(pk=instance.pk).update(redis_url_encrypted=reencrypt(instance.redis_url_encrypted))
            count += 1
        self.stdout.write(f"{count} Redis URLs re-encrypted with the newest key")
