from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from autoscaler.env import env_str


class Command(BaseCommand):
    help = "Create the admin user from DJANGO_SUPERUSER_USERNAME/_PASSWORD/_EMAIL unless it exists (never changes it)."

    def handle(self, *args, **options):
        username = env_str("DJANGO_SUPERUSER_USERNAME")
        password = env_str("DJANGO_SUPERUSER_PASSWORD")
        email = env_str("DJANGO_SUPERUSER_EMAIL")
        if not username or not password:
            raise CommandError("DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD must both be set")
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"admin user {username!r} exists; left as it is")
            return
        User.objects.create_superuser(username=username, email=email, password=password)
        self.stdout.write(f"admin user {username!r} created")
