"""Several instances breaching at once under scripts/run's own worker, on the embedded
SQLite default, with the admin user as the only mail address."""

import signal
import time

import pytest

from standins.redis_servers import free_port
from tests.scripts.local_run import LocalRun, clean_env, working_tree_copy

pytestmark = pytest.mark.slow

INSTANCES = 6

# Gives every instance a window of samples at 95 % memory and makes its check due now, so
# that the next dispatcher tick sends all the checks at once to the worker's threads.
BREACH = """
from datetime import timedelta
from django.utils import timezone
from logs.models import MetricLog
from scaling.models import RedisInstance
now = timezone.now()
for instance in RedisInstance.objects.with_plans():
    MetricLog.objects.bulk_create(
        MetricLog(instance=instance, slot=now - timedelta(seconds=30 * age), collected_at=now - timedelta(seconds=30 * age),
                  plan=instance.current_plan, used_memory=int(instance.current_plan.mem_limit_bytes * 0.95),
                  memory_pct=95.0, connected_clients=5, connection_pct=12.5, evicted_keys=0, rejected_connections=0)
        for age in range(1, 11))
RedisInstance.objects.update(next_check_at=now)
"""

SCALED = """
from logs.models import ScalingAction
print(ScalingAction.objects.filter(direction="up").exclude(status="failed").values("instance").distinct().count())
"""


def test_instances_breaching_at_once_on_sqlite_are_all_scaled_up_by_scripts_run_and_mailed_to_the_admin(
        served_heroku, redis_server_factory, tmp_path):
    watched = redis_server_factory()
    client = watched.client()
    while client.info("memory")["used_memory"] < 0.95 * 50 * 1048576:
        client.set(f"load:{client.dbsize()}", b"x" * (256 * 1024))
    for number in range(INSTANCES):
        served_heroku.add_redis_addon(f"shop-{number}", plan="heroku-redis:premium-0", config_var="REDIS_URL", url=watched.url)

    clone = working_tree_copy(tmp_path / "clone")
    # What a user puts in the .env the first run wrote (here before it, with the fake Heroku).
    (clone / ".env").write_text(
        f"DEBUG=true\nSECRET_KEY=local-run-secret-{'0123456789' * 4}\n"
        f"HEROKU_API_KEY={served_heroku.api_key}\nHEROKU_API_URL={served_heroku.served_url}\n")
    env = clean_env()
    run = LocalRun(clone, clean_env(PORT=str(free_port())))
    try:
        assert run.ready(), run.output[-3000:]
        for number in range(INSTANCES):
            registered = _python(clone, env, "add_redis_mon.py", "--name", f"queue-{number}", "--app", f"shop-{number}",
                                 "--config-var", "REDIS_URL", "--metric-rate", "30s", "--max-plan", "premium-5")
            assert registered.returncode == 0, registered.stdout + registered.stderr
        breach = _python(clone, env, "manage.py", "shell", "-c", BREACH)
        assert breach.returncode == 0, breach.stderr

        scaled, deadline = 0, time.monotonic() + 120
        while scaled < INSTANCES and time.monotonic() < deadline and run.process.poll() is None:
            time.sleep(2)
            scaled = int(_python(clone, env, "manage.py", "shell", "-c", SCALED).stdout.split()[-1])
        # The mails of the last checks are written after their action.
        run.wait_for(*[f"queue-{number}: scal" for number in range(INSTANCES)], timeout=30)
    finally:
        if run.process.poll() is None:
            run.process.send_signal(signal.SIGTERM)
        status = run.wait(timeout=90)

    output = run.output
    assert scaled == INSTANCES, output[-4000:]
    assert status == 0
    assert "database is locked" not in output
    assert "celery.redirected" not in output, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    # RECIPIENTS is empty: the mails are printed whole, addressed to scripts/run's admin user.
    mails = output.count("INFO notifications.mail: mail (printed")
    assert mails >= INSTANCES, output[-4000:]
    assert "To: admin@localhost" in output
    assert "http://127.0.0.1:" in output and "/admin/scaling/redisinstance/" in output


def _python(clone, env, *args):
    import subprocess

    return subprocess.run([str(clone / ".venv/bin/python"), *args], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=120)
