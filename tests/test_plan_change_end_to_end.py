"""A plan change through the product as deployed: `check_scaling` sends the PATCH and
returns; a real Celery worker, fed by a Redis broker, runs the follow task it scheduled
(PLAN_FOLLOW_SECONDS later, again while Heroku provisions) and records the new plan."""

import os
import signal
import subprocess
import sys
import time

import psycopg2
import pytest

from tests.helpers import ROOT, production_env, run, scratch_database
from tests.scaling.live import fill

pytestmark = pytest.mark.slow


def _action(url, name):
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.status, a.created_at, a.patch_sent_at, a.finished_at, p.plan_name FROM logs_scalingaction a "
            "JOIN scaling_redisinstance i ON i.id = a.instance_id JOIN scaling_redisplan p ON p.id = i.current_plan_id "
            "WHERE i.name = %s ORDER BY a.created_at", [name])
        return cursor.fetchall()



def test_the_worker_follows_the_plan_change_the_check_left_pending(served_heroku, redis_server_factory, tmp_path):
    watched = redis_server_factory()
    broker = redis_server_factory()
    served_heroku.add_redis_addon("shop", plan="heroku-redis:premium-0", config_var="REDIS_URL", url=watched.url)
    served_heroku.plan_change_seconds = 4  # Heroku provisions the new plan in 4 s
    fill(watched, 45)  # 90 % of premium-0's 50 MB
    with scratch_database() as database_url:
        env = production_env(
            DEBUG="true", DATABASE_URL=database_url, CELERY_BROKER_URL=broker.url, PLAN_FOLLOW_SECONDS="1",
            HEROKU_API_URL=served_heroku.served_url, HEROKU_API_KEY=served_heroku.api_key, ALLOWED_HOSTS="localhost",
            PYTHON=sys.executable,
        )
        assert run(["bash", "initialize.sh"], env=env).returncode == 0
        registered = run([sys.executable, "add_redis_mon.py", "--name", "orders", "--app", "shop",
                          "--config-var", "REDIS_URL", "--min-plan", "premium-0", "--max-plan", "premium-3"], env=env)
        assert registered.returncode == 0, registered.stdout + registered.stderr
        for _ in range(4):
            assert run([sys.executable, "manage.py", "collect_metrics", "orders"], env=env).returncode == 0
            time.sleep(1)  # one sample per slot: each its own second

        checked = run([sys.executable, "manage.py", "check_scaling", "orders"], env=env)
        assert "orders: pending: heroku-redis:premium-1 is provisioning" in checked.stdout, checked.stdout + checked.stderr
        [(status, *_rest)] = _action(database_url, "orders")
        assert status == "pending"

        log = open(tmp_path / "worker.log", "w")
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "autoscaler", "worker", "--pool", "threads",
                                   "--concurrency", "2", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            started = time.monotonic()
            while time.monotonic() - started < 60 and _action(database_url, "orders")[0][0] == "pending":
                time.sleep(0.5)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
            log.close()
        output = (tmp_path / "worker.log").read_text()
        [(status, created_at, patch_sent_at, finished_at, plan)] = _action(database_url, "orders")

    assert (status, plan) == ("succeeded", "heroku-redis:premium-1"), output[-3000:]
    assert created_at < patch_sent_at < finished_at
    assert "scaling.follow_plan_change" in output and "Traceback" not in output, output[-3000:]
    assert served_heroku.count("PATCH") == 1
