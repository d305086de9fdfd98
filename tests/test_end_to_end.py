"""The product as deployed: a real Celery worker and beat, PostgreSQL, a Redis broker, a
watched redis-server, the fake Heroku on a socket, and registration by add_redis_mon.py."""

import os
import signal
import subprocess
import sys
import time

import psycopg2
import pytest

from tests.helpers import ROOT, production_env, run, scratch_database

pytestmark = pytest.mark.slow


def _count_samples(url, name):
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE error = '') FROM logs_metriclog m "
            "JOIN scaling_redisinstance i ON i.id = m.instance_id WHERE i.name = %s", [name])
        return cursor.fetchone()


def _start(args, env, log_path):
    log = open(log_path, "w")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True), log


def test_a_registered_instance_is_sampled_by_the_worker_within_one_metric_interval(served_heroku, redis_server_factory, tmp_path):
    watched = redis_server_factory(password="watched-secret-pw")
    broker = redis_server_factory()
    served_heroku.add_redis_addon("shop", plan="heroku-redis:premium-0", config_var="REDIS_URL", url=watched.url)
    with scratch_database() as database_url:
        env = production_env(
            DEBUG="true", DATABASE_URL=database_url, CELERY_BROKER_URL=broker.url,
            HEROKU_API_URL=served_heroku.served_url, HEROKU_API_KEY=served_heroku.api_key,
            PYTHON=sys.executable, ALLOWED_HOSTS="localhost",
        )
        assert run(["bash", "initialize.sh"], env=env).returncode == 0
        registered = run([sys.executable, "add_redis_mon.py", "--name", "orders", "--app", "shop",
                          "--config-var", "REDIS_URL", "--metric-rate", "30s"], env=env)
        assert registered.returncode == 0, registered.stdout + registered.stderr

        celery = [sys.executable, "-m", "celery", "-A", "autoscaler"]
        worker, worker_log = _start(celery + ["worker", "--pool", "threads", "--concurrency", "4", "--without-gossip",
                                              "--without-mingle", "--loglevel", "INFO"], env, tmp_path / "worker.log")
        beat, beat_log = _start(celery + ["beat", "--loglevel", "INFO", "--pidfile=", "--schedule", str(tmp_path / "beat"),
                                          "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"], env, tmp_path / "beat.log")
        try:
            started = time.monotonic()
            counts = (0, 0)
            while time.monotonic() - started < 90 and counts[1] < 2:
                time.sleep(1)
                counts = _count_samples(database_url, "orders")
            elapsed = time.monotonic() - started
        finally:
            for process in (worker, beat):
                os.killpg(process.pid, signal.SIGTERM)
            for process in (worker, beat):
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            worker_log.close()
            beat_log.close()
        output = (tmp_path / "worker.log").read_text() + (tmp_path / "beat.log").read_text()
        assert counts[1] >= 2, f"{counts} samples after {elapsed:.0f}s\n{output[-3000:]}"
        assert elapsed < 30 + 30 + 15, "the first sample came later than one metric interval after start-up"
        assert "Traceback" not in output and " ERROR " not in output, output[-3000:]
        assert "watched-secret-pw" not in output + registered.stdout + registered.stderr
        # The worker spent no Heroku call on sampling: registration's 2 were all.
        assert len(served_heroku.calls) == 2
