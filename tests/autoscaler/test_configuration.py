"""Bad configuration stops start-up with one line and fails `check --deploy`; never a traceback."""

import sys

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from tests.factories import make_instance
from tests.helpers import ROOT, manage, production_env, run

VALID_KEY = Fernet.generate_key().decode()

BAD_VALUES = [
    ("ENCRYPTION_KEYS", "garbage", "ENCRYPTION_KEYS entry 1 of 1 is neither a Fernet key"),
    ("ENCRYPTION_KEYS", f"{VALID_KEY},not-a-key-at-all", "ENCRYPTION_KEYS entry 2 of 2 is neither a Fernet key"),
    ("ENCRYPTION_KEYS", VALID_KEY[:-4], "ENCRYPTION_KEYS entry 1 of 1 is neither a Fernet key"),
    ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'LOUD'"),
    ("DATABASE_URL", "nosuch://db.example.com/x", "DATABASE_URL must start with one of postgres://, sqlite://, ..., not 'nosuch'"),
    ("DATABASE_URL", "postgres://user:db-secret-pw@db.example.com:port/x", "DATABASE_URL is not a valid URL"),
    ("DATABASE_URL", "postgres://user:db-secret-pw@[db.example.com/x", "DATABASE_URL is not a valid URL"),
    ("WORKER_CONCURRENCY", "0", "WORKER_CONCURRENCY must be at least 1, not 0"),
    ("WORKER_CONCURRENCY", "eight", "WORKER_CONCURRENCY must be a whole number, not 'eight'"),
    ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be at least 1, not 0"),
    ("HEROKU_API_URL", "api.heroku.com", "HEROKU_API_URL must start with one of http://, https://, not 'none'"),
    ("REDIS_URL", "http://:broker-secret-pw@broker.example.com:6379", "REDIS_URL must start with one of"),
    ("RECIPIENTS", "ops@example.com,not an address", "RECIPIENTS must be e-mail addresses, comma separated; 'not an address' is not one"),
    ("REDIS_READ_TIMEOUT", "soon", "REDIS_READ_TIMEOUT must be a whole number, not 'soon'"),
    ("REDIS_READ_TIMEOUT", "99999999999999", "REDIS_READ_TIMEOUT must be at most 300, not 99999999999999"),
    ("N_RETENTION_DAYS", "99999999999", "N_RETENTION_DAYS must be at most 3650, not 99999999999"),
    ("EMAIL_PORT", "99999999", "EMAIL_PORT must be at most 65535, not 99999999"),
    ("PLAN_FOLLOW_SECONDS", "1" + "0" * 5000, "PLAN_FOLLOW_SECONDS must be a whole number of sensible size"),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, value, message", BAD_VALUES, ids=[f"{n}={v[:20]}" for n, v, _ in BAD_VALUES])
def test_a_malformed_setting_fails_check_deploy_with_one_line_and_no_secret(name, value, message):
    result = manage("check", "--deploy", env=production_env(**{name: value}))

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {message}"), lines[0]
    for secret in ("db-secret-pw", "broker-secret-pw", VALID_KEY):
        assert secret not in result.stderr + result.stdout


@pytest.mark.slow
def test_a_worker_with_a_concurrency_of_zero_does_not_start():
    celery = [sys.executable, "-m", "celery", "-A", "autoscaler", "worker", "--pool", "threads", "--without-gossip",
              "--without-mingle"]
    result = run(celery, env=production_env(WORKER_CONCURRENCY="0"), timeout=60)

    assert result.returncode != 0
    assert result.stderr.strip() == "configuration error: WORKER_CONCURRENCY must be at least 1, not 0"


@pytest.mark.slow
def test_derived_in_encryption_keys_is_accepted_and_check_deploy_is_clean():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    env=production_env(ENCRYPTION_KEYS=f"{VALID_KEY},derived", WORKER_CONCURRENCY="4"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_procfile_leaves_worker_concurrency_to_the_checked_setting():
    worker = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("worker:")][0]
    assert "--concurrency" not in worker and "WORKER_CONCURRENCY" not in worker


@pytest.mark.parametrize("setting, value, message", [
    ("ENCRYPTION_KEYS", ["garbage"], "ENCRYPTION_KEYS entry 1 of 1 is neither a Fernet key"),
    ("CELERY_WORKER_CONCURRENCY", 0, "WORKER_CONCURRENCY must be a whole number of at least 1, not 0"),
    ("REDIS_READ_TIMEOUT", 0, "REDIS_READ_TIMEOUT must be a positive number of seconds, not 0"),
])
def test_the_system_check_reports_settings_however_they_were_set(settings, setting, value, message):
    setattr(settings, setting, value)

    with pytest.raises(SystemCheckError) as caught:
        call_command("check", "--deploy")

    assert message in str(caught.value)


def test_the_system_check_reports_a_bad_log_level(settings):
    settings.LOGGING = {**settings.LOGGING, "root": {"handlers": ["console"], "level": "LOUD"}}

    with pytest.raises(SystemCheckError) as caught:
        call_command("check")

    assert "LOG_LEVEL must be one of" in str(caught.value)


@pytest.mark.django_db
def test_keys_that_cannot_read_the_stored_urls_fail_the_database_check_naming_the_instances(plans, settings):
    settings.ENCRYPTION_KEYS = [VALID_KEY]
    make_instance(name="orders", redis_url="redis://:orders-pw@redis.example.com:6379")
    make_instance(name="sessions", redis_url="redis://:sessions-pw@redis.example.com:6380")
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(SystemCheckError) as caught:
        call_command("check", databases=["default"])

    assert "ENCRYPTION_KEYS cannot decrypt 2 of 2 stored Redis URLs (orders, sessions)" in str(caught.value)
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode(), VALID_KEY]
    call_command("check", databases=["default"])


@pytest.mark.slow
@pytest.mark.parametrize("name, value", [
    ("DATABASE_URL", "postgres:///autoscaler"),  # a local socket
    ("DATABASE_URL", "sqlite:///relative.sqlite3"),
    ("REDIS_URL", "redis://"),
    ("LOG_LEVEL", "warning"),
])
def test_unusual_but_valid_values_start(name, value):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(**{name: value}))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_a_site_url_without_a_host_is_refused():
    result = manage("check", env=production_env(SITE_URL="https://"))
    assert result.stderr.strip() == "configuration error: SITE_URL has no host name"
