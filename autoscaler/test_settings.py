"""Settings for the test suite: the real PostgreSQL on the machine (TEST_DATABASE_URL)."""

import os

os.environ.setdefault("DEBUG", "true")
# A developer's .env (from scripts/run) must not leak into the tests, nor into the
# subprocesses they start, which inherit this environment.
os.environ.setdefault("ENV_FILE", "")
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-" + "0123456789" * 4)
os.environ.setdefault("HEROKU_API_URL", "https://heroku.test")

from autoscaler.settings import *  # noqa: E402,F403

import dj_database_url  # noqa: E402

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("TEST_DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/autoscaler"
    )
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
RECIPIENTS = ["ops@example.com"]
ENABLE_EMAILS = True
HEROKU_API_KEY = "test-api-key-0123456789"
CELERY_TASK_ALWAYS_EAGER = False
SITE_URL = "https://autoscaler.example.com"
PLAN_FOLLOW_SECONDS = 0
# A task sent by mistake in a test goes nowhere (never into var/broker of a local run).
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
