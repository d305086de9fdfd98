"""The channels' transports (mail, Slack, signed webhook) and the channels made from the
environment.

A transport sends one delivery once and says how it went as a `SendResult`; it never
retries and never sleeps (notifications/relay.py schedules the retries). Every network call
has a strict timeout, so a slow receiver holds one delivery task for seconds at most and
never a scaling check (deliveries are tasks of their own).
"""

import hashlib
import hmac
import json
import smtplib
import socket
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction

from autoscaler.redaction import redact
from notifications.events import DESIGN_EVENTS
from notifications.models import AlertChannel

# (connect, read) seconds for Slack and webhooks; a receiver slower than this is retried later.
HTTP_TIMEOUT = (3.05, 10)
RETRY_AFTER_MAX_SECONDS = 6 * 3600


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    temporary: bool = False  # a failure worth retrying (refused, timeout, 5xx, 429, SMTP 4xx)
    status_code: int | None = None
    error: str = ""
    retry_after: int | None = None  # seconds the receiver asked us to wait (429 Retry-After)


# --- What is sent -------------------------------------------------------------------------


def webhook_body(*, alert, delivery_id):
    """DESIGN section 9's JSON object: the same on every retry of one delivery."""
    data = alert.data or {}
    body = {
        "event": alert.event,
        "delivery": str(delivery_id),
        "at": alert.created_at.isoformat(),
        "instance": data.get("instance"),
        "app": data.get("app"),
        "plan": data.get("plan"),
        "from": data.get("from"),
        "to": data.get("to"),
        "reason": data.get("reason"),
        "subject": alert.subject,
        "details": data.get("details") or {},
        "url": data.get("url"),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def webhook_signature(*, secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def slack_message(*, alert):
    """A Slack incoming-webhook message a person reads at a glance: the subject, then the
    instance, app, plans and numbers, and a link to the admin."""
    data = alert.data or {}
    lines = [f"*{alert.subject}*"]
    if data.get("instance"):
        lines.append(f"Instance *{data['instance']}* of app `{data.get('app')}`, plan `{data.get('plan')}`")
    if data.get("from") or data.get("to"):
        lines.append(f"Plan change: `{data.get('from')}` → `{data.get('to')}`")
    lines.extend(f"{name}: {value}" for name, value in (data.get("details") or {}).items())
    if data.get("reason"):
        lines.append(f"Reason: {data['reason']}")
    if data.get("url"):
        lines.append(f"<{data['url']}|Open in the admin>")
    return {"text": redact("\n".join(lines))}


# --- Transports -----------------------------------------------------------------------------


def _http_post(*, url, body, headers):
    try:
        response = requests.post(url, data=body, headers=headers, timeout=HTTP_TIMEOUT, allow_redirects=False)
    except requests.Timeout:
        return SendResult(delivered=False, temporary=True, error="timed out")
    except requests.ConnectionError as error:
        cause = "connection refused" if "refused" in str(error).lower() else "connection failed"
        return SendResult(delivered=False, temporary=True, error=cause)
    except requests.RequestException as error:
        # A URL requests cannot use (its text would name the URL: only the kind is kept).
        return SendResult(delivered=False, error=f"{type(error).__name__}: the URL cannot be used")
    status = response.status_code
    if 200 <= status < 300:
        return SendResult(delivered=True, status_code=status)
    # The receiver's own text may echo what we sent; only its status and a short reason are kept.
    error = f"HTTP {status} {response.reason or ''}".strip()
    if status == 429:
        return SendResult(delivered=False, temporary=True, status_code=status, error=error,
                          retry_after=_retry_after(response.headers.get("Retry-After")))
    if status >= 500 or status == 408:
        return SendResult(delivered=False, temporary=True, status_code=status, error=error)
    return SendResult(delivered=False, status_code=status, error=error)


def _retry_after(value):
    """Retry-After as seconds (a number or an HTTP date), bounded; None when absent or garbled."""
    if not value:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        try:
            from django.utils import timezone

            seconds = int((parsedate_to_datetime(value) - timezone.now()).total_seconds())
        except (TypeError, ValueError):
            return None
    return max(0, min(seconds, RETRY_AFTER_MAX_SECONDS))


def _headers(*, alert, delivery_id):
    return {
        "Content-Type": "application/json",
        "User-Agent": "redis-autoscaler",
        "X-Autoscaler-Event": alert.event,
        "X-Autoscaler-Delivery": str(delivery_id),
    }


def webhook_send(*, channel, alert, delivery_id):
    body = webhook_body(alert=alert, delivery_id=delivery_id)
    headers = _headers(alert=alert, delivery_id=delivery_id)
    if channel.secret:
        headers["X-Autoscaler-Signature"] = webhook_signature(secret=channel.secret, body=body)
    return _http_post(url=channel.url, body=body, headers=headers)


def slack_send(*, channel, alert, delivery_id):
    body = json.dumps(slack_message(alert=alert)).encode()
    # Slack ignores the X-Autoscaler headers; a Slack-shaped relay of one's own can use them.
    return _http_post(url=channel.url, body=body, headers=_headers(alert=alert, delivery_id=delivery_id))


def mail_recipients(channel):
    """The channel's own addresses; for an empty list RECIPIENTS, else the active admin users."""
    own = [address.strip() for address in channel.recipients.split(",") if address.strip()]
    if own:
        return own
    if settings.RECIPIENTS:
        return list(settings.RECIPIENTS)
    from django.contrib.auth import get_user_model

    admins = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    return sorted(set(admins.values_list("email", flat=True)))


def mail_send(*, channel, alert, delivery_id):
    recipients = mail_recipients(channel)
    if not recipients:
        return SendResult(delivered=False, error="no one to mail (RECIPIENTS is empty and no admin user has an address)")
    message = EmailMessage(subject=alert.subject, body=alert.body, from_email=settings.SERVER_EMAIL, to=recipients,
                           headers={"X-Autoscaler-Event": alert.event, "X-Autoscaler-Delivery": str(delivery_id)},
                           connection=get_connection(timeout=settings.EMAIL_TIMEOUT))
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        return SendResult(delivered=False, temporary=all(400 <= code < 500 for code in codes),
                          status_code=codes[0] if codes else None, error=f"recipients refused (SMTP {codes})")
    except smtplib.SMTPResponseException as error:
        return SendResult(delivered=False, temporary=400 <= error.smtp_code < 500, status_code=error.smtp_code,
                          error=redact(f"{type(error).__name__}: SMTP {error.smtp_code}")[:500])
    except (smtplib.SMTPException, OSError, socket.timeout) as error:
        # Refused, reset, timed out, disconnected: the server may be back in a minute.
        return SendResult(delivered=False, temporary=True, error=redact(f"{type(error).__name__}: {error}")[:500])
    return SendResult(delivered=True)


TRANSPORTS = {
    AlertChannel.Kind.MAIL: mail_send,
    AlertChannel.Kind.SLACK: slack_send,
    AlertChannel.Kind.WEBHOOK: webhook_send,
}


def channel_send(*, channel, alert, delivery_id):
    return TRANSPORTS[channel.kind](channel=channel, alert=alert, delivery_id=delivery_id)


# --- Channels from the environment ---------------------------------------------------------

ENV_CHANNELS = {
    # name: (kind, variable)
    "mail": (AlertChannel.Kind.MAIL, "RECIPIENTS"),
    "slack": (AlertChannel.Kind.SLACK, "SLACK_WEBHOOK_URL"),
    "webhook": (AlertChannel.Kind.WEBHOOK, "ALERT_WEBHOOK_URL"),
}


@dataclass(frozen=True)
class ChannelSyncResult:
    created: list
    updated: list
    disabled: list


@transaction.atomic
def alert_channels_sync():
    """Make or update the channel of each variable: `mail` always (RECIPIENTS; empty: the
    admin users), `slack` from SLACK_WEBHOOK_URL, `webhook` from ALERT_WEBHOOK_URL signed with
    ALERT_WEBHOOK_SECRET. A channel whose variable was unset is disabled, not deleted (its
    deliveries stay on record). Their events and instances, once set in the admin, are kept."""
    created, updated, disabled = [], [], []
    values = {
        "mail": "",  # mail reads RECIPIENTS at send time: the variable is its configuration
        "slack": settings.SLACK_WEBHOOK_URL,
        "webhook": settings.ALERT_WEBHOOK_URL,
    }
    for name, (kind, variable) in ENV_CHANNELS.items():
        url = values[name]
        channel = AlertChannel.objects.select_for_update().filter(name=name, env_var=variable).first()
        wanted = kind == AlertChannel.Kind.MAIL or bool(url)
        if channel is None:
            if not wanted or AlertChannel.objects.filter(name=name).exists():
                continue  # unset, or an admin-made channel already has the name
            channel = AlertChannel(name=name, kind=kind, env_var=variable,
                                   events=[] if kind == AlertChannel.Kind.MAIL else list(DESIGN_EVENTS))
            created.append(name)
        elif not wanted:
            if channel.enabled:
                AlertChannel.objects.filter(pk=channel.pk).update(enabled=False)
                disabled.append(name)
            continue
        elif _changed(channel, url=url, secret=settings.ALERT_WEBHOOK_SECRET if name == "webhook" else ""):
            updated.append(name)
        else:
            continue
        channel.enabled = True
        if kind != AlertChannel.Kind.MAIL:
            channel.url = url
        if name == "webhook":
            channel.secret = settings.ALERT_WEBHOOK_SECRET
        channel.save()
    return ChannelSyncResult(created=created, updated=updated, disabled=disabled)


def _changed(channel, *, url, secret):
    try:
        return not channel.enabled or channel.url != url or channel.secret != secret
    except Exception:  # noqa: BLE001 - unreadable under the current keys: written again
        return True


def alert_channels_sync_after_migrate(sender, using="default", **kwargs):
    """post_migrate: every `migrate` (Heroku's release phase, initialize.sh, scripts/run)
    brings the channels in line with the environment."""
    if AlertChannel._meta.db_table not in connection.introspection.table_names():
        return
    alert_channels_sync()
