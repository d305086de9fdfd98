"""The embedded default (SQLite) under the worker's concurrency, as scripts/run runs it."""

import json
import sys

import pytest

from tests.helpers import production_env, run

pytestmark = pytest.mark.slow


def test_several_instances_breaching_at_once_on_sqlite_are_all_checked_in_their_tick_without_a_lock_error(
        served_heroku, redis_server_factory, tmp_path):
    watched = redis_server_factory()
    # The Redis every instance watches really is at 95 % of premium-0 (50 MiB): the samples the
    # worker takes during the tick keep the window breaching.
    client = watched.client()
    chunk = b"x" * (256 * 1024)
    while client.info("memory")["used_memory"] < 0.95 * 50 * 1048576:
        client.set(f"load:{client.dbsize()}", chunk)
    instances = 6
    for number in range(instances):
        served_heroku.add_redis_addon(f"shop-{number}", plan="heroku-redis:premium-0", config_var="REDIS_URL",
                                      url=watched.url)
    env = production_env(
        DEBUG="true", ENV_FILE="", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL="memory://", HEROKU_API_URL=served_heroku.served_url, HEROKU_API_KEY=served_heroku.api_key,
        ENABLE_EMAILS="true", RECIPIENTS="ops@example.com", EMAIL_HOST="",
        PLAN_FOLLOW_SECONDS="0", LOG_LEVEL="INFO", INSTANCES=str(instances), WORKER_CONCURRENCY="8",
    )
    result = run([sys.executable, "-m", "tests.scaling.sqlite_breach_load"], env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    locked = [line for line in report["errors"] + report["logged"] if "locked" in line]
    assert not locked, locked
    assert report["errors"] == []
    assert report["scaled_up"] == {f"queue-{number}": True for number in range(instances)}, report
