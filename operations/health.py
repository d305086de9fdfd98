"""What `/healthz` reports: is the database and broker answering, is beat ticking, are
samples being stored. A few queries and one broker connection, no secret, no host name."""

from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Max, Min

from logs.models import MetricLog
from operations.heartbeats import DISPATCHER
from operations.models import Heartbeat
from scaling.models import RedisInstance

BEAT_FRESH_SECONDS = 60  # the dispatcher ticks every 10 s
SAMPLE_FRESH_MIN_SECONDS = 90  # and at least twice the shortest metric rate
BROKER_TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class Health:
    status: str  # "ok" or "failing"
    database: str  # "ok" or "unreachable"
    broker: str
    beat_seconds_ago: int | None
    sample_seconds_ago: int | None
    instances: int | None
    problems: list

    @property
    def ok(self):
        return self.status == "ok"

    def as_dict(self):
        return asdict(self)


def _seconds_since(moment, now):
    return None if moment is None else max(0, int((now - moment).total_seconds()))


def broker_reachable(*, timeout=BROKER_TIMEOUT_SECONDS):
    """One connection to the Celery broker (for the filesystem broker: its folder exists)."""
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        folder = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("data_folder_in")
        return bool(folder) and Path(folder).is_dir()
    from autoscaler.celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - any failure is "unreachable"; the reason may name the host
        return False


def health_check(*, now, broker_check=broker_reachable):
    problems = []
    broker = "ok" if broker_check() else "unreachable"
    if broker != "ok":
        problems.append("broker unreachable")
    try:
        tick = Heartbeat.objects.filter(name=DISPATCHER).values_list("at", flat=True).first()
        registered = RedisInstance.objects.aggregate(n=Count("pk"), fastest=Min("metric_rate"), first=Min("created_at"))
        last_sample = MetricLog.objects.aggregate(last=Max("collected_at"))["last"]
    except DatabaseError:
        return Health("failing", "unreachable", broker, None, None, None, problems + ["database unreachable"])
    beat_ago, sample_ago = _seconds_since(tick, now), _seconds_since(last_sample, now)
    if beat_ago is None or beat_ago > BEAT_FRESH_SECONDS:
        problems.append(f"beat or worker not ticking (last dispatcher run {'never' if beat_ago is None else f'{beat_ago} s ago'}, expected every 10 s)")
    if registered["n"]:
        sample_limit = max(2 * registered["fastest"], SAMPLE_FRESH_MIN_SECONDS)
        # A just registered instance gets the same grace before its first sample.
        waited = sample_ago if sample_ago is not None else _seconds_since(registered["first"], now)
        if waited > sample_limit:
            problems.append(f"no sample stored for {waited} s (expected within {sample_limit} s)")
    return Health(
        status="failing" if problems else "ok", database="ok", broker=broker,
        beat_seconds_ago=beat_ago, sample_seconds_ago=sample_ago, instances=registered["n"], problems=problems,
    )
