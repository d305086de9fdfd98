"""A throwaway PostgreSQL database for a benchmark run (shared by the benchmark scripts).

    with scratch_database() as name:     # CREATE DATABASE autoscaler_bench_<random>, django.setup(), migrate
        ...                               # Django is configured and points at it
    # dropped here, also after an error or Ctrl-C

It connects to the server named by the settings' default database (the test settings:
postgres@127.0.0.1:5432), creates a database with a random name, points Django's
DATABASES at it *before* ``django.setup()``, runs the migrations and loads the bundled plan
data. On the way out every connection is closed and the database dropped
(``DROP DATABASE ... WITH (FORCE)``, so a connection left open by a pool thread does not
keep it alive). ``synchronous_commit=False`` sets ``synchronous_commit = off`` on the
scratch database (commits do not wait for the disk).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autoscaler.test_settings")


def _admin_connection(db_settings):
    import psycopg2

    connection = psycopg2.connect(
        dbname="postgres",
        user=db_settings.get("USER") or "postgres",
        password=db_settings.get("PASSWORD") or None,
        host=db_settings.get("HOST") or "127.0.0.1",
        port=db_settings.get("PORT") or 5432,
    )
    connection.autocommit = True
    return connection


@contextlib.contextmanager
def scratch_database(*, prefix="autoscaler_bench", verbose=True, synchronous_commit=True):
    from django.conf import settings

    db_settings = settings.DATABASES["default"]
    if "postgresql" not in db_settings.get("ENGINE", ""):
        raise SystemExit(f"the benchmarks need PostgreSQL; settings give {db_settings.get('ENGINE')}")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = _admin_connection(db_settings)
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
        if not synchronous_commit:
            # Commits do not wait for the WAL flush (a crash could lose the last ones: fine
            # for a throwaway database, and it takes the disk out of a CPU-bound simulation).
            cursor.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
    if verbose:
        print(f"scratch database {name} created", flush=True)
    try:
        db_settings["NAME"] = name
        db_settings.pop("TEST", None)

        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        from scaling.services.plans import plans_load

        plans_load()
        yield name
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - dropping matters more
            pass
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        if verbose:
            print(f"scratch database {name} dropped", flush=True)


def reset_instances():
    """Delete every instance and what hangs off it (samples, actions, mails); plans stay."""
    from django.db import connection

    from logs.models import MetricLog, ScalingAction
    from notifications.models import Notification
    from scaling.models import RedisInstance

    tables = [model._meta.db_table for model in (MetricLog, ScalingAction, Notification, RedisInstance)]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
