"""Which alerts are decided, when, and what they say.

Every alert is a Notification row written in the transaction of the state it reports (the
caller's; a savepoint here), under a row lock on its instance, and the alerts of the same kind
decide whether it is a repeat: the same condition (fingerprint) is alerted once, then again
only after ALERT_REPEAT_SECONDS; a new condition at once. Repeats count alerts decided, not
alerts delivered: delivery is the relay's (notifications/relay.py), one Delivery per channel,
retried until it goes through or fails for good, so an outage delays alerts but loses none.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from autoscaler.redaction import redact
from notifications.channels import mail_recipients as channel_mail_recipients
from notifications.events import event_of_kind
from notifications.models import AlertChannel, Notification
from notifications.relay import deliveries_create
from scaling.models import RedisInstance

logger = logging.getLogger(__name__)

UNREACHABLE_AFTER = RedisInstance.UNREACHABLE_AFTER  # failed samples in a row before "unreachable" is alerted
Kind = Notification.Kind


def mail_recipients():
    """RECIPIENTS, else the addresses of the active admin users (what the `mail` channel mails)."""
    return channel_mail_recipients(AlertChannel(recipients=""))


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


def _facts(instance, facts):
    """What a webhook and Slack carry, beside the mail's text (redacted like it)."""
    data = {"instance": None, "app": None, "plan": None, "from": None, "to": None, "reason": None, "details": {},
            "url": None}
    if instance is not None:
        data.update(instance=instance.name, app=instance.app_name, plan=instance.current_plan.plan_name,
                    url=instance_admin_url(instance))
    data.update(facts or {})
    if data["reason"] is not None:
        data["reason"] = redact(data["reason"])
    return data


def notification_send(*, instance, kind, fingerprint, subject, lines, now, facts=None):
    """Decide one alert: record it, with one delivery per receiving channel, unless the same
    condition was alerted recently. Returns the Notification, or None when it was a repeat.
    `instance` None: an alert about no one instance (e.g. a Heroku account), without the
    instance's header and link."""
    repeat_after = timedelta(seconds=settings.ALERT_REPEAT_SECONDS)
    with transaction.atomic():
        # The row lock makes two workers' checks of the same alert act once.
        if instance is not None:
            RedisInstance.objects.select_for_update().filter(pk=instance.pk).first()
        # Any alert of this condition within the repeat period, not just the last one: a
        # condition flipping between two states (A, B, A, B...) alerts each state once.
        recent = Notification.objects.filter(instance=instance, kind=kind, created_at__gt=now - repeat_after)
        if recent.filter(fingerprint=fingerprint[:200]).exists():
            return None
        text = list(lines) if instance is None else (
            _header(instance) + [""] + list(lines) + ["", f"Details: {instance_admin_url(instance)}"])
        body = redact("\n".join(text))
        notification = Notification.objects.create(
            instance=instance, kind=kind, event=event_of_kind(kind), fingerprint=fingerprint[:200],
            subject=redact(f"{settings.EMAIL_PREFIX}{subject}")[:300], body=body, data=_facts(instance, facts),
            recipients=", ".join(mail_recipients()), created_at=now,
        )
        deliveries_create(alert=notification)
    return notification


def summary_send(*, kind, fingerprint, subject, lines, now):
    """Record a message about all instances (no instance, no repeat check) for the channels
    that receive its event (the weekly summary: mail)."""
    with transaction.atomic():
        notification = Notification.objects.create(
            instance=None, kind=kind, event=event_of_kind(kind), fingerprint=fingerprint[:200],
            subject=redact(f"{settings.EMAIL_PREFIX}{subject}")[:300], body=redact("\n".join(lines)),
            data={"reason": subject}, recipients=", ".join(settings.RECIPIENTS), created_at=now,
        )
        deliveries_create(alert=notification)
    return notification


class UnknownChannel(Exception):
    pass


def alert_test_send(*, now, channel_name=None):
    """One `test` alert through the relay: to the named channel, else to every channel that
    receives `test`. Returns the Notification and its deliveries."""
    channels = None
    if channel_name is not None:
        channels = list(AlertChannel.objects.filter(name=channel_name))
        if not channels:
            known = ", ".join(AlertChannel.objects.values_list("name", flat=True)) or "none"
            raise UnknownChannel(f"no alert channel named {channel_name!r} (channels: {known})")
    subject = "test alert: this channel receives the autoscaler's alerts"
    with transaction.atomic():
        notification = Notification.objects.create(
            instance=None, kind=Kind.TEST, event=event_of_kind(Kind.TEST), fingerprint=f"test:{now.isoformat()}",
            subject=f"{settings.EMAIL_PREFIX}{subject}", created_at=now, recipients=", ".join(mail_recipients()),
            body="A test alert, sent with `manage.py send_test_alert` or the admin's action. Nothing is wrong.",
            data={"instance": None, "app": None, "plan": None, "from": None, "to": None, "reason": "test alert",
                  "details": {}, "url": None},
        )
        deliveries = deliveries_create(alert=notification, channels=channels)
    return notification, deliveries


def unreachable_instances_notify(*, instance_ids, now=None):
    """Alert for each instance that has failed UNREACHABLE_AFTER samples in a row (once per
    outage: a recovery in between makes the next outage a new condition)."""
    from django.utils import timezone

    from logs.models import MetricLog

    now = now or timezone.now()
    for instance in RedisInstance.objects.with_plans().filter(RedisInstance.unreachable_q(), pk__in=instance_ids):
        last = MetricLog.objects.filter(instance=instance).order_by("-collected_at").first()
        reason = last.error if last and not last.ok else "unknown"
        recoveries = Notification.objects.filter(instance=instance, kind=Kind.RECOVERED).count()
        notification_send(
            # One condition whatever the reason of the last failure: a dying Redis that fails
            # by turns with a timeout and a garbled reply must not alert at every change.
            instance=instance, kind=Kind.UNREACHABLE, fingerprint=f"unreachable:{recoveries}",
            facts={"reason": f"last error: {reason}",
                   "details": {"failed samples in a row": instance.consecutive_failures}},
            subject=f"{instance.name}: Redis unreachable ({instance.consecutive_failures} samples in a row)",
            lines=[
                f"The last {instance.consecutive_failures} samples of this Redis failed.",
                f"Last error: {reason}",
                "Scaling decisions wait for successful samples; a failed read never scales down.",
            ],
            now=now,
        )


def recovered_instances_notify(*, instance_ids, now):
    """Alert for each instance whose sample succeeded after it was alerted as unreachable
    (`instance_ids`: instances that had failed UNREACHABLE_AFTER samples in a row or more)."""
    for instance in RedisInstance.objects.with_plans().filter(pk__in=instance_ids):
        unreachable = Notification.objects.filter(instance=instance, kind=Kind.UNREACHABLE).order_by("-created_at").first()
        recovered = Notification.objects.filter(instance=instance, kind=Kind.RECOVERED).order_by("-created_at").first()
        if unreachable is None or (recovered and recovered.created_at >= unreachable.created_at):
            continue
        notification_send(
            instance=instance, kind=Kind.RECOVERED, fingerprint=f"recovered:{unreachable.pk}",
            subject=f"{instance.name}: Redis reachable again",
            lines=[f"A sample of this Redis succeeded again after it was reported unreachable at "
                   f"{unreachable.created_at:%Y-%m-%d %H:%M} UTC."],
            facts={"reason": "a sample succeeded again"}, now=now,
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
        facts={"reason": error}, now=now,
    )


def account_failing_notify(*, account, now):
    """Once per condition of the account (its `problem`, a compare-and-set transition, and the
    repeat period like any alert): Heroku refuses the account's key (401) or its rate limit is
    used up. The other accounts' instances are not affected. Event `heroku.account_failing`."""
    problem = f"Heroku account {account.name}: {account.get_problem_display()}"
    what_next = ("Give it a new key: python manage.py heroku_accounts add " + account.name + " --replace"
                 if account.problem == account.Problem.REFUSING else
                 "Plan changes of its instances use the reserve; ordinary reads wait until Heroku refills the pool.")
    return notification_send(
        instance=None, kind=Kind.ACCOUNT_FAILING, fingerprint=f"account:{account.name}:{account.problem}",
        subject=problem, now=now,
        lines=[
            f"Heroku account: {account.name}" + (f" ({account.email})" if account.email else ""),
            f"Since: {account.problem_since:%Y-%m-%d %H:%M:%S} UTC",
            f"What Heroku said: {account.problem_detail}",
            f"Instances on this account: {account.instance_count}",
            what_next,
        ],
        facts={"reason": f"{problem}: {account.problem_detail}",
               "details": {"account": account.name, "problem": account.problem,
                           "instances": account.instance_count}},
    )


def _decision_facts(instance, decision, **more):
    return {"reason": decision.reason, "details": {
        "memory %": None if decision.memory_pct is None else round(decision.memory_pct, 1),
        "memory threshold %": instance.memory_threshold,
        "connections %": None if decision.connection_pct is None else round(decision.connection_pct, 1),
        "connections threshold %": instance.connection_threshold,
    }, **more}


def _action_facts(action, **more):
    return {"from": action.from_plan.plan_name, "to": action.to_plan.plan_name, "reason": action.reason,
            "details": {"monthly cost change": str(action.to_plan.cost - action.from_plan.cost)}, **more}


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
        lines=_numbers(instance, decision), facts=_decision_facts(instance, decision), now=now,
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
        facts=_decision_facts(instance, decision, to=instance.max_plan.plan_name), now=now,
    )


def dry_run_notify(*, instance, action, decision, now):
    return notification_send(
        instance=instance, kind=Kind.DRY_RUN, fingerprint=f"dry-run:{action.to_plan.plan_name}",
        subject=f"{instance.name}: would scale {action.direction} to {action.to_plan.short_name} (dry run)",
        lines=_change(action) + _numbers(instance, decision) + ["Dry run: nothing was changed on Heroku."],
        facts=_action_facts(action), now=now,
    )


def scaling_succeeded_notify(*, instance, action, now):
    if not instance.notify_success:
        return None
    return notification_send(
        instance=instance, kind=Kind.SUCCESS, fingerprint=f"success:{action.pk}",
        subject=f"{instance.name}: scaled {action.direction} to {action.to_plan.short_name}",
        lines=_change(action) + [f"Reason: {action.reason}"], facts=_action_facts(action), now=now,
    )


def scaling_failed_notify(*, instance, action, now):
    if not instance.notify_failure:
        return None
    return notification_send(
        instance=instance, kind=Kind.FAILURE, fingerprint=f"failure:{action.to_plan.plan_name}:{action.error[:80]}",
        subject=f"{instance.name}: scaling {action.direction} to {action.to_plan.short_name} failed",
        lines=_change(action) + [f"Reason for the change: {action.reason}", f"Error: {action.error}"],
        facts=_action_facts(action, reason=f"{action.reason}; error: {action.error}"), now=now,
    )


def plan_adopted_notify(*, instance, old_plan, position, now):
    """A plan changed outside the app was adopted (alerted once per change); `position` is
    'above' or 'below' when the plan lies outside min..max (engine_input.plan_range_position),
    else None."""
    plan = instance.current_plan
    lines = [f"The add-on was moved from {old_plan.describe()} to {plan.describe()} outside the app; "
             "it is adopted as the current plan."]
    if position is None:
        subject = f"{instance.name}: plan changed outside the app to {plan.short_name}, adopted"
        fingerprint = f"adopted:{old_plan.plan_name}:{plan.plan_name}"
        reason = "plan changed outside the app"
    else:
        where = "above the max plan" if position == "above" else "below the min plan"
        subject = f"{instance.name}: plan {plan.short_name} set outside the app is {where}"
        fingerprint = f"outside-range:{plan.plan_name}"
        reason = f"plan set outside the app is {where}"
        lines.append(f"It is {where} of this instance ({instance.min_plan.short_name} to {instance.max_plan.short_name}).")
        lines.append(
            "The app does not fight it: it moves back into the range only by the scale-down rules (every "
            "metric under its threshold for a whole stabilisation window, judged with the down margin). "
            "Raise the max plan to keep it." if position == "above" else
            "A plan below the min plan has less capacity than asked for: the next check raises it into the range.")
    return notification_send(
        instance=instance, kind=Kind.PLAN_ADOPTED, fingerprint=fingerprint, subject=subject, lines=lines,
        facts={"from": old_plan.plan_name, "to": plan.plan_name, "reason": reason}, now=now,
    )
