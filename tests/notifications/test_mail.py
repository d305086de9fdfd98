"""The mail channel through Django's SMTP backend to a real SMTP server on localhost (aiosmtpd)."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Delivery, Notification
from notifications.services import notification_send
from tests.factories import make_instance
from tests.helpers import alerts_delivered

pytestmark = pytest.mark.django_db


def _send(instance, fingerprint="breach:memory", now=None, subject="queue: memory over threshold"):
    return notification_send(instance=instance, kind="breach", fingerprint=fingerprint, subject=subject,
                             lines=["Memory average: 91.0% (threshold 80%)"], now=now or timezone.now())


def _mail_delivery(notification):
    return Delivery.objects.get(alert=notification, channel__name="mail")


def test_an_alert_reaches_a_real_smtp_server_with_prefix_recipients_and_details(plans, smtp):
    instance = make_instance(redis_url="redis://default:p4ssw0rd-secret@redis.example.com:6379")
    notification = _send(instance)
    alerts_delivered()

    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert sorted(recipients) == ["oncall@example.com", "ops@example.com"]
    assert message["Subject"] == "[autoscaler] queue: memory over threshold"
    assert message["X-Autoscaler-Event"] == "threshold.breached"
    assert message["X-Autoscaler-Delivery"] == str(_mail_delivery(notification).pk)
    body = message.get_payload(decode=True).decode()
    assert "queue-app" in body and "Memory average: 91.0%" in body
    assert f"https://autoscaler.example.com/admin/scaling/redisinstance/{instance.pk}/change/" in body
    assert "p4ssw0rd-secret" not in body
    assert Notification.objects.get(pk=notification.pk).sent_at is not None


def test_the_same_condition_is_alerted_once_then_again_when_it_changes_or_after_an_hour(plans, smtp, settings):
    settings.ALERT_REPEAT_SECONDS = 3600
    instance = make_instance()
    now = timezone.now()
    assert _send(instance, now=now) is not None
    assert _send(instance, now=now + timedelta(minutes=1)) is None
    assert _send(instance, now=now + timedelta(minutes=59)) is None
    assert _send(instance, fingerprint="breach:memory+connections", now=now + timedelta(minutes=59)) is not None
    assert _send(instance, fingerprint="breach:memory+connections", now=now + timedelta(minutes=120)) is not None
    alerts_delivered()
    assert len(smtp.messages) == 3


def test_a_refused_mail_is_retried_without_the_smtp_password_and_sent_once_the_server_is_back(plans, smtp, settings):
    settings.EMAIL_HOST_PASSWORD = "smtp-secret-password"
    smtp.stop()
    delivery = _mail_delivery(_send(make_instance()))
    alerts_delivered()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.PENDING and "ConnectionRefusedError" in delivery.last_error
    assert "smtp-secret-password" not in delivery.last_error

    settings.EMAIL_HOST_PASSWORD = ""
    smtp.start()
    alerts_delivered()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 2
    assert len(smtp.messages) == 1


def test_an_smtp_temporary_error_is_retried_and_a_permanent_one_fails_for_good(plans, smtp):
    smtp.inbox.fail_with = "451 4.3.0 try again later"
    temporary = _mail_delivery(_send(make_instance()))
    alerts_delivered()
    temporary.refresh_from_db()
    assert temporary.status == Delivery.Status.PENDING and temporary.attempt_rows.get().status_code == 451

    smtp.inbox.fail_with = "554 5.7.1 rejected"
    alerts_delivered()
    temporary.refresh_from_db()
    assert temporary.status == Delivery.Status.FAILED
    assert [row.status_code for row in temporary.attempt_rows.all()] == [451, 554]


def test_no_mail_delivery_is_made_when_emails_are_disabled(plans, settings):
    settings.ENABLE_EMAILS = False
    notification = _send(make_instance())
    assert not Delivery.objects.filter(alert=notification).exists()
    assert alerts_delivered() == []


def test_a_condition_flipping_between_two_states_alerts_each_state_once_an_hour(plans, settings):
    settings.ALERT_REPEAT_SECONDS = 3600
    instance = make_instance()
    now = timezone.now()
    for minute in range(30):
        _send(instance, fingerprint="breach:memory" if minute % 2 else "breach:memory+connections",
              now=now + timedelta(minutes=minute))
    assert len(alerts_delivered()) == 2


def test_with_recipients_empty_mails_go_to_the_active_admin_users_with_an_address(plans, settings, django_user_model):
    settings.RECIPIENTS = []
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw-0123456789")
    django_user_model.objects.create_superuser("second", "second@example.com", "pw-0123456789")
    django_user_model.objects.create_superuser("gone", "gone@example.com", "pw-0123456789", is_active=False)
    django_user_model.objects.create_superuser("silent", "", "pw-0123456789")
    django_user_model.objects.create_user("staff", "staff@example.com", "pw-0123456789", is_staff=True)
    notification = _send(make_instance())
    assert [sorted(message.to) for message in alerts_delivered()] == [["admin@example.com", "second@example.com"]]
    notification.refresh_from_db()
    assert notification.sent_at is not None
    assert notification.recipients == "admin@example.com, second@example.com"


def test_with_no_one_to_mail_the_mail_delivery_fails_for_good(plans, settings):
    settings.RECIPIENTS = []
    delivery = _mail_delivery(_send(make_instance()))
    assert alerts_delivered() == []
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and "no one to mail" in delivery.last_error


def test_without_an_smtp_server_a_mail_is_one_info_log_record_with_its_whole_text(plans, settings, caplog):
    settings.EMAIL_BACKEND = "notifications.backends.LogEmailBackend"
    caplog.set_level(logging.INFO)
    instance = make_instance()
    notification = _send(instance)
    alerts_delivered()
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
