"""The delivery relay: an alert decided becomes one Delivery per channel that receives it,
each sent by a task of its own, claimed by compare-and-set, retried with growing delays on
temporary failures for GIVE_UP_AFTER, every attempt recorded.

Nothing here sleeps: a retry is a Delivery waiting with its `next_try_at`, picked up by the
sweep (`deliveries_due`, every SWEEP_SECONDS from beat), which also takes back deliveries
whose worker died while sending. The first attempt is a task queued when the alert's
transaction commits, so an alert rolled back is never sent.
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from autoscaler.redaction import redact
from notifications.channels import SendResult, channel_send
from notifications.models import AlertChannel, Delivery, DeliveryAttempt, Notification
from scaling.models import DecryptionError

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
GIVE_UP_AFTER = timedelta(hours=25)  # at least a day of outage loses nothing
# A claim older than this belongs to a worker that died: the longest attempt (SMTP timeout,
# HTTP connect + read) is well under it.
STALE_CLAIM = timedelta(minutes=5)
SWEEP_SECONDS = 30
# A worker that took a channel sends its due deliveries for this long at most; its lease is
# longer than that plus one attempt (HTTP 3 + 10 s, SMTP EMAIL_TIMEOUT), so that a worker that
# died holding it frees the channel after the lease.
DRAIN_SECONDS = 20
CHANNEL_LEASE = timedelta(minutes=2)


def retry_delay(*, attempts):
    """Seconds before the next try after `attempts` failed ones: 30 s, 1, 2, 4, 8 ... min, then hourly."""
    return min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)


def _enqueue(delivery_ids):
    """First attempts as tasks; a broker that cannot take them loses nothing (the sweep sends
    what is due) and never fails the transaction that decided the alert, which has committed."""
    from notifications.tasks import deliver

    try:
        for delivery_id in delivery_ids:
            deliver.apply_async(args=[str(delivery_id)], retry=False)
    except Exception as error:  # noqa: BLE001 - the sweep takes over
        logger.warning("alert deliveries not queued (%s); the sweep sends them", type(error).__name__)


def deliveries_create(*, alert, channels=None, enqueue=_enqueue):
    """One Delivery per channel that receives this alert (or per given channel), in the
    caller's transaction; their first attempts are queued when it commits."""
    if channels is None:
        channels = _receiving_channels(alert=alert)
    deliveries = Delivery.objects.bulk_create([
        Delivery(alert=alert, channel=channel, created_at=alert.created_at, next_try_at=alert.created_at)
        for channel in channels
    ])
    ids = [delivery.pk for delivery in deliveries]
    if ids:
        transaction.on_commit(lambda: enqueue(ids))
    return deliveries


def _receiving_channels(*, alert):
    channels = AlertChannel.objects.filter(enabled=True).prefetch_related("instances")
    receiving = []
    for channel in channels:
        if channel.kind == AlertChannel.Kind.MAIL and not settings.ENABLE_EMAILS:
            continue  # mails are switched off as a whole; the alert stays in the admin
        subscribed = {instance.pk for instance in channel.instances.all()}
        if channel.receives(event=alert.event, instance_id=alert.instance_id, subscribed_instance_ids=subscribed):
            receiving.append(channel)
    return receiving


def deliveries_due(*, now):
    """The earliest due delivery of each channel that is neither being sent to nor waiting
    after a failure (the sweep queues one task each; the worker that takes the channel sends
    its other due deliveries too)."""
    due = (Delivery.objects.filter(Delivery.claimable_q(now=now, stale_before=now - STALE_CLAIM))
           .exclude(channel__sending_until__gte=now).exclude(channel__failing_until__gt=now)
           .order_by("next_try_at").values_list("pk", "channel_id")[:1000])
    first = {}
    for delivery_id, channel_id in due:
        first.setdefault(channel_id, delivery_id)
    return list(first.values())


@dataclass(frozen=True)
class AttemptOutcome:
    delivery_id: str
    # delivered, retry, failed; "not claimed" (done, not due, or another worker has it);
    # "channel busy" (another worker is sending to its channel, or the channel is failing)
    outcome: str
    next_try_at: object = None


def delivery_attempt(*, delivery_id, now):
    """Try one delivery once, if it is due and no other worker has it; then, while the
    channel answers, the channel's other due deliveries (for DRAIN_SECONDS at most).

    The channel is taken first (AlertChannel.take): one worker at a time sends to a channel,
    and none while a temporary failure's next try is pending, so a hanging or refusing
    receiver holds one worker thread for one timeout per retry, never the worker."""
    channel_id = Delivery.objects.filter(pk=delivery_id).values_list("channel_id", flat=True).first()
    if channel_id is None:
        return AttemptOutcome(str(delivery_id), "not claimed")
    channel = AlertChannel.objects.get(pk=channel_id)
    if not channel.take(now=now, lease=CHANNEL_LEASE):
        return AttemptOutcome(str(delivery_id), "channel busy")
    failing_until, outcomes, tried = None, [], set()
    started = time.monotonic()
    try:
        next_id = delivery_id
        while next_id is not None:
            tried.add(next_id)
            outcome = _attempt_claimed(delivery_id=next_id, now=now)
            outcomes.append(outcome)
            if outcome.outcome == DeliveryAttempt.Outcome.RETRY:
                failing_until = outcome.next_try_at
                break
            if time.monotonic() - started > DRAIN_SECONDS:
                break
            next_id = (Delivery.objects.filter(Delivery.claimable_q(now=now, stale_before=now - STALE_CLAIM),
                                               channel_id=channel_id).exclude(pk__in=tried)
                       .order_by("next_try_at").values_list("pk", flat=True).first())
    finally:
        channel.release(failing_until=failing_until)
    return outcomes[0]


def _attempt_claimed(*, delivery_id, now):
    delivery = Delivery.objects.select_related("alert", "channel").filter(pk=delivery_id).first()
    if delivery is None or not delivery.claim(now=now, stale_before=now - STALE_CLAIM):
        return AttemptOutcome(str(delivery_id), "not claimed")
    try:
        result = channel_send(channel=delivery.channel, alert=delivery.alert, delivery_id=delivery.pk)
    except Exception as error:  # noqa: BLE001 - a bug or unreadable secret: recorded and retried
        # Only the kind of error, never its text or traceback: either may quote the channel's URL.
        text = f"{type(error).__name__}: {error}" if isinstance(error, DecryptionError) else type(error).__name__
        logger.warning("delivery %s to channel %s raised %s", delivery.pk, delivery.channel.name, text)
        result = SendResult(delivered=False, temporary=True, error=text)
    return _record(delivery=delivery, result=result, now=now)


def _record(*, delivery, result, now):
    error = redact(result.error)[:1000]
    with transaction.atomic():
        if result.delivered:
            outcome, next_try_at = DeliveryAttempt.Outcome.DELIVERED, None
            delivery.deliver(at=now)
            Notification.objects.filter(pk=delivery.alert_id, sent_at__isnull=True).update(sent_at=now)
        else:
            next_try_at = now + timedelta(seconds=max(retry_delay(attempts=delivery.attempts), result.retry_after or 0))
            if result.temporary and next_try_at - delivery.created_at <= GIVE_UP_AFTER:
                outcome = DeliveryAttempt.Outcome.RETRY
                delivery.retry(at=next_try_at, error=error)
            else:
                outcome, next_try_at = DeliveryAttempt.Outcome.FAILED, None
                if result.temporary:
                    error = f"gave up after {delivery.attempts} attempts over {GIVE_UP_AFTER.total_seconds() / 3600:.0f} h: {error}"
                delivery.fail(at=now, error=error)
        DeliveryAttempt.objects.create(delivery=delivery, at=now, outcome=outcome, status_code=result.status_code, error=error)
    if outcome == DeliveryAttempt.Outcome.FAILED:
        logger.warning("alert %r to channel %s failed for good: %s", delivery.alert.subject, delivery.channel.name, error)
    elif outcome == DeliveryAttempt.Outcome.RETRY:
        logger.info("alert %r to channel %s: %s; next try at %s", delivery.alert.subject, delivery.channel.name, error,
                    f"{next_try_at:%H:%M:%S}")
    return AttemptOutcome(str(delivery.pk), outcome, next_try_at)


def channels_failing(*, since):
    """Channels with a delivery failed for good since `since`, with the count and the last error
    (the admin overview shows them)."""
    failed = (Delivery.objects.filter(status=Delivery.Status.FAILED, finished_at__gte=since)
              .select_related("channel").order_by("-finished_at"))
    by_channel = {}
    for delivery in failed[:500]:
        entry = by_channel.setdefault(delivery.channel_id, {"channel": delivery.channel, "count": 0,
                                                            "last_error": delivery.last_error, "at": delivery.finished_at})
        entry["count"] += 1
    return list(by_channel.values())
