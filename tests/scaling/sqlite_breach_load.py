"""Run by tests/scaling/test_sqlite_concurrency.py in its own process, on a SQLite database.

Sets the database up as scripts/run does (migrate, plans), registers INSTANCES instances
through add_redis_mon.py against the fake Heroku (HEROKU_API_URL), gives each a window of
samples at 95 % memory, then does one tick of the worker's work as the worker does it: the
tasks of every instance (a check and a sample each) on a pool of WORKER_CONCURRENCY threads,
each thread with its own database connection. Prints one JSON line: the errors raised or
logged, and per instance whether its scale-up was sent in this tick.
"""

import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autoscaler.settings")
import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.utils import timezone  # noqa: E402

import add_redis_mon  # noqa: E402
from logs.models import MetricLog, ScalingAction  # noqa: E402
from scaling.models import RedisInstance  # noqa: E402
from scaling.tasks import check_instance, collect_samples  # noqa: E402

INSTANCES = int(os.environ.get("INSTANCES", "6"))
THREADS = int(os.environ.get("WORKER_CONCURRENCY", "8"))


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def main():
    assert connection.vendor == "sqlite", connection.vendor
    call_command("migrate", verbosity=0)
    call_command("load_plans", verbosity=0)
    for number in range(INSTANCES):
        code = add_redis_mon.main([
            "--name", f"queue-{number}", "--app", f"shop-{number}", "--config-var", "REDIS_URL",
            "--metric-rate", "30s", "--scaling-rate", "1m", "--max-plan", "premium-5",
        ])
        assert code == 0, f"registration {number} exited {code}"
    now = timezone.now()
    for instance in RedisInstance.objects.with_plans():
        MetricLog.objects.bulk_create(
            MetricLog(instance=instance, slot=now - timedelta(seconds=30 * age), collected_at=now - timedelta(seconds=30 * age),
                      plan=instance.current_plan, used_memory=int(instance.current_plan.mem_limit_bytes * 0.95),
                      memory_pct=95.0, connected_clients=5, connection_pct=1.0, evicted_keys=0, rejected_connections=0)
            for age in range(1, 11)
        )
    connection.close()

    collected = Collect()
    logging.getLogger().addHandler(collected)
    errors = []
    tick = timezone.now().replace(microsecond=0)

    def in_a_worker_thread(task, *args):
        try:
            task(*args)
        except Exception as error:  # noqa: BLE001 - reported, as the worker would log it
            errors.append(f"{task.name}: {error.__class__.__name__}: {error}")
        finally:
            connections.close_all()

    ids = list(RedisInstance.objects.values_list("pk", flat=True))
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for pk in ids:
            pool.submit(in_a_worker_thread, check_instance, pk, tick.isoformat())
            pool.submit(in_a_worker_thread, collect_samples, [[pk, tick.isoformat()]])
    scaled = {
        instance.name: ScalingAction.objects.filter(instance=instance, direction="up").exclude(status="failed").exists()
        for instance in RedisInstance.objects.all()
    }
    print(json.dumps({"errors": errors, "logged": collected.lines, "scaled_up": scaled}))


if __name__ == "__main__":
    sys.exit(main())
