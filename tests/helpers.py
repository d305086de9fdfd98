"""Running the project's own commands as a user would: real processes, real databases."""

import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = os.environ.get("TEST_ADMIN_DSN", "dbname=postgres user=postgres host=127.0.0.1 port=5432")


def production_env(**overrides):
    """The environment of a production process (DEBUG off), without the test settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DEBUG", "PYTEST"))}
    env.update(
        DJANGO_SETTINGS_MODULE="autoscaler.settings",
        DEBUG="false",
        SECRET_KEY="k" * 20 + uuid.uuid4().hex + uuid.uuid4().hex,
        ALLOWED_HOSTS="autoscaler.example.com",
        HEROKU_API_KEY="test-api-key-0123456789",
    )
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def run(args, *, env, timeout=120, stdin=None):
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, input=stdin,
    )


def manage(*args, env, **kwargs):
    return run([sys.executable, "manage.py", *args], env=env, **kwargs)


@contextmanager
def scratch_database():
    """A new, empty PostgreSQL database (dropped afterwards); yields its URL."""
    name = f"autoscaler_scratch_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(ADMIN_DSN)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def alerts_delivered():
    """Every alert delivery waiting, attempted as the worker's task would at its due time (no
    Celery, no sleeping); returns Django's test outbox of mails."""
    from django.core import mail

    from notifications.models import Delivery
    from notifications.relay import delivery_attempt

    waiting = Delivery.objects.filter(status=Delivery.Status.PENDING).order_by("alert__created_at", "alert_id")
    for delivery_id, due in waiting.values_list("pk", "next_try_at"):
        delivery_attempt(delivery_id=delivery_id, now=due)
    return mail.outbox
