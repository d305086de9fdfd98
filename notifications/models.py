"""Alerts and their delivery.

A Notification is an alert decided (written in the transaction of the state it reports;
also the memory that stops repeats). An AlertChannel is a receiver (mail, Slack, a webhook of
the operator's own). A Delivery is one alert to one channel, with a stable UUID sent on every
retry; its life is the compare-and-set methods below, each attempt a DeliveryAttempt.
"""

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from notifications import events
from scaling.models import DecryptionError, EncryptedSecret, RedisInstance


class Notification(models.Model):
    class Kind(models.TextChoices):
        BREACH = "breach", "threshold breach"
        SUCCESS = "success", "scaling succeeded"
        FAILURE = "failure", "scaling failed"
        DRY_RUN = "dry-run", "would scale (dry run)"
        CANNOT_SCALE = "cannot-scale", "cannot scale further"
        UNREACHABLE = "unreachable", "instance unreachable"
        RECOVERED = "recovered", "instance recovered"
        PLAN_ADOPTED = "plan-adopted", "plan changed outside the app"
        CHECK_FAILED = "check-failed", "instance cannot be judged"
        WEEKLY_SUMMARY = "weekly-summary", "weekly summary"
        ACCOUNT_FAILING = "account-failing", "Heroku account drained or refusing"
        TEST = "test", "test alert"

    instance = models.ForeignKey(RedisInstance, on_delete=models.SET_NULL, null=True, related_name="notifications")
    # Choices from the event registry (notifications/events.py): a new event is one line there.
    kind = models.CharField(max_length=20, choices=events.KIND_CHOICES)
    event = models.CharField(max_length=60, blank=True, choices=events.EVENT_CHOICES)
    # What makes two alerts "the same condition" (e.g. the breaching metrics and plan).
    fingerprint = models.CharField(max_length=200)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    # The facts a webhook and Slack carry: instance, app, plan, from, to, reason, numbers.
    data = models.JSONField(default=dict, blank=True)
    recipients = models.TextField()
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "alert"
        indexes = [
            # De-duplication: Notification.objects.filter(instance=i, kind=k).order_by("-created_at").first()
            models.Index(fields=["instance", "kind", "-created_at"], name="notification_last_idx"),
        ]

    def __str__(self):
        return self.subject


def _mask(url):
    """scheme://host/… : enough to tell channels apart, never the path or token."""
    if not url:
        return ""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/***"


class AlertChannel(models.Model):
    """A receiver of alerts. Channels made from the environment carry the variable's name in
    `env_var` and are updated at every start-up (notifications/channels.py)."""

    class Kind(models.TextChoices):
        MAIL = "mail", "mail"
        SLACK = "slack", "Slack incoming webhook"
        WEBHOOK = "webhook", "webhook (signed JSON)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    events = models.JSONField(default=list, blank=True,
                              help_text="event names this channel receives; empty: every event")
    instances = models.ManyToManyField(RedisInstance, blank=True, related_name="alert_channels",
                                       help_text="instances this channel receives alerts of; none: every instance")
    recipients = models.TextField(blank=True, help_text="mail: comma separated addresses; empty: RECIPIENTS, "
                                  "else the active admin users")
    url_encrypted = models.TextField(blank=True, editable=False)
    secret_encrypted = models.TextField(blank=True, editable=False)
    env_var = models.CharField(max_length=40, blank=True, editable=False,
                               help_text="made and updated from this environment variable at start-up")
    created_at = models.DateTimeField(auto_now_add=True)
    # One worker sends to a channel at a time (the lease), and none while it is failing: a
    # hanging receiver holds one worker thread, never all of them (notifications/relay.py).
    sending_until = models.DateTimeField(null=True, blank=True, editable=False)
    failing_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    url = EncryptedSecret("url_encrypted")
    secret = EncryptedSecret("secret_encrypted")

    @property
    def masked_url(self):
        try:
            return _mask(self.url)
        except DecryptionError:
            return "(unreadable with ENCRYPTION_KEYS)"

    def clean(self):
        unknown = sorted(set(self.events or []) - set(events.BY_NAME))
        if unknown:
            raise ValidationError({"events": f"unknown events: {', '.join(unknown)} (known: {', '.join(events.BY_NAME)})"})

    def take(self, *, now, lease):
        """Compare-and-set: this worker sends to the channel until now + lease, or False if
        another one is sending or the channel is failing (its next try is later)."""
        free = Q(sending_until__isnull=True) | Q(sending_until__lt=now)
        ready = Q(failing_until__isnull=True) | Q(failing_until__lte=now)
        return bool(AlertChannel.objects.filter(free, ready, pk=self.pk).update(sending_until=now + lease))

    def release(self, *, failing_until=None):
        AlertChannel.objects.filter(pk=self.pk).update(sending_until=None, failing_until=failing_until)

    def receives(self, *, event, instance_id, subscribed_instance_ids):
        return (self.enabled and (not self.events or event in self.events)
                and (not subscribed_instance_ids or instance_id in subscribed_instance_ids))


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "waiting"
        SENDING = "sending", "sending"
        DELIVERED = "delivered", "delivered"
        FAILED = "failed", "failed for good"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    alert = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    next_try_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["alert", "channel"], name="delivery_once_per_channel")]
        indexes = [models.Index(fields=["status", "next_try_at"], name="delivery_due_idx")]

    def __str__(self):
        return f"{self.alert} → {self.channel}"

    # --- Life: every transition a compare-and-set on the status -------------------------

    @classmethod
    def claimable_q(cls, *, now, stale_before):
        """Due and waiting, or claimed by a worker that died while sending."""
        return (Q(status=cls.Status.PENDING, next_try_at__lte=now)
                | Q(status=cls.Status.SENDING, claimed_at__lt=stale_before))

    def claim(self, *, now, stale_before):
        """Take this delivery for one attempt; False if another worker has it or it is not due."""
        taken = Delivery.objects.filter(Delivery.claimable_q(now=now, stale_before=stale_before), pk=self.pk).update(
            status=self.Status.SENDING, claimed_at=now, attempts=models.F("attempts") + 1)
        if taken:
            self.refresh_from_db()
        return bool(taken)

    def _finish(self, **fields):
        done = Delivery.objects.filter(pk=self.pk, status=self.Status.SENDING, claimed_at=self.claimed_at).update(**fields)
        for name, value in fields.items():
            setattr(self, name, value)
        return bool(done)

    def deliver(self, *, at):
        return self._finish(status=self.Status.DELIVERED, finished_at=at, next_try_at=None, last_error="")

    def retry(self, *, at, error):
        return self._finish(status=self.Status.PENDING, next_try_at=at, last_error=error)

    def fail(self, *, at, error):
        return self._finish(status=self.Status.FAILED, finished_at=at, next_try_at=None, last_error=error)


class DeliveryAttempt(models.Model):
    class Outcome(models.TextChoices):
        DELIVERED = "delivered", "delivered"
        RETRY = "retry", "temporary failure, retried"
        FAILED = "failed", "failed for good"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_rows")
    at = models.DateTimeField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    status_code = models.IntegerField(null=True, blank=True, help_text="HTTP status or SMTP reply code")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["at"]
