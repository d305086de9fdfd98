"""The dispatcher: which instances are due for a sample or a scaling check, claimed once.

Every instance has its own grid of slots (its rate, shifted by a phase taken from its id so
that thousands of instances do not all fall on the same second). A due slot is claimed by
moving `next_sample_at` / `next_check_at` on to the next slot of the grid, in one
compare-and-set statement: only rows still holding the old value (and not locked by a
concurrent claimer) move, so a dispatcher run twice, or two beats started by mistake,
enqueue each slot once.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import connection, transaction
from django.db.models import Q

from scaling.models import RedisInstance

COLLECT_BATCH = 25  # instances per collection task: their reads run concurrently
EPOCH = datetime(2020, 1, 1, tzinfo=dt_timezone.utc)
PHASE_PRIME = 7919


def slot_phase(*, instance_id, rate_seconds):
    return timedelta(seconds=(instance_id * PHASE_PRIME) % rate_seconds)


def next_slot(*, instance_id, rate_seconds, after):
    """The first slot of the instance's grid strictly after `after`."""
    phase = slot_phase(instance_id=instance_id, rate_seconds=rate_seconds)
    elapsed = (after - EPOCH - phase).total_seconds()
    return EPOCH + phase + timedelta(seconds=(int(elapsed // rate_seconds) + 1) * rate_seconds)


@dataclass(frozen=True)
class DispatchResult:
    samples: int
    checks: int


# PostgreSQL: claim every due slot in one statement (the same grid as next_slot()).
_CLAIM_SQL = """
WITH due AS (
    SELECT id, {field} AS slot, {rate} AS rate,
           EXTRACT(EPOCH FROM %(epoch)s::timestamptz) + (id * {prime}) %% {rate} AS base
    FROM scaling_redisinstance
    WHERE ({field} <= %(now)s OR {field} IS NULL) {extra}
    FOR UPDATE SKIP LOCKED
)
UPDATE scaling_redisinstance AS i
SET {field} = to_timestamp(due.base + (floor((EXTRACT(EPOCH FROM %(now)s::timestamptz) - due.base) / due.rate) + 1) * due.rate)
FROM due
WHERE i.id = due.id AND i.{field} IS NOT DISTINCT FROM due.slot
RETURNING i.id, due.slot, i.consecutive_failures > 0
"""


def _claim(*, field, rate_field, now, scaling_only=False):
    """Claim every due slot of `field`; returns [(instance id, slot, whether its last read failed)] sorted by slot."""
    if connection.vendor == "postgresql":
        sql = _CLAIM_SQL.format(field=field, rate=rate_field, prime=PHASE_PRIME,
                                extra="AND scaling_enabled" if scaling_only else "")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, {"now": now, "epoch": EPOCH})
            rows = cursor.fetchall()
        return sorted(((pk, slot or now, failing) for pk, slot, failing in rows), key=lambda row: (row[1], row[0]))
    # Other databases: a compare-and-set update per due row.
    extra = Q(scaling_enabled=True) if scaling_only else Q()
    due = RedisInstance.objects.filter(extra & (Q(**{f"{field}__lte": now}) | Q(**{f"{field}__isnull": True})))
    claimed = []
    for pk, slot, rate, failures in due.values_list("pk", field, rate_field, "consecutive_failures").order_by(field):
        following = next_slot(instance_id=pk, rate_seconds=rate, after=now)
        if RedisInstance.objects.filter(pk=pk, **{field: slot}).update(**{field: following}):
            claimed.append((pk, slot or now, failures > 0))
    return claimed


def due_work_dispatch(*, now, enqueue_samples, enqueue_check):
    """Enqueue the due samples (in batches) and scaling checks; each slot once."""
    samples = _claim(field="next_sample_at", rate_field="metric_rate", now=now)
    # Instances whose last read failed (down, slow, hostile) are batched apart: a slow one
    # holds its batch's worker thread for a whole read deadline, so mixed into healthy
    # batches a few of them would hold every worker thread; together they hold few.
    healthy = [(pk, slot) for pk, slot, failing in samples if not failing]
    failing = [(pk, slot) for pk, slot, failing in samples if failing]
    for group in (healthy, failing):
        for start in range(0, len(group), COLLECT_BATCH):
            enqueue_samples(group[start : start + COLLECT_BATCH])
    checks = _claim(field="next_check_at", rate_field="scaling_rate", now=now, scaling_only=True)
    for pk, slot, _ in checks:
        enqueue_check(pk, slot)
    return DispatchResult(samples=len(samples), checks=len(checks))


def instance_schedule_now(*, instance, now):
    """Make a (new or edited) instance due at once: the next dispatcher tick picks it up."""
    RedisInstance.objects.filter(pk=instance.pk).update(next_sample_at=now, next_check_at=now + timedelta(seconds=instance.scaling_rate))
