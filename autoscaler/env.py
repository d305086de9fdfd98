"""Reading settings from the environment: typed, with one clear line on a bad value.

The ``*_problem`` functions say what is wrong with a value (or None); the ``env_*``
readers stop start-up with that line, and the system checks (autoscaler/checks.py) say the
same of the settings as loaded, so ``check --deploy`` fails on them too.
"""

import base64
import binascii
import logging
import os
from urllib.parse import urlsplit

DERIVED_KEY = "derived"  # in ENCRYPTION_KEYS: the key derived from SECRET_KEY (README, Key rotation)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigurationError(SystemExit):
    """A bad or missing setting: start-up stops with this one line, no traceback."""

    def __init__(self, message):
        super().__init__(f"configuration error: {message}")

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_str(name, default=""):
    return os.environ.get(name, default).strip()


def env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(f"{name} must be true or false, not {raw!r}")


def env_int(name, default, minimum=None, maximum=None):
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    text = raw.strip()
    if len(text) > 30:  # int() of thousands of digits is slow, and no setting needs 30
        raise ConfigurationError(f"{name} must be a whole number of sensible size, not {text[:30]!r}…")
    try:
        value = int(text)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {text[:40]!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        # Past these the value is a typo, and overflows the dates and timeouts it becomes.
        raise ConfigurationError(f"{name} must be at most {maximum}, not {value}")
    return value


def env_list(name, default=()):
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Values with a shape of their own -----------------------------------------------------


def encryption_keys_problem(keys):
    """What is wrong with a list of ENCRYPTION_KEYS entries, or None. Never quotes a key."""
    if isinstance(keys, str) or not isinstance(keys, (list, tuple)):
        return "ENCRYPTION_KEYS must be a list of keys"
    for position, key in enumerate(keys, start=1):
        if key == DERIVED_KEY:
            continue
        try:
            valid = isinstance(key, str) and len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32 and len(key) == 44
        except (ValueError, binascii.Error, UnicodeError):
            valid = False
        if not valid:
            return (f"ENCRYPTION_KEYS entry {position} of {len(keys)} is neither a Fernet key (44 url-safe base64"
                    f" characters, e.g. from Fernet.generate_key()) nor '{DERIVED_KEY}'")
    return None


def env_encryption_keys(name="ENCRYPTION_KEYS"):
    keys = env_list(name)
    problem = encryption_keys_problem(keys)
    if problem:
        raise ConfigurationError(problem)
    return keys


def log_level_problem(level):
    if not isinstance(level, str) or level.upper() not in LOG_LEVELS:
        return f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {str(level)[:40]!r}"
    return None


def env_log_level(name="LOG_LEVEL", default="INFO"):
    level = env_str(name, default) or default
    problem = log_level_problem(level)
    if problem:
        raise ConfigurationError(problem)
    return logging.getLevelName(logging.getLevelName(level.upper()))


def env_database(name="DATABASE_URL", *, default, **options):
    """dj-database-url's reading of DATABASE_URL; a URL it cannot use is one line that names
    what is wrong without repeating the URL (it holds the database password)."""
    import dj_database_url

    raw = os.environ.get(name, "").strip()
    if raw:
        problem = url_problem(name, raw, schemes=tuple(dj_database_url.ENGINE_SCHEMES), usual=("postgres", "sqlite"))
        if problem:
            raise ConfigurationError(problem)
    try:
        return dj_database_url.config(env=name, default=default, **options)
    except Exception as error:  # noqa: BLE001 - any parse failure is a configuration error
        raise ConfigurationError(f"{name} cannot be used ({type(error).__name__})") from None


def url_problem(name, url, *, schemes, usual=None, require_host=False):
    """What is wrong with a URL setting, or None; the message never repeats the URL.
    `usual`: the schemes to name in the message, where `schemes` is a long list."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"{name} is not a valid URL (a port that is not a number, or stray brackets)"
    if parts.scheme not in schemes:
        shown = parts.scheme[:20] or "none"
        named = ", ".join(s + "://" for s in (usual or sorted(schemes))) + (", ..." if usual else "")
        return f"{name} must start with one of {named}, not {shown!r}"
    if require_host and not parts.hostname:  # postgres:///db (a local socket), redis:// are fine
        return f"{name} has no host name"
    return None


def env_url(name, default, *, schemes):
    value = env_str(name, default)
    if value:
        problem = url_problem(name, value, schemes=schemes, require_host=bool({"http", "https"} & set(schemes)))
        if problem:
            raise ConfigurationError(problem)
    return value


def email_list_problem(name, addresses):
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            return f"{name} must be e-mail addresses, comma separated; {address[:60]!r} is not one"
    return None


def env_emails(name):
    addresses = env_list(name)
    problem = email_list_problem(name, addresses)
    if problem:
        raise ConfigurationError(problem)
    return addresses
