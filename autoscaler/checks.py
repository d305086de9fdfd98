"""System checks for the configuration as loaded (`manage.py check`, `check --deploy`, and
the checks `migrate` runs on release).

Settings read from the environment already stop start-up on a bad value (autoscaler/env.py);
these say the same of the settings however they were set, and, where a database is given
(`check --database default`, `migrate`), whether ENCRYPTION_KEYS can read every stored
Redis URL and Heroku account API key: keys that are well-formed but wrong leave the fleet unmonitored.
"""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import DatabaseError, connections

from autoscaler.env import encryption_keys_problem, log_level_problem


@register()
def configuration_check(app_configs=None, **kwargs):
    errors = []
    problem = encryption_keys_problem(list(getattr(settings, "ENCRYPTION_KEYS", [])))
    if problem:
        errors.append(Error(problem, id="autoscaler.E001"))
    level = settings.LOGGING.get("root", {}).get("level", "INFO") if isinstance(settings.LOGGING, dict) else "INFO"
    problem = log_level_problem(level)
    if problem:
        errors.append(Error(problem, id="autoscaler.E002"))
    concurrency = getattr(settings, "CELERY_WORKER_CONCURRENCY", 1)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        errors.append(Error(f"WORKER_CONCURRENCY must be a whole number of at least 1, not {concurrency!r}",
                            id="autoscaler.E003"))
    for name in ("REDIS_CONNECT_TIMEOUT", "REDIS_READ_TIMEOUT"):
        value = getattr(settings, name, 1)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            errors.append(Error(f"{name} must be a positive number of seconds, not {value!r}", id="autoscaler.E004"))
    return errors


# (model, encrypted field, what it holds, check id): every secret stored encrypted.
_STORED_SECRETS = (
    ("RedisInstance", "redis_url_encrypted", "Redis URLs", "autoscaler.E005"),
    ("HerokuAccount", "api_key_encrypted", "Heroku account API keys", "autoscaler.E006"),
)


@register(Tags.database)
def stored_urls_readable_check(app_configs=None, databases=None, **kwargs):
    if not databases:
        return []
    from scaling import models

    errors = []
    for model_name, field, what, check_id in _STORED_SECRETS:
        errors += _stored_secrets_readable(getattr(models, model_name), field, what, check_id)
    return errors


def _stored_secrets_readable(model, field, what, check_id):
    from scaling.crypto import DecryptionError, decrypt

    try:
        if model._meta.db_table not in connections["default"].introspection.table_names():
            return []  # not migrated yet
        rows = list(model.objects.exclude(**{field: ""}).values_list("name", field))
    except DatabaseError:
        return []  # the database's own checks report that
    unreadable = []
    for name, token in rows:
        try:
            decrypt(token)
        except DecryptionError:
            unreadable.append(name)
        except Exception:  # noqa: BLE001 - malformed keys: configuration_check reports them
            return []
    if not unreadable:
        return []
    names = ", ".join(unreadable[:10]) + (" ..." if len(unreadable) > 10 else "")
    return [Error(
        f"ENCRYPTION_KEYS cannot decrypt {len(unreadable)} of {len(rows)} stored {what} ({names})",
        hint="Add the key they were encrypted with ('derived' for the key derived from SECRET_KEY) after the "
             "newest one; README, Key rotation.",
        id=check_id,
    )]
