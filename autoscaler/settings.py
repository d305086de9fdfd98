"""Django settings: every value comes from the environment (DESIGN section 3).

The defaults let a fresh clone run with nothing installed: SQLite, a filesystem Celery
broker, mails printed to the console. With DEBUG off (the default, and production)
SECRET_KEY and ALLOWED_HOSTS must be set, or start-up stops with one line saying so.
"""

import secrets
from pathlib import Path

import dj_database_url

from autoscaler.env import ConfigurationError, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state of a development run (SQLite file, filesystem broker); never used on Heroku.
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DEBUG", False)


def _dev_secret_key():
    """A random key kept in var/ so that sessions survive restarts of a local run."""
    key_file = VAR_DIR / "dev-secret-key"
    if not key_file.exists():
        VAR_DIR.mkdir(exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not DEBUG:
    if not SECRET_KEY:
        raise ConfigurationError("SECRET_KEY is not set: set it (50+ random characters) or set DEBUG=true for local use")
    if not ALLOWED_HOSTS:
        raise ConfigurationError("ALLOWED_HOSTS is not set: set it to the app's host names, comma separated (e.g. myapp.herokuapp.com)")
else:
    SECRET_KEY = SECRET_KEY or _dev_secret_key()
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
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15, minimum=1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Heroku's router appends the client address to X-Forwarded-For.
AXES_IPWARE_PROXY_COUNT = 1 if not DEBUG else None
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

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
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
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
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = [f"https://{host}" for host in ALLOWED_HOSTS if host and not host.startswith(("[", "*"))]

# --- Celery: broker from REDIS_URL / CELERY_BROKER_URL, else a filesystem broker ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or env_str("REDIS_URL")
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://localhost//"
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
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

# --- Heroku Platform API ---
HEROKU_API_KEY = env_str("HEROKU_API_KEY")
HEROKU_API_URL = env_str("HEROKU_API_URL", "https://api.heroku.com").rstrip("/")
# Calls kept back from collection/reconciliation so that plan changes can always be made.
HEROKU_API_RESERVE = env_int("HEROKU_API_RESERVE", 500, minimum=0)

# Fernet keys for Redis URLs at rest, newest first (comma separated). Unset: derived from
# SECRET_KEY. Rotation: put a new key first, run `manage.py rotate_encryption_key`, then
# drop the old key.
ENCRYPTION_KEYS = env_list("ENCRYPTION_KEYS")

# --- Mail ---
ENABLE_EMAILS = env_bool("ENABLE_EMAILS", True)
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
SERVER_EMAIL = env_str("SERVER_EMAIL", "autoscaler@localhost")
DEFAULT_FROM_EMAIL = SERVER_EMAIL
RECIPIENTS = env_list("RECIPIENTS")
EMAIL_PREFIX = env_str("EMAIL_PREFIX", "[redis-autoscaler] ")
if EMAIL_PREFIX and not EMAIL_PREFIX.endswith(" "):
    EMAIL_PREFIX += " "
EMAIL_SUBJECT_PREFIX = EMAIL_PREFIX
# The same alert condition is mailed again only after this many seconds.
ALERT_REPEAT_SECONDS = env_int("ALERT_REPEAT_SECONDS", 3600, minimum=60)
# Public address of this app, for links in mails (e.g. https://myapp.herokuapp.com).
SITE_URL = env_str("SITE_URL", "").rstrip("/")

# --- Retention ---
N_RETENTION_DAYS = env_int("N_RETENTION_DAYS", 30, minimum=1)

# --- Logging: secrets are redacted from every record ---
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "autoscaler.redaction.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "axes": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}

# --- Scaling ---
# How long a check follows a plan change it just made before leaving it to the next check.
PLAN_FOLLOW_SECONDS = env_int("PLAN_FOLLOW_SECONDS", 60, minimum=0)
REDIS_CONNECT_TIMEOUT = env_int("REDIS_CONNECT_TIMEOUT", 5, minimum=1)
REDIS_READ_TIMEOUT = env_int("REDIS_READ_TIMEOUT", 5, minimum=1)

# --- Operating it (operations app) ---
# GET /metrics answers only with `Authorization: Bearer $METRICS_TOKEN`; unset: 404.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# A summary of the past week (changes, time breaching, alerts, cost, savings) mailed on Mondays.
WEEKLY_SUMMARY = env_bool("WEEKLY_SUMMARY", False)
