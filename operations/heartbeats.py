"""Heartbeats: cheap writes by workers, read by the web process (`/healthz`, `/metrics`)."""

import logging
import threading
import time

from django.db import transaction

from operations.models import Heartbeat

logger = logging.getLogger(__name__)

DISPATCHER = "dispatcher"
WEEKLY_SUMMARY = "weekly_summary"
DEFAULT_ACCOUNT = "default"
# RateLimit-Remaining is written when it moved by this many calls, or after this long.
RATE_LIMIT_WRITE_STEP = 50
RATE_LIMIT_WRITE_SECONDS = 60


def rate_limit_heartbeat_name(account):
    return f"heroku_rate_limit:{account}"


def heartbeat_record(*, name, now, value=None):
    """Set a heartbeat: one UPDATE once the row exists."""
    if not Heartbeat.objects.filter(name=name).update(at=now, value=value):
        Heartbeat.objects.bulk_create([Heartbeat(name=name, at=now, value=value)], ignore_conflicts=True)


def dispatcher_tick_record(*, now):
    """The dispatcher ran: beat sent it and a worker took it (read by `/healthz`)."""
    heartbeat_record(name=DISPATCHER, now=now)


class RateLimitRecorder:
    """Keeps the last `RateLimit-Remaining` a worker saw in the database, for `/metrics`.

    Called on every Heroku response, so it writes only when the figure moved by
    RATE_LIMIT_WRITE_STEP or RATE_LIMIT_WRITE_SECONDS passed; a failed write is logged and
    never breaks the Heroku call (it runs in a savepoint of whatever transaction is open).
    """

    def __init__(self, *, account=DEFAULT_ACCOUNT, clock=time.monotonic):
        self.account, self.clock = account, clock
        self._lock = threading.Lock()
        self._written = None  # (remaining, clock) of the last write

    def __call__(self, *, remaining, now):
        moment = self.clock()
        with self._lock:
            if self._written is not None:
                last, at = self._written
                if abs(remaining - last) < RATE_LIMIT_WRITE_STEP and moment - at < RATE_LIMIT_WRITE_SECONDS:
                    return False
            self._written = (remaining, moment)
        try:
            with transaction.atomic():
                heartbeat_record(name=rate_limit_heartbeat_name(self.account), now=now, value=remaining)
        except Exception as error:  # noqa: BLE001 - a lost figure never breaks the Heroku call it came with
            logger.warning("could not record the Heroku rate limit: %s", error.__class__.__name__)
            with self._lock:
                self._written = None
            return False
        return True

    def response_hook(self, response, *args, **kwargs):
        """A `requests` response hook: reads the header, records it."""
        from django.utils import timezone

        try:
            remaining = int(response.headers.get("RateLimit-Remaining"))
        except (TypeError, ValueError):
            return None
        self(remaining=remaining, now=timezone.now())
        return None
