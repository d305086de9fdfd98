"""What was mailed: an outbox row per alert, also the memory that stops repeats."""

from django.db import models

from scaling.models import RedisInstance


class Notification(models.Model):
    class Kind(models.TextChoices):
        BREACH = "breach", "threshold breach"
        SUCCESS = "success", "scaling succeeded"
        FAILURE = "failure", "scaling failed"
        DRY_RUN = "dry-run", "would scale (dry run)"
        CANNOT_SCALE = "cannot-scale", "cannot scale further"
        UNREACHABLE = "unreachable", "instance unreachable"
        PLAN_ADOPTED = "plan-adopted", "plan changed outside the app"
        CHECK_FAILED = "check-failed", "instance cannot be judged"
        WEEKLY_SUMMARY = "weekly-summary", "weekly summary"
        ACCOUNT_FAILING = "account-failing", "Heroku account drained or refusing"

    instance = models.ForeignKey(RedisInstance, on_delete=models.SET_NULL, null=True, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # What makes two alerts "the same condition" (e.g. the breaching metrics and plan).
    fingerprint = models.CharField(max_length=200)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    recipients = models.TextField()
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # De-duplication: Notification.objects.filter(instance=i, kind=k).order_by("-created_at").first()
            models.Index(fields=["instance", "kind", "-created_at"], name="notification_last_idx"),
        ]

    def __str__(self):
        return self.subject
