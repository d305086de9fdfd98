"""Django settings: every value comes from the environment (DESIGN section 3).

The defaults let a fresh clone run with nothing installed: SQLite, a filesystem Celery
broker, mails printed whole in the log. SECRET_KEY, and with DEBUG off (the default, and
production) ALLOWED_HOSTS, must be set, or start-up stops with one line saying so.

Local runs keep their settings in `.env` beside manage.py (written by the first
`scripts/run`, git-ignored), read here when it exists; a variable of the real environment
wins over it. Heroku has no `.env` (it is git-ignored), so production reads only its config
vars. `ENV_FILE` names another file, or none when empty (the tests, the deploy check).
Importing these settings creates no file or folder.
"""

import os
from pathlib import Path

from dotenv import load_dotenv

from autoscaler.env import (
    ConfigurationError, env_bool, env_database, env_emails, env_encryption_keys, env_int, env_list, env_log_level,
    env_str, env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE:
    load_dotenv(ENV_FILE, override=False)
# Local state of a development run (filesystem broker, run lock); never used on Heroku.
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not SECRET_KEY:
    raise ConfigurationError(
        "SECRET_KEY is not set: set it (50+ random characters)"
        + (" or run scripts/run once, which writes one into .env" if DEBUG else "")
    )
if not DEBUG:
    if not ALLOWED_HOSTS:
        raise ConfigurationError("ALLOWED_HOSTS is not set: set it to the app's host names, comma separated (e.g. myapp.herokuapp.com)")
else:
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "autoscaler.admin_apps.AutoscalerAdminConfig",  # django.contrib.admin, Redis instances first
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "axes",
    "scaling",
    "logs",
    "notifications",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Admin login rate limit (django-axes): after AXES_FAILURE_LIMIT failed logins for a user
# name from one address, that pair is locked out for AXES_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1, maximum=525600) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Keyed on the client, not on Heroku's router (REMOTE_ADDR): the router APPENDS the address
# that connected to it to X-Forwarded-For, so the client is the last entry, and anything
# before it was written by the client. In django-ipware's terms: no proxy inside the
# chain (count 0, read from the right end), and a chain of any length accepted (not strict).
AXES_IPWARE_PROXY_ORDER = "left-most"
AXES_IPWARE_PROXY_COUNT = 0
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
IPWARE_STRICT = False

ROOT_URLCONF = "autoscaler.urls"
WSGI_APPLICATION = "autoscaler.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env_database(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0, maximum=86400),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default must take the worker's threads writing at once: the write-ahead
    # log lets readers go on beside the writer, IMMEDIATE transactions take the write lock at
    # BEGIN (a deferred one that read first fails at once with "database is locked" when it
    # tries to write), and the busy timeout makes a writer wait its turn instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    })
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# In DEBUG (local runs) gunicorn serves static files straight from the apps, no collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security (python manage.py check --deploy is clean with DEBUG off) ---
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # Heroku's router terminates TLS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0, maximum=63072000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = [f"https://{host}" for host in ALLOWED_HOSTS if host and not host.startswith(("[", "*"))]

# --- Celery: broker from REDIS_URL / CELERY_BROKER_URL, else a filesystem broker ---
_BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "memory", "filesystem")
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", "", schemes=_BROKER_SCHEMES) or env_url("REDIS_URL", "", schemes=_BROKER_SCHEMES)
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://localhost//"
    # Every folder of this broker under var/broker (kombu's default puts the exchange tables
    # in ./control); autoscaler/celery.py makes them when Celery starts, not at import.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith("rediss://"):
    # Heroku Key-Value Store serves TLS with a self-signed certificate.
    import ssl

    CELERY_BROKER_USE_SSL = {"ssl_cert_reqs": ssl.CERT_NONE}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Tasks are claimed in the database; a late ack lets a killed worker's task run again,
# and the claim makes the second run a no-op where the first had finished.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# What a library prints is ordinary output, not a warning.
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
# Worker threads (the Procfile leaves it to this setting, so a bad value stops with one line).
CELERY_WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 8, minimum=1, maximum=256)
# gunicorn reads WEB_CONCURRENCY itself; checked here so that 0 or a word stops start-up.
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", 2, minimum=1, maximum=64)

# --- Heroku Platform API ---
HEROKU_API_KEY = env_str("HEROKU_API_KEY")
HEROKU_API_URL = env_url("HEROKU_API_URL", "https://api.heroku.com", schemes=("https", "http")).rstrip("/")
# Calls kept back from collection/reconciliation so that plan changes can always be made.
HEROKU_API_RESERVE = env_int("HEROKU_API_RESERVE", 500, minimum=0, maximum=4500)

# Fernet keys for Redis URLs at rest, newest first (comma separated); the word `derived`
# stands for the key derived from SECRET_KEY, which is the only key when this is unset.
# Rotation: put a new key first, run `manage.py rotate_encryption_key`, then drop the old
# key (README, Key rotation).
ENCRYPTION_KEYS = env_encryption_keys("ENCRYPTION_KEYS")

# --- Mail ---
ENABLE_EMAILS = env_bool("ENABLE_EMAILS", True)
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1, maximum=600)
# Without an SMTP server each mail is printed whole as one INFO record of the log.
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "notifications.backends.LogEmailBackend"
SERVER_EMAIL = env_str("SERVER_EMAIL", "autoscaler@localhost")
DEFAULT_FROM_EMAIL = SERVER_EMAIL
# Empty: the active admin users' addresses (notifications/services.py).
RECIPIENTS = env_emails("RECIPIENTS")
EMAIL_PREFIX = env_str("EMAIL_PREFIX", "[redis-autoscaler] ")
if EMAIL_PREFIX and not EMAIL_PREFIX.endswith(" "):
    EMAIL_PREFIX += " "
EMAIL_SUBJECT_PREFIX = EMAIL_PREFIX
# The same alert condition is mailed again only after this many seconds.
ALERT_REPEAT_SECONDS = env_int("ALERT_REPEAT_SECONDS", 3600, minimum=60, maximum=2592000)
# --- Alert channels (DESIGN section 9; notifications/channels.py): each variable makes or
# updates one channel at start-up (every `migrate`: Heroku's release phase, initialize.sh).
SLACK_WEBHOOK_URL = env_url("SLACK_WEBHOOK_URL", "", schemes=("https", "http"))
ALERT_WEBHOOK_URL = env_url("ALERT_WEBHOOK_URL", "", schemes=("https", "http"))
ALERT_WEBHOOK_SECRET = env_str("ALERT_WEBHOOK_SECRET")
# Public address of this app, for absolute links in mails (e.g. https://myapp.herokuapp.com).
# Unset: the local address of scripts/run in DEBUG, else the first of ALLOWED_HOSTS.
SITE_URL = env_url("SITE_URL", "", schemes=("https", "http")).rstrip("/")
if not SITE_URL and DEBUG:
    SITE_URL = "http://127.0.0.1:8000"
elif not SITE_URL:
    _named_hosts = [host for host in ALLOWED_HOSTS if host and not host.startswith((".", "*", "["))]
    SITE_URL = f"https://{_named_hosts[0]}" if _named_hosts else ""

# --- Retention ---
N_RETENTION_DAYS = env_int("N_RETENTION_DAYS", 30, minimum=1, maximum=3650)

# --- Logging: secrets are redacted from every record ---
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "autoscaler.redaction.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": env_log_level("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "axes": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # Its DEBUG records name each request's path, and a webhook's path is its secret.
        "urllib3": {"level": "INFO"},
    },
}

# --- Scaling ---
# How often a pending plan change is looked at (a follow task each time, never a sleeping worker).
PLAN_FOLLOW_SECONDS = env_int("PLAN_FOLLOW_SECONDS", 20, minimum=0, maximum=3600)
REDIS_CONNECT_TIMEOUT = env_int("REDIS_CONNECT_TIMEOUT", 5, minimum=1, maximum=300)
REDIS_READ_TIMEOUT = env_int("REDIS_READ_TIMEOUT", 5, minimum=1, maximum=300)

# --- Operating it (operations app) ---
# GET /metrics answers only with `Authorization: Bearer $METRICS_TOKEN`; unset: 404.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# A summary of the past week (changes, time breaching, alerts, cost, savings) mailed on Mondays.
WEEKLY_SUMMARY = env_bool("WEEKLY_SUMMARY", False)
