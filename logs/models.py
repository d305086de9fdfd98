"""The record: every sample and every scaling action, for review in the admin."""

from django.db import models
from django.db.models import Q

from scaling.models import RedisInstance, RedisPlan


class MetricLog(models.Model):
    """One `INFO` sample of one instance, or the reason it could not be taken."""

    instance = models.ForeignKey(RedisInstance, on_delete=models.SET_NULL, null=True, related_name="metric_logs")
    # The scheduled slot this sample answers; unique per instance so that a task run twice
    # for the same slot stores one sample.
    slot = models.DateTimeField()
    collected_at = models.DateTimeField()
    plan = models.ForeignKey(RedisPlan, on_delete=models.PROTECT, related_name="+", help_text="Plan at the time")
    used_memory = models.BigIntegerField(null=True, blank=True, help_text="bytes")
    maxmemory = models.BigIntegerField(null=True, blank=True, help_text="bytes, as Redis reports it")
    connected_clients = models.IntegerField(null=True, blank=True)
    maxclients = models.IntegerField(null=True, blank=True)
    memory_pct = models.FloatField(null=True, blank=True, help_text="% of the plan's memory")
    connection_pct = models.FloatField(null=True, blank=True, help_text="% of the plan's connections; empty if unlimited")
    evicted_keys = models.BigIntegerField(null=True, blank=True, help_text="counter since the server started")
    rejected_connections = models.BigIntegerField(null=True, blank=True, help_text="counter since the server started")
    ops_per_sec = models.IntegerField(null=True, blank=True)
    keyspace_hits = models.BigIntegerField(null=True, blank=True, help_text="counter since the server started")
    keyspace_misses = models.BigIntegerField(null=True, blank=True, help_text="counter since the server started")
    error_kind = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True, help_text="Why the read failed (never contains a password)")
    warnings = models.TextField(blank=True, help_text="INFO fields that were missing or odd")

    class Meta:
        ordering = ["-collected_at"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "slot"], name="one_sample_per_slot"),
            models.CheckConstraint(
                condition=~Q(error="") | Q(used_memory__isnull=False) | Q(connected_clients__isnull=False),
                name="sample_has_data_or_error",
            ),
            models.CheckConstraint(
                condition=Q(memory_pct__isnull=True) | Q(memory_pct__gte=0), name="memory_pct_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(connection_pct__isnull=True) | Q(connection_pct__gte=0),
                name="connection_pct_not_negative",
            ),
        ]
        indexes = [
            # Engine window, chart, overview: MetricLog.objects.filter(instance=i, collected_at__gte=t).order_by("-collected_at")
            models.Index(fields=["instance", "-collected_at"], name="metric_instance_time_idx"),
            # Retention prune: MetricLog.objects.filter(collected_at__lt=cutoff)
            models.Index(fields=["collected_at"], name="metric_time_idx"),
            # /metrics: failed samples per instance; holds only the (few) failures
            models.Index(fields=["instance"], condition=~Q(error=""), name="metric_failed_idx"),
        ]

    def __str__(self):
        return f"{self.instance_id} @ {self.collected_at:%Y-%m-%d %H:%M:%S}"

    @property
    def ok(self):
        return not self.error


class ScalingAction(models.Model):
    """A decision to change a plan, and what became of it.

    Its life is the methods below: `open` (pending, written before the PATCH), `mark_sent`
    (the PATCH is leaving), `note` (why it is in doubt), then `succeed` or `fail`. A worker
    killed in between leaves a pending row that the next check or follow completes instead
    of repeating it. `record_dry_run` and `record_adoption` write changes that are finished
    as they are recorded.
    """

    class Direction(models.TextChoices):
        UP = "up", "up"
        DOWN = "down", "down"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        DRY_RUN = "dry-run", "dry run"

    instance = models.ForeignKey(RedisInstance, on_delete=models.SET_NULL, null=True, related_name="actions")
    instance_name = models.CharField(max_length=64, help_text="Kept when the instance is removed")
    created_at = models.DateTimeField()
    patch_sent_at = models.DateTimeField(null=True, blank=True, help_text="When the plan change was sent to Heroku")
    finished_at = models.DateTimeField(null=True, blank=True)
    from_plan = models.ForeignKey(RedisPlan, on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey(RedisPlan, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=4, choices=Direction.choices)
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    # After a refusal (402/403/422) or a 429, the same change is not tried again before this.
    retry_not_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One plan change in flight per instance: a second check cannot start another.
            models.UniqueConstraint(
                fields=["instance"], condition=Q(status="pending"), name="one_pending_action_per_instance"
            ),
            models.CheckConstraint(condition=~Q(from_plan=models.F("to_plan")), name="action_changes_plan"),
        ]
        indexes = [
            # Instance page and overview: ScalingAction.objects.filter(instance=i).order_by("-created_at")
            models.Index(fields=["instance", "-created_at"], name="action_instance_time_idx"),
            # Reconciliation of interrupted changes: ScalingAction.objects.filter(status="pending")
            models.Index(fields=["status"], condition=Q(status="pending"), name="action_pending_idx"),
        ]

    def __str__(self):
        return f"{self.instance_name}: {self.from_plan} -> {self.to_plan} ({self.status})"

    # --- The plan change's life: pending -> succeeded / failed. ---------------------------
    # Every transition is one compare-and-set UPDATE on the pending row, stamped with the
    # moment it happened: of two workers acting on one change, exactly one wins (True), and
    # nothing else writes `status`.

    @classmethod
    def open(cls, *, instance, from_plan, to_plan, direction, reason, at):
        """A change about to be sent, written before the PATCH (the outbox row). Raises
        IntegrityError while another change of the instance is pending."""
        return cls.objects.create(
            instance=instance, instance_name=instance.name, created_at=at, from_plan=from_plan, to_plan=to_plan,
            direction=direction, reason=reason, status=cls.Status.PENDING,
        )

    @classmethod
    def record_dry_run(cls, *, instance, from_plan, to_plan, direction, reason, at):
        """A change decided and not sent: finished as soon as it is written."""
        return cls.objects.create(
            instance=instance, instance_name=instance.name, created_at=at, finished_at=at, from_plan=from_plan,
            to_plan=to_plan, direction=direction, reason=reason, status=cls.Status.DRY_RUN,
        )

    @classmethod
    def record_adoption(cls, *, instance, from_plan, to_plan, direction, reason, at):
        """A change made outside the app and adopted: it already happened."""
        return cls.objects.create(
            instance=instance, instance_name=instance.name, created_at=at, finished_at=at, from_plan=from_plan,
            to_plan=to_plan, direction=direction, reason=reason, status=cls.Status.SUCCEEDED,
        )

    def _transition(self, **fields):
        done = ScalingAction.objects.filter(pk=self.pk, status=self.Status.PENDING).update(**fields) == 1
        if done:
            for name, value in fields.items():
                setattr(self, name, value)
        return done

    def mark_sent(self, *, at):
        """The PATCH is about to leave: from now on it may land at Heroku at any moment."""
        return self._transition(patch_sent_at=at)

    def note(self, error):
        """Why a change in flight is in doubt, kept on the pending row (the admin shows it)."""
        return self._transition(error=error[:2000])

    def succeed(self, *, at):
        return self._transition(status=self.Status.SUCCEEDED, finished_at=at)

    def fail(self, *, at, error, retry_not_before=None):
        return self._transition(status=self.Status.FAILED, finished_at=at, error=error[:2000],
                                retry_not_before=retry_not_before)

    @property
    def sent(self):
        return self.patch_sent_at is not None
