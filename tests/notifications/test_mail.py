"""Mails through Django's SMTP backend to a real SMTP server on localhost (aiosmtpd)."""

import logging
import socket
from datetime import timedelta
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notification_send
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    settings.RECIPIENTS = ["ops@example.com", "oncall@example.com"]
    settings.EMAIL_PREFIX = "[autoscaler] "
    yield inbox
    controller.stop()


def _send(instance, fingerprint="breach:memory", now=None, subject="queue: memory over threshold"):
    return notification_send(instance=instance, kind="breach", fingerprint=fingerprint, subject=subject,
                             lines=["Memory average: 91.0% (threshold 80%)"], now=now or timezone.now())


def test_an_alert_reaches_a_real_smtp_server_with_prefix_recipients_and_details(plans, smtp):
    instance = make_instance(redis_url="redis://default:p4ssw0rd-secret@redis.example.com:6379")
    notification = _send(instance)

    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert sorted(recipients) == ["oncall@example.com", "ops@example.com"]
    assert message["Subject"] == "[autoscaler] queue: memory over threshold"
    body = message.get_payload(decode=True).decode()
    assert "queue-app" in body and "Memory average: 91.0%" in body
    assert f"https://autoscaler.example.com/admin/scaling/redisinstance/{instance.pk}/change/" in body
    assert "p4ssw0rd-secret" not in body
    assert Notification.objects.get(pk=notification.pk).sent_at is not None


def test_the_same_condition_is_mailed_once_then_again_when_it_changes_or_after_an_hour(plans, smtp, settings):
    settings.ALERT_REPEAT_SECONDS = 3600
    instance = make_instance()
    now = timezone.now()
    assert _send(instance, now=now) is not None
    assert _send(instance, now=now + timedelta(minutes=1)) is None
    assert _send(instance, now=now + timedelta(minutes=59)) is None
    assert _send(instance, fingerprint="breach:memory+connections", now=now + timedelta(minutes=59)) is not None
    assert _send(instance, fingerprint="breach:memory+connections", now=now + timedelta(minutes=120)) is not None
    assert len(smtp.messages) == 3


def test_a_mail_that_cannot_be_sent_is_recorded_and_does_not_raise(plans, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", _free_port(), False
    settings.EMAIL_HOST_PASSWORD = "smtp-secret-password"
    instance = make_instance()
    notification = _send(instance)
    notification.refresh_from_db()
    assert notification.sent_at is None
    assert "ConnectionRefusedError" in notification.error
    assert "smtp-secret-password" not in notification.error


def test_no_mail_is_sent_when_emails_are_disabled(plans, settings):
    settings.ENABLE_EMAILS = False
    instance = make_instance()
    notification = _send(instance)
    assert mail.outbox == []
    assert "ENABLE_EMAILS is off" in Notification.objects.get(pk=notification.pk).error


def test_a_condition_flipping_between_two_states_mails_each_state_once_an_hour(plans, settings):
    settings.ALERT_REPEAT_SECONDS = 3600
    instance = make_instance()
    now = timezone.now()
    for minute in range(30):
        _send(instance, fingerprint="breach:memory" if minute % 2 else "breach:memory+connections",
              now=now + timedelta(minutes=minute))
    assert len(mail.outbox) == 2


@pytest.fixture
def warnings_afresh():
    """Each condition is warned about once per process; each test starts as a new process."""
    from notifications import services

    services.delivery_warnings.forget()
    yield
    services.delivery_warnings.forget()


def _mail_warnings(caplog):
    return [record for record in caplog.records
            if record.name == "notifications.services" and record.levelno == logging.WARNING]


def test_with_recipients_empty_mails_go_to_the_active_admin_users_with_an_address(plans, settings, django_user_model):
    settings.RECIPIENTS = []
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw-0123456789")
    django_user_model.objects.create_superuser("second", "second@example.com", "pw-0123456789")
    django_user_model.objects.create_superuser("gone", "gone@example.com", "pw-0123456789", is_active=False)
    django_user_model.objects.create_superuser("silent", "", "pw-0123456789")
    django_user_model.objects.create_user("staff", "staff@example.com", "pw-0123456789", is_staff=True)
    notification = _send(make_instance())
    assert [sorted(message.to) for message in mail.outbox] == [["admin@example.com", "second@example.com"]]
    notification.refresh_from_db()
    assert notification.sent_at is not None
    assert notification.recipients == "admin@example.com, second@example.com"


def test_with_no_one_to_mail_one_warning_is_logged_however_many_alerts(plans, settings, caplog, warnings_afresh):
    settings.RECIPIENTS = []
    caplog.set_level(logging.INFO)
    instance = make_instance()
    notifications = [_send(instance, fingerprint=f"breach:{n}") for n in range(3)]
    assert mail.outbox == []
    warnings = _mail_warnings(caplog)
    assert len(warnings) == 1, caplog.text
    assert "RECIPIENTS" in warnings[0].getMessage() and "admin" in warnings[0].getMessage()
    for notification in notifications:
        notification.refresh_from_db()
        assert notification.sent_at is None and "no one to mail" in notification.error


def test_a_mail_server_refusing_is_warned_about_once_and_again_after_a_mail_went_through(plans, settings, caplog, warnings_afresh):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", _free_port(), False
    caplog.set_level(logging.INFO)
    instance = make_instance()
    for n in range(3):
        _send(instance, fingerprint=f"breach:{n}")
    warnings = _mail_warnings(caplog)
    assert len(warnings) == 1, caplog.text
    assert "ConnectionRefusedError" in warnings[0].getMessage()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _send(instance, fingerprint="breach:sent")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    _send(instance, fingerprint="breach:after")
    assert len(_mail_warnings(caplog)) == 2


def test_without_an_smtp_server_a_mail_is_one_info_log_record_with_its_whole_text(plans, settings, caplog):
    settings.EMAIL_BACKEND = "notifications.backends.LogEmailBackend"
    caplog.set_level(logging.INFO)
    instance = make_instance()
    notification = _send(instance)
    records = [record for record in caplog.records if record.name == "notifications.mail"]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO
    text = records[0].getMessage()
    assert "Subject: [redis-autoscaler] queue: memory over threshold" in text
    assert "To: ops@example.com" in text
    assert "Memory average: 91.0%" in text
    assert f"https://autoscaler.example.com/admin/scaling/redisinstance/{instance.pk}/change/" in text
    notification.refresh_from_db()
    assert notification.sent_at is not None
