"""A mail backend for runs without an SMTP server (EMAIL_HOST unset): each mail is one INFO
record of the log, whole, with its headers.

Django's console backend writes to stdout, which the Celery worker turns into one
"WARNING celery.redirected" record per line; the log shows these whole, and through the
redaction filter like every record."""

import logging

from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger("notifications.mail")


class LogEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        for message in email_messages:
            text = message.message().as_bytes().decode(message.encoding or "utf-8", errors="replace")
            logger.info("mail (printed, not sent: EMAIL_HOST is not set)\n%s\n%s", text.rstrip("\n"), "-" * 72)
        return len(email_messages)
