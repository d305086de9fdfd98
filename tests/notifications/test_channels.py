"""Alert channels: made from the environment at start-up, secrets encrypted at rest and masked
in the admin, re-encrypted by key rotation; test alerts from the command and the admin; the
event registry; instance.recovered after an unreachable alert."""

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from notifications import events
from notifications.channels import alert_channels_sync
from notifications.models import AlertChannel, Delivery, Notification
from notifications.services import recovered_instances_notify, unreachable_instances_notify
from scaling.models import RedisInstance
from tests.factories import make_instance
from tests.helpers import alerts_delivered
from tests.notifications.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=dt_timezone.utc)


def _stored(name):
    with connection.cursor() as cursor:
        cursor.execute("SELECT url_encrypted, secret_encrypted FROM notifications_alertchannel WHERE name = %s", [name])
        return " ".join(cursor.fetchone())


def test_each_variable_makes_one_channel_and_a_second_start_up_changes_nothing(db, settings):
    settings.SLACK_WEBHOOK_URL = "https://hooks.slack.com/services/T1/B1/slack-token-0123456789"
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = "https://ops.example.com/hook/abc", WEBHOOK_SECRET
    first = alert_channels_sync()
    assert sorted(first.created) == ["slack", "webhook"]  # `mail` was made when the database was migrated
    assert alert_channels_sync() == type(first)(created=[], updated=[], disabled=[])

    slack, webhook = AlertChannel.objects.get(name="slack"), AlertChannel.objects.get(name="webhook")
    assert (slack.kind, slack.url, slack.env_var) == ("slack", settings.SLACK_WEBHOOK_URL, "SLACK_WEBHOOK_URL")
    assert (webhook.url, webhook.secret) == (settings.ALERT_WEBHOOK_URL, WEBHOOK_SECRET)
    assert slack.events == webhook.events == events.DESIGN_EVENTS
    assert AlertChannel.objects.get(name="mail").env_var == "RECIPIENTS"
    stored = _stored("slack") + _stored("webhook")
    assert "slack-token" not in stored and "ops.example.com" not in stored and WEBHOOK_SECRET not in stored


def test_a_changed_variable_updates_its_channel_and_an_unset_one_disables_it(db, settings):
    settings.SLACK_WEBHOOK_URL = "https://hooks.slack.com/services/T1/B1/old-token-0123456789"
    alert_channels_sync()
    AlertChannel.objects.filter(name="slack").update(events=["scaling.failed"])  # chosen in the admin
    settings.SLACK_WEBHOOK_URL = "https://hooks.slack.com/services/T1/B1/new-token-0123456789"
    assert alert_channels_sync().updated == ["slack"]
    slack = AlertChannel.objects.get(name="slack")
    assert slack.url == settings.SLACK_WEBHOOK_URL and slack.events == ["scaling.failed"]

    settings.SLACK_WEBHOOK_URL = ""
    assert alert_channels_sync().disabled == ["slack"]
    assert not AlertChannel.objects.get(name="slack").enabled


def test_migrate_makes_the_channels_of_the_environment(transactional_db, settings):
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = "https://ops.example.com/hook/abc", WEBHOOK_SECRET
    call_command("migrate", verbosity=0)
    assert AlertChannel.objects.get(name="webhook").secret == WEBHOOK_SECRET


def test_the_admin_shows_channels_masked_and_never_their_url_or_secret(db, settings, admin_client):
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = "https://ops.example.com/hook/hidden-path", WEBHOOK_SECRET
    alert_channels_sync()
    webhook = AlertChannel.objects.get(name="webhook")
    pages = [admin_client.get("/admin/notifications/alertchannel/").content.decode(),
             admin_client.get(f"/admin/notifications/alertchannel/{webhook.pk}/change/").content.decode()]
    for page in pages:
        assert "https://ops.example.com/***" in page
        assert "hidden-path" not in page and WEBHOOK_SECRET not in page


def test_a_channel_added_in_the_admin_keeps_its_url_encrypted_and_empty_fields_keep_it(db, admin_client):
    response = admin_client.post("/admin/notifications/alertchannel/add/", {
        "name": "oncall", "kind": "webhook", "enabled": "on", "events": ["scaling.failed", "instance.unreachable"],
        "new_url": "https://pager.example.com/in/secret-path", "new_secret": "another-signing-secret", "recipients": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = AlertChannel.objects.get(name="oncall")
    assert (channel.url, channel.secret) == ("https://pager.example.com/in/secret-path", "another-signing-secret")
    assert channel.events == ["scaling.failed", "instance.unreachable"]
    admin_client.post(f"/admin/notifications/alertchannel/{channel.pk}/change/", {
        "name": "oncall", "kind": "webhook", "enabled": "on", "events": ["scaling.failed"], "new_url": "",
        "new_secret": "", "recipients": ""})
    channel.refresh_from_db()
    assert channel.url == "https://pager.example.com/in/secret-path" and channel.events == ["scaling.failed"]


def test_a_webhook_channel_without_a_url_is_refused_by_the_admin_and_nothing_is_written(db, admin_client):
    response = admin_client.post("/admin/notifications/alertchannel/add/", {
        "name": "nourl", "kind": "webhook", "enabled": "on", "new_url": "", "new_secret": "", "recipients": ""})
    assert response.status_code == 200 and "needs a URL" in response.content.decode()
    assert not AlertChannel.objects.filter(name="nourl").exists()


def test_send_test_alert_queues_one_test_alert_for_every_channel_that_receives_it(plans, env_channels, smtp, capsys):
    webhook, slack = env_channels
    call_command("send_test_alert")
    alert = Notification.objects.get(kind="test")
    assert alert.event == "test"
    assert sorted(Delivery.objects.filter(alert=alert).values_list("channel__name", flat=True)) == ["mail", "slack", "webhook"]
    alerts_delivered()
    assert [body["event"] for body in webhook.delivered] == ["test"] and len(slack.delivered) == 1
    assert len(smtp.messages) == 1 and webhook.bad_signatures == 0


def test_send_test_alert_to_one_channel_and_to_an_unknown_one(plans, env_channels):
    call_command("send_test_alert", "--channel", "webhook")
    assert list(Delivery.objects.values_list("channel__name", flat=True)) == ["webhook"]
    with pytest.raises(CommandError, match="no alert channel named 'nope'"):
        call_command("send_test_alert", "--channel", "nope")
    assert Notification.objects.count() == 1


def test_the_admin_action_sends_a_test_alert_to_the_chosen_channels(plans, env_channels, admin_client):
    slack = AlertChannel.objects.get(name="slack")
    response = admin_client.post("/admin/notifications/alertchannel/", {
        "action": "send_test_alert", "_selected_action": [slack.pk]})
    assert response.status_code == 302
    assert list(Delivery.objects.values_list("channel__name", "alert__event")) == [("slack", "test")]


def test_the_deliveries_list_shows_status_attempts_last_error_and_next_try(plans, env_channels, admin_client):
    webhook, _ = env_channels
    webhook.default = 503
    call_command("send_test_alert", "--channel", "webhook")
    alerts_delivered()
    page = admin_client.get("/admin/notifications/delivery/").content.decode()
    assert "HTTP 503 Service Unavailable" in page and "waiting" in page
    delivery = Delivery.objects.get()
    detail = admin_client.get(f"/admin/notifications/delivery/{delivery.pk}/change/").content.decode()
    assert "temporary failure, retried" in detail and "T0KEN" not in detail and "T0KEN" not in page


def test_key_rotation_re_encrypts_the_channels_url_and_secret(db, settings, env_channels, capsys):
    settings.ENCRYPTION_KEYS = []
    before = _stored("webhook")
    own = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [own, "derived"]
    call_command("rotate_encryption_key")
    settings.ENCRYPTION_KEYS = [own]
    webhook = AlertChannel.objects.get(name="webhook")
    assert _stored("webhook") != before and webhook.secret == WEBHOOK_SECRET and webhook.url.endswith("T0KEN-in-path")
    assert "2 alert channels' URLs and secrets re-encrypted" in capsys.readouterr().out


def test_every_event_of_the_design_is_in_the_registry_and_every_kind_has_one_event():
    assert events.DESIGN_EVENTS == [
        "threshold.breached", "scaling.succeeded", "scaling.failed", "scaling.cannot_scale_further",
        "instance.unreachable", "instance.recovered", "plan.adopted", "test"]
    assert {kind for kind, _ in Notification.Kind.choices} == set(events.BY_KIND)


def test_an_unreachable_instance_that_answers_again_is_alerted_as_recovered_once(plans):
    instance = make_instance()
    RedisInstance.objects.filter(pk=instance.pk).update(consecutive_failures=RedisInstance.UNREACHABLE_AFTER)
    recovered_instances_notify(instance_ids=[instance.pk], now=T0)
    assert not Notification.objects.filter(kind="recovered").exists()  # never alerted as unreachable

    unreachable_instances_notify(instance_ids=[instance.pk], now=T0)
    recovered_instances_notify(instance_ids=[instance.pk], now=T0 + timedelta(minutes=2))
    recovered_instances_notify(instance_ids=[instance.pk], now=T0 + timedelta(minutes=3))
    assert list(Notification.objects.order_by("created_at").values_list("event", flat=True)) == [
        "instance.unreachable", "instance.recovered"]
    # A new outage within the repeat period is a new alert.
    unreachable_instances_notify(instance_ids=[instance.pk], now=T0 + timedelta(minutes=10))
    assert Notification.objects.filter(event="instance.unreachable").count() == 2
