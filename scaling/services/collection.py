"""Sampling: one INFO read per instance per slot, stored as a MetricLog.

Reads run concurrently on a thread pool (they wait on the network); the database work is
done by the calling thread. Every read has a deadline for its whole exchange (the reader's
``deadline``: REDIS_CONNECT_TIMEOUT + REDIS_READ_TIMEOUT), so a slow or hostile Redis holds
one pool thread for at most that long. The samples read within PROMPT_READ_SECONDS are
stored at once; the slower ones are stored when they end (at the latest at the deadline), so
a slow instance never holds back or misdates its batch's other samples.

Capacity: the pool has READ_THREADS threads shared by the worker's tasks. Slow servers can
occupy at most READ_THREADS threads for one deadline each: with the defaults (32 threads,
10 s) that is 3.2 slow reads a second (about 96 permanently slow instances at a 30 s rate)
before other reads queue behind them; a healthy read takes a few milliseconds (README, "One
worker's capacity"). A task waits for its batch's slow reads, so the dispatcher batches the
instances whose last read failed apart from the healthy ones: slow servers then hold few of
the worker's task threads (benchmarks/slow_redis.py).
"""

import functools
import logging
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from logs.models import MetricLog
from scaling.crypto import DecryptionError
from scaling.heroku import HerokuError
from scaling.metrics import MetricsReadError, RedisMetricsReader
from scaling.models import RedisInstance
from scaling.services.instances import ResolutionError, instance_refresh, instance_refresh_due, instances_named

logger = logging.getLogger(__name__)

READ_THREADS = 32
PROMPT_READ_SECONDS = 1.0  # reads done by then are stored without waiting for slower ones
SERVER_FULL = "server_full"  # error kind of a read refused because the server is at maxclients


@functools.cache
def metrics_reader():
    """The process's reader: it keeps one connection per instance between samples."""
    return RedisMetricsReader(
        connect_timeout=getattr(settings, "REDIS_CONNECT_TIMEOUT", 5.0),
        read_timeout=getattr(settings, "REDIS_READ_TIMEOUT", 5.0),
    )


@functools.cache
def _read_pool():
    return ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="redis-read")


@dataclass(frozen=True)
class Reading:
    """The outcome of one read: info, or the error (kind and one-line reason)."""

    info: object = None
    error_kind: str = ""
    error: str = ""
    needs_refresh: bool = False  # Heroku may know better (new password, moved host)


def _read(instance, reader):
    try:
        url = instance.redis_url
    except DecryptionError as error:
        return Reading(error_kind="bad_url", error=str(error), needs_refresh=True)
    if not url:
        return Reading(error_kind="unresolved", error="Redis URL not resolved yet", needs_refresh=True)
    try:
        info = reader.read(str(instance.pk), url)
    except MetricsReadError as error:
        # Refused because maxclients is reached: the instance is rejecting connections, which
        # the check treats as data drop (see checks.engine_samples), not as a failed read.
        kind = SERVER_FULL if error.server_full else error.kind
        return Reading(error_kind=kind, error=str(error), needs_refresh=error.needs_refresh)
    if not info.usable:  # the reader already refuses these; a reader given by a caller may not
        return Reading(error_kind="incomplete",
                       error="INFO lacks a readable used_memory or connected_clients: " + "; ".join(info.warnings))
    return Reading(info=info)


def _refresh(instance, now):
    """Ask Heroku for the URL again (rate-limited per instance).
    Returns (whether the URL changed, why Heroku could not tell)."""
    if not instance_refresh_due(instance=instance, now=now):
        return False, ""
    try:
        return instance_refresh(instance=instance, now=now), ""
    except (ResolutionError, HerokuError) as error:
        logger.warning("instance %s: refresh from Heroku failed: %s", instance.name, error)
        RedisInstance.objects.filter(pk=instance.pk).update(resolved_at=now)
        instance.resolved_at = now
        return False, str(error)


def sample_from_reading(*, instance, slot, collected_at, reading):
    plan = instance.current_plan
    log = MetricLog(instance=instance, slot=slot, collected_at=collected_at, plan=plan)
    if reading.info is None:
        log.error_kind, log.error = reading.error_kind, reading.error[:2000]
        return log
    info = reading.info
    log.used_memory, log.maxmemory = info.used_memory, info.maxmemory
    log.connected_clients, log.maxclients = info.connected_clients, info.maxclients
    log.evicted_keys, log.rejected_connections, log.ops_per_sec = info.evicted_keys, info.rejected_connections, info.ops_per_sec
    log.keyspace_hits, log.keyspace_misses = info.keyspace_hits, info.keyspace_misses
    log.maxmemory_policy = info.maxmemory_policy  # not a column: kept on the instance by _store
    log.warnings = "; ".join(info.warnings)
    if info.used_memory is not None:
        log.memory_pct = round(100.0 * info.used_memory / plan.mem_limit_bytes, 3)
    # Unlimited plans have no connection percentage (and never a division by -1).
    if info.connected_clients is not None and plan.conn_limit > 0:
        log.connection_pct = round(100.0 * info.connected_clients / plan.conn_limit, 3)
    return log


@dataclass(frozen=True)
class CollectResult:
    stored: int
    failed: int
    skipped: int


def samples_collect(*, due, reader=None, now_fn=timezone.now):
    """Take one sample for each (instance id, slot) in `due`; a slot already sampled is skipped."""
    reader = reader or metrics_reader()
    slots = dict(due)
    instances = list(RedisInstance.objects.with_plans().filter(pk__in=slots))
    taken = set(MetricLog.objects.filter(instance__in=instances, slot__in=set(slots.values())).values_list("instance_id", "slot"))
    instances = [i for i in instances if (i.pk, slots[i.pk]) not in taken]
    skipped = len(slots) - len(instances)

    futures = {i.pk: _read_pool().submit(_read, i, reader) for i in instances}
    wait(futures.values(), timeout=PROMPT_READ_SECONDS)
    prompt = [i for i in instances if futures[i.pk].done()]
    late = [i for i in instances if i not in prompt]
    failed_ids = _settle(prompt, slots=slots, readings={i.pk: futures[i.pk].result() for i in prompt},
                         reader=reader, now_fn=now_fn)
    if late:
        # Each of these ends by the reader's deadline.
        wait([futures[i.pk] for i in late])
        failed_ids += _settle(late, slots=slots, readings={i.pk: futures[i.pk].result() for i in late},
                              reader=reader, now_fn=now_fn)
    return CollectResult(stored=len(instances), failed=len(failed_ids), skipped=skipped)


def _settle(instances, *, slots, readings, reader, now_fn):
    """Store the samples of `instances` from their readings; returns the ids newly counted as failed."""
    now = now_fn()
    # A failure Heroku may explain (new password, moved host, URL not known yet) is refreshed
    # and read again, but only after the batch's other samples are stored: a slow Heroku API
    # (a timeout costs minutes with retries) must not hold back or misdate healthy samples.
    later = {i.pk for i in instances if readings[i.pk].needs_refresh and instance_refresh_due(instance=i, now=now)}
    failed_ids = _store([i for i in instances if i.pk not in later], slots=slots, readings=readings, collected_at=now)
    for instance in (i for i in instances if i.pk in later):
        changed, problem = _refresh(instance, now_fn())
        if changed:
            readings[instance.pk] = _read(instance, reader)
        elif problem:
            reading = readings[instance.pk]
            readings[instance.pk] = replace(reading, error=f"{reading.error}; asking Heroku for the URL failed: {problem}")
    if later:
        failed_ids += _store([i for i in instances if i.pk in later], slots=slots, readings=readings,
                             collected_at=now_fn())
    return failed_ids


def _store(instances, *, slots, readings, collected_at):
    """Store the samples of `instances` in one transaction; returns the ids of the failed ones."""
    if not instances:
        return []
    logs = [sample_from_reading(instance=i, slot=slots[i.pk], collected_at=collected_at, reading=readings[i.pk])
            for i in instances]
    if not connection.in_atomic_block and connection.connection is not None and not connection.is_usable():
        # The connection broke while the reads (or Heroku) were awaited, e.g. PostgreSQL
        # restarted: write the batch over a new one rather than lose it.
        connection.close()
    with transaction.atomic():
        # A task delivered twice (or two beats) may be storing the same slots right now. The
        # instances' rows are locked first (in id order, so two batches cannot deadlock), so
        # the slots already stored are seen here, and only the samples this call inserts move
        # the failure counters: one failed slot is counted once.
        # An instance removed while its batch was read is left out (its sample would break
        # the whole batch's insert on the foreign key).
        ids = sorted({log.instance_id for log in logs})
        present = set(RedisInstance.objects.select_for_update().filter(pk__in=ids).order_by("pk")
                      .values_list("pk", flat=True))
        taken = set(MetricLog.objects.filter(instance_id__in=ids, slot__in={log.slot for log in logs})
                    .values_list("instance_id", "slot"))
        logs = [log for log in logs if log.instance_id in present and (log.instance_id, log.slot) not in taken]
        MetricLog.objects.bulk_create(logs, ignore_conflicts=True)  # a last guard (SQLite has no row locks)
        ok_ids = [log.instance_id for log in logs if log.ok]
        failed_ids = [log.instance_id for log in logs if not log.ok]
        recovered_ids = list(RedisInstance.objects.filter(
            pk__in=ok_ids, consecutive_failures__gte=RedisInstance.UNREACHABLE_AFTER).values_list("pk", flat=True))
        RedisInstance.objects.filter(pk__in=ok_ids).exclude(consecutive_failures=0).update(consecutive_failures=0)
        RedisInstance.objects.filter(pk__in=failed_ids).update(consecutive_failures=F("consecutive_failures") + 1)
        # The eviction policy seldom changes: written only when it did (the admin flags a
        # policy that disagrees with the workload).
        for log in logs:
            policy = getattr(log, "maxmemory_policy", None)
            if policy and log.instance.maxmemory_policy != policy:
                RedisInstance.objects.filter(pk=log.instance_id).update(maxmemory_policy=policy)
                log.instance.maxmemory_policy = policy
        # The alerts in the transaction of the counters they report (their delivery is the relay's).
        _alerts_after_samples(failed_ids=failed_ids, recovered_ids=recovered_ids, now=collected_at)
    for log in logs:
        if not log.ok:
            logger.warning("instance %s: sample failed (%s): %s", log.instance.name, log.error_kind, log.error)
    return failed_ids


def _alerts_after_samples(*, failed_ids, recovered_ids, now):
    """Unreachable instances (failed samples in a row) and recovered ones (a sample succeeded
    after they were alerted as unreachable)."""
    if not failed_ids and not recovered_ids:
        return
    from notifications.services import recovered_instances_notify, unreachable_instances_notify

    unreachable_instances_notify(instance_ids=failed_ids, now=now)
    recovered_instances_notify(instance_ids=recovered_ids, now=now)


def instances_collect_now(*, names=None, now_fn=timezone.now):
    """`collect_metrics [NAME ...]`: one sample now for the named (or all) instances."""
    queryset = instances_named(names=names)
    now = now_fn()
    return samples_collect(due=[(pk, now) for pk in queryset.values_list("pk", flat=True)], now_fn=now_fn)
