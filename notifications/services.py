"""What is mailed, when, and to whom.

Every alert is written to the Notification table before it is sent (the outbox), under a
row lock on its instance, and the alerts of the same kind decide whether to send: the same
condition (fingerprint) is mailed once, then again only after ALERT_REPEAT_SECONDS; a new
condition is mailed at once. A mail that cannot be sent is recorded on its row and never
raised; the log says so at WARNING once per cause and process, not once per alert.

Mails go to RECIPIENTS, or while it is empty to the active admin users (superusers) that
have an address, so that a local run with its admin user shows every mail.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse

from autoscaler.redaction import redact
from notifications.models import Notification
from scaling.models import RedisInstance

logger = logging.getLogger(__name__)

UNREACHABLE_AFTER = RedisInstance.UNREACHABLE_AFTER  # failed samples in a row before "unreachable" is mailed
Kind = Notification.Kind


class DeliveryWarnings:
    """Warns once per cause of undelivered mail in this process; a mail that goes through
    forgets the causes, so that the next outage is warned about again."""

    def __init__(self):
        self._warned = set()

    def warn(self, cause, message, *args):
        if cause not in self._warned:
            self._warned.add(cause)
            logger.warning(message, *args)

    def forget(self):
        self._warned.clear()


delivery_warnings = DeliveryWarnings()


def mail_recipients():
    """RECIPIENTS, else the addresses of the active admin users."""
    if settings.RECIPIENTS:
        return list(settings.RECIPIENTS)
    from django.contrib.auth import get_user_model

    admins = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    return sorted(set(admins.values_list("email", flat=True)))


def instance_admin_url(instance):
    path = reverse("admin:scaling_redisinstance_change", args=[instance.pk])
    return f"{settings.SITE_URL}{path}" if settings.SITE_URL else path


def _header(instance):
    return [
        f"Instance:  {instance.name}",
        f"Heroku app: {instance.app_name} (config var {instance.config_var})",
        f"Plan:      {instance.current_plan.describe()}",
        f"Thresholds: memory {instance.memory_threshold}%, connections {instance.connection_threshold}%"
        f" (plans {instance.min_plan.short_name} to {instance.max_plan.short_name})",
    ]


def notification_send(*, instance, kind, fingerprint, subject, lines, now):
    """Record and mail one alert unless the same condition was mailed recently.

    Returns the Notification, or None when it was a repeat.
    """
    repeat_after = timedelta(seconds=settings.ALERT_REPEAT_SECONDS)
    with transaction.atomic():
        # The row lock makes two workers' checks of the same alert act once.
        RedisInstance.objects.select_for_update().filter(pk=instance.pk).first()
        # Any mail of this condition within the repeat period, not just the last one: a
        # condition flipping between two states (A, B, A, B...) mails each state once.
        recent = Notification.objects.filter(instance=instance, kind=kind, created_at__gt=now - repeat_after)
        if recent.filter(fingerprint=fingerprint[:200]).exists():
            return None
        body = redact("\n".join(_header(instance) + [""] + list(lines) + ["", f"Details: {instance_admin_url(instance)}"]))
        notification = Notification.objects.create(
            instance=instance, kind=kind, fingerprint=fingerprint[:200],
            subject=redact(f"{settings.EMAIL_PREFIX}{subject}")[:300], body=body,
            recipients=", ".join(mail_recipients()), created_at=now,
        )
    _deliver(notification, now)
    return notification


def summary_send(*, kind, fingerprint, subject, lines, now):
    """Record and mail a message about all instances (no instance, no repeat check)."""
    notification = Notification.objects.create(
        instance=None, kind=kind, fingerprint=fingerprint[:200],
        subject=redact(f"{settings.EMAIL_PREFIX}{subject}")[:300], body=redact("\n".join(lines)),
        recipients=", ".join(settings.RECIPIENTS), created_at=now,
    )
    _deliver(notification, now)
    return notification


def _deliver(notification, now):
    recipients = [address.strip() for address in notification.recipients.split(",") if address.strip()]
    if not settings.ENABLE_EMAILS:
        notification.error = "not sent: ENABLE_EMAILS is off"
        delivery_warnings.warn("disabled", "alerts are not mailed: ENABLE_EMAILS is off (they are kept in the admin)")
    elif not recipients:
        notification.error = "not sent: no one to mail (RECIPIENTS is empty and no admin user has an address)"
        delivery_warnings.warn(
            "no-recipients", "alerts are not mailed: RECIPIENTS is empty and no active admin user has an e-mail "
            "address; set RECIPIENTS (they are kept in the admin meanwhile)")
    else:
        message = EmailMessage(
            subject=notification.subject, body=notification.body,
            from_email=settings.SERVER_EMAIL, to=recipients,
        )
        try:
            message.send(fail_silently=False)
            notification.sent_at = now
            delivery_warnings.forget()
        except Exception as error:  # noqa: BLE001 - a mail never stops scaling
            notification.error = redact(f"{error.__class__.__name__}: {error}")[:1000]
            delivery_warnings.warn(
                f"failed:{error.__class__.__name__}", "alert mail %r could not be sent: %s "
                "(further failures of this kind are not logged until a mail goes through)",
                notification.subject, notification.error)
    Notification.objects.filter(pk=notification.pk).update(sent_at=notification.sent_at, error=notification.error)


def unreachable_instances_notify(*, instance_ids, now=None):
    """Mail for each instance that has failed UNREACHABLE_AFTER samples in a row."""
    from django.utils import timezone

    from logs.models import MetricLog

    now = now or timezone.now()
    for instance in RedisInstance.objects.with_plans().filter(RedisInstance.unreachable_q(), pk__in=instance_ids):
        last = MetricLog.objects.filter(instance=instance).order_by("-collected_at").first()
        reason = last.error if last and not last.ok else "unknown"
        notification_send(
            # One condition whatever the reason of the last failure: a dying Redis that fails
            # by turns with a timeout and a garbled reply must not mail at every change.
            instance=instance, kind=Kind.UNREACHABLE, fingerprint="unreachable",
            subject=f"{instance.name}: Redis unreachable ({instance.consecutive_failures} samples in a row)",
            lines=[
                f"The last {instance.consecutive_failures} samples of this Redis failed.",
                f"Last error: {reason}",
                "Scaling decisions wait for successful samples; a failed read never scales down.",
            ],
            now=now,
        )


def check_failed_notify(*, instance, error, now):
    """Always mailed, once per error (repeated like any alert): the checks of this instance
    fail, so nothing scales it until an operator looks."""
    return notification_send(
        instance=instance, kind=Kind.CHECK_FAILED, fingerprint=f"check-failed:{error[:150]}",
        subject=f"{instance.name}: cannot be judged, scaling checks fail",
        lines=[
            f"Error: {error}",
            "No plan change is made for this instance until its checks succeed again.",
        ],
        now=now,
    )


def account_failing_notify(*, account, now):
    """Always mailed, once per condition of the account (its `problem`, a compare-and-set
    transition, and the repeat period like any alert): Heroku refuses the account's key
    (401) or its rate limit is used up. The other accounts' instances are not affected."""
    fingerprint = f"account:{account.name}:{account.problem}"
    repeat_after = timedelta(seconds=settings.ALERT_REPEAT_SECONDS)
    recent = Notification.objects.filter(instance=None, kind=Kind.ACCOUNT_FAILING, fingerprint=fingerprint,
                                         created_at__gt=now - repeat_after)
    if recent.exists():
        return None
    users = account.instance_count
    what_next = ("Give it a new key: python manage.py heroku_accounts add " + account.name + " --replace"
                 if account.problem == account.Problem.REFUSING else
                 "Plan changes of its instances use the reserve; ordinary reads wait until Heroku refills the pool.")
    notification = Notification.objects.create(
        instance=None, kind=Kind.ACCOUNT_FAILING, fingerprint=fingerprint,
        subject=redact(f"{settings.EMAIL_PREFIX}Heroku account {account.name}: {account.get_problem_display()}")[:300],
        body=redact("\n".join([
            f"Heroku account: {account.name}" + (f" ({account.email})" if account.email else ""),
            f"Since: {account.problem_since:%Y-%m-%d %H:%M:%S} UTC",
            f"What Heroku said: {account.problem_detail}",
            f"Instances on this account: {users}",
            what_next,
        ])),
        recipients=", ".join(mail_recipients()), created_at=now,
    )
    _deliver(notification, now)
    return notification


def _numbers(instance, decision):
    memory = "n/a" if decision.memory_pct is None else f"{decision.memory_pct:.1f}%"
    connections = "unlimited" if instance.current_plan.unlimited_connections else (
        "n/a" if decision.connection_pct is None else f"{decision.connection_pct:.1f}%"
    )
    return [
        f"Memory average:      {memory} (threshold {instance.memory_threshold}%)",
        f"Connections average: {connections} (threshold {instance.connection_threshold}%)",
        f"Reason: {decision.reason}",
    ]


def _change(action):
    delta = action.to_plan.cost - action.from_plan.cost
    return [
        f"From: {action.from_plan.describe()}",
        f"To:   {action.to_plan.describe()}",
        f"Monthly cost change: {'+' if delta >= 0 else '-'}${abs(delta)}",
    ]


def breaching_metrics(instance, decision):
    if decision.rule == "cache_hit_rate_low":
        return ["hit-rate"]
    metrics = []
    # A cache's memory is meant to be full: over its threshold is no breach.
    if (instance.workload != "cache" and decision.memory_pct is not None
            and decision.memory_pct > instance.memory_threshold):
        metrics.append("memory")
    if decision.connection_pct is not None and decision.connection_pct > instance.connection_threshold:
        metrics.append("connections")
    if decision.data_drop:
        metrics.append("data-drop")
    return metrics or ["trend"]


def breach_notify(*, instance, decision, now):
    if not instance.notify_breach:
        return None
    metrics = breaching_metrics(instance, decision)
    return notification_send(
        instance=instance, kind=Kind.BREACH,
        fingerprint=f"breach:{'+'.join(metrics)}:{instance.current_plan.plan_name}",
        subject=(f"{instance.name}: cache hit rate under {instance.min_hit_rate}% while evicting on "
                 f"{instance.current_plan.short_name}" if metrics == ["hit-rate"] else
                 f"{instance.name}: {' and '.join(metrics)} over threshold on {instance.current_plan.short_name}"),
        lines=_numbers(instance, decision), now=now,
    )


def cannot_scale_notify(*, instance, decision, now):
    """Always mailed: at the max plan and still breaching."""
    return notification_send(
        instance=instance, kind=Kind.CANNOT_SCALE, fingerprint=f"cannot-scale:{instance.max_plan.plan_name}",
        subject=f"{instance.name}: cannot scale further (max plan {instance.max_plan.short_name})",
        lines=_numbers(instance, decision) + [
            f"The max plan of this instance is {instance.max_plan.describe()}.",
            "Raise the max plan or reduce the load: Redis may evict keys or refuse connections.",
        ],
        now=now,
    )


def dry_run_notify(*, instance, action, decision, now):
    return notification_send(
        instance=instance, kind=Kind.DRY_RUN, fingerprint=f"dry-run:{action.to_plan.plan_name}",
        subject=f"{instance.name}: would scale {action.direction} to {action.to_plan.short_name} (dry run)",
        lines=_change(action) + _numbers(instance, decision) + ["Dry run: nothing was changed on Heroku."],
        now=now,
    )


def scaling_succeeded_notify(*, instance, action, now):
    if not instance.notify_success:
        return None
    return notification_send(
        instance=instance, kind=Kind.SUCCESS, fingerprint=f"success:{action.pk}",
        subject=f"{instance.name}: scaled {action.direction} to {action.to_plan.short_name}",
        lines=_change(action) + [f"Reason: {action.reason}"], now=now,
    )


def scaling_failed_notify(*, instance, action, now):
    if not instance.notify_failure:
        return None
    return notification_send(
        instance=instance, kind=Kind.FAILURE, fingerprint=f"failure:{action.to_plan.plan_name}:{action.error[:80]}",
        subject=f"{instance.name}: scaling {action.direction} to {action.to_plan.short_name} failed",
        lines=_change(action) + [f"Reason for the change: {action.reason}", f"Error: {action.error}"], now=now,
    )


def plan_outside_range_notify(*, instance, position, now):
    """Always mailed, once per plan: a plan set outside the app lies outside min..max.

    `position` is 'above' or 'below' (see engine_input.plan_range_position)."""
    plan = instance.current_plan
    where = "above the max plan" if position == "above" else "below the min plan"
    if position == "above":
        what_next = (
            "The app does not fight it: it moves back into the range only by the scale-down rules (every "
            "metric under its threshold for a whole stabilisation window, judged with the down margin). "
            "Raise the max plan to keep it."
        )
    else:
        what_next = "A plan below the min plan has less capacity than asked for: the next check raises it into the range."
    return notification_send(
        instance=instance, kind=Kind.PLAN_ADOPTED, fingerprint=f"outside-range:{plan.plan_name}",
        subject=f"{instance.name}: plan {plan.short_name} set outside the app is {where}",
        lines=[
            f"The add-on was moved to {plan.describe()} outside the app; it is adopted as the current plan.",
            f"It is {where} of this instance ({instance.min_plan.short_name} to {instance.max_plan.short_name}).",
            what_next,
        ],
        now=now,
    )
