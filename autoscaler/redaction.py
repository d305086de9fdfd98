"""Keep secrets out of logs, mails and exception texts."""

import logging
import re

from django.conf import settings

# scheme://user:password@host -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s/]+)@", re.I)


def redact(text):
    """Mask URL passwords and the configured secrets in a piece of text."""
    text = _URL_PASSWORD.sub(r"\g<head>***@", str(text))
    for secret in _configured_secrets():
        text = text.replace(secret, "***")
    return text


_registered = set()  # secrets this process holds beyond settings (the Heroku accounts' API keys)


def secret_register(value):
    """Mask `value` too from now on in this process (a stored API key once decrypted)."""
    if value:
        _registered.add(value)


def _configured_secrets():
    names = ("HEROKU_API_KEY", "EMAIL_HOST_PASSWORD", "SECRET_KEY", "SLACK_WEBHOOK_URL", "ALERT_WEBHOOK_URL",
             "ALERT_WEBHOOK_SECRET")
    values = [getattr(settings, name, "") for name in names] + list(getattr(settings, "ENCRYPTION_KEYS", []))
    values += list(_registered)
    # Short values would mask ordinary words; real secrets are long.
    return [value for value in values if value and len(value) >= 8]


class RedactSecretsFilter(logging.Filter):
    def filter(self, record):
        if not settings.configured:
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info:
            formatter = logging.Formatter()
            cleaned += "\n" + redact(formatter.formatException(record.exc_info))
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = cleaned, None
        return True
