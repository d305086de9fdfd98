"""Another worker's claim on an instance, as the check's advisory lock sees it (PostgreSQL)."""

import time
from contextlib import contextmanager

import psycopg2
from django.db import connection

from scaling.services.checks import CHECK_LOCK_SPACE


@contextmanager
def claimed_by_another_worker(instance_id):
    """Another worker's connection holds the instance's check lock; closing it (as the death
    of that worker would) frees the instance."""
    database = connection.settings_dict
    other = psycopg2.connect(dbname=database["NAME"], user=database["USER"], host=database["HOST"],
                             port=database["PORT"])
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [CHECK_LOCK_SPACE, instance_id])
        yield
    finally:
        other.close()
        wait_until_the_lock_is_gone(instance_id)


def wait_until_the_lock_is_gone(instance_id):
    """The server drops a closed connection's locks as its backend exits, a moment later."""
    for _ in range(500):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s",
                           [CHECK_LOCK_SPACE, instance_id])
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.01)
    raise AssertionError(f"the check lock of instance {instance_id} outlived its connection")
