"""The delivery relay against real receivers on localhost (notifications/relay.py): one
delivery per alert and channel, retried with growing delays on temporary failures, claimed
by compare-and-set, every attempt recorded. Time is the relay's `now` argument: nothing sleeps."""

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from notifications.models import AlertChannel, Delivery, DeliveryAttempt, Notification
from notifications.relay import CHANNEL_LEASE, GIVE_UP_AFTER, STALE_CLAIM, deliveries_due, delivery_attempt
from notifications.services import notification_send
from tests.factories import make_instance
from tests.notifications.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=dt_timezone.utc)


def _alert(instance, now=T0, fingerprint="breach:memory"):
    return notification_send(instance=instance, kind="breach", fingerprint=fingerprint, now=now,
                             subject=f"{instance.name}: memory over threshold on premium-0",
                             lines=["Memory average: 91.0% (threshold 80%)"],
                             facts={"reason": "memory average 91.0% over 80%", "details": {"memory %": 91.0}})


def _delivery(alert, channel_name):
    return Delivery.objects.get(alert=alert, channel__name=channel_name)


def _attempt(delivery, now):
    return delivery_attempt(delivery_id=delivery.pk, now=now)


def test_a_webhook_gets_the_design_body_headers_and_a_signature_over_the_raw_body(plans, env_channels):
    webhook, _ = env_channels
    alert = _alert(make_instance())
    delivery = _delivery(alert, "webhook")

    assert _attempt(delivery, T0).outcome == "delivered"

    [(headers, raw, status)] = webhook.requests
    body = json.loads(raw)
    assert status == 200 and webhook.bad_signatures == 0
    assert headers["X-Autoscaler-Signature"] == "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Autoscaler-Event"] == body["event"] == "threshold.breached"
    assert headers["X-Autoscaler-Delivery"] == body["delivery"] == str(delivery.pk)
    assert datetime.fromisoformat(body["at"]) == T0
    assert (body["instance"], body["app"], body["plan"]) == ("queue", "queue-app", "heroku-redis:premium-0")
    assert body["from"] is None and body["to"] is None
    assert body["reason"] == "memory average 91.0% over 80%"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED and delivery.attempts == 1


def test_a_500_is_retried_later_with_the_same_delivery_id_and_body(plans, env_channels):
    webhook, _ = env_channels
    webhook.script = [500, 503]
    delivery = _delivery(_alert(make_instance()), "webhook")

    first = _attempt(delivery, T0)
    assert first.outcome == "retry" and first.next_try_at == T0 + timedelta(seconds=30)
    assert _attempt(delivery, T0 + timedelta(seconds=10)).outcome == "channel busy"  # not due yet
    second = _attempt(delivery, first.next_try_at)
    assert second.outcome == "retry" and second.next_try_at == first.next_try_at + timedelta(seconds=60)
    assert _attempt(delivery, second.next_try_at).outcome == "delivered"

    bodies = {body for _, body, _ in webhook.requests}
    assert len(webhook.requests) == 3 and len(bodies) == 1
    assert [status for _, _, status in webhook.requests] == [500, 503, 200]
    attempts = DeliveryAttempt.objects.filter(delivery=delivery)
    assert [(a.outcome, a.status_code) for a in attempts] == [("retry", 500), ("retry", 503), ("delivered", 200)]


def test_a_429_waits_as_long_as_retry_after_asks(plans, env_channels):
    _, slack = env_channels
    slack.script = [(429, 600)]
    delivery = _delivery(_alert(make_instance()), "slack")
    outcome = _attempt(delivery, T0)
    assert outcome.outcome == "retry" and outcome.next_try_at == T0 + timedelta(seconds=600)
    assert delivery.pk not in deliveries_due(now=T0 + timedelta(seconds=599))
    assert delivery.pk in deliveries_due(now=T0 + timedelta(seconds=600))


def test_a_timeout_and_a_refused_connection_are_temporary(plans, env_channels):
    webhook, _ = env_channels
    webhook.script = ["timeout"]
    delivery = _delivery(_alert(make_instance()), "webhook")
    outcome = _attempt(delivery, T0)
    delivery.refresh_from_db()
    assert outcome.outcome == "retry" and delivery.last_error == "timed out"

    webhook.stop()
    outcome = _attempt(delivery, outcome.next_try_at)
    delivery.refresh_from_db()
    assert outcome.outcome == "retry" and delivery.last_error == "connection refused"


def test_a_400_fails_for_good_at_once_and_the_overview_shows_the_channel(plans, env_channels, admin_client):
    webhook, _ = env_channels
    webhook.default = 400
    delivery = _delivery(_alert(make_instance()), "webhook")
    assert _attempt(delivery, T0).outcome == "failed"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and delivery.last_error == "HTTP 400 Bad Request"
    assert delivery.pk not in deliveries_due(now=T0 + timedelta(days=2))

    page = admin_client.get("/admin/scaling/redisinstance/overview/").content.decode()
    assert 'data-channel="webhook"' in page and "HTTP 400 Bad Request" in page
    assert webhook.url not in page and "T0KEN" not in page


def test_temporary_failures_are_retried_for_more_than_a_day_then_fail_for_good(plans, env_channels):
    webhook, _ = env_channels
    webhook.stop()
    delivery = _delivery(_alert(make_instance()), "webhook")
    now, delays = T0, []
    while True:
        outcome = _attempt(delivery, now)
        if outcome.outcome != "retry":
            break
        delays.append((outcome.next_try_at - now).total_seconds())
        now = outcome.next_try_at
    assert outcome.outcome == "failed"
    assert now - T0 >= timedelta(hours=24) and now - T0 <= GIVE_UP_AFTER
    assert delays[:4] == [30, 60, 120, 240] and max(delays) == 3600
    delivery.refresh_from_db()
    assert delivery.last_error.startswith(f"gave up after {delivery.attempts} attempts")


def test_two_workers_attempting_one_delivery_send_it_once(plans, env_channels):
    webhook, _ = env_channels
    delivery = _delivery(_alert(make_instance()), "webhook")
    assert [_attempt(delivery, T0).outcome, _attempt(delivery, T0).outcome] == ["delivered", "not claimed"]
    assert len(webhook.requests) == 1


def test_a_delivery_left_by_a_dead_worker_is_taken_back_by_the_sweep(plans, env_channels):
    webhook, _ = env_channels
    delivery = _delivery(_alert(make_instance()), "webhook")
    assert delivery.claim(now=T0, stale_before=T0 - STALE_CLAIM)  # the worker dies here
    assert delivery.pk not in deliveries_due(now=T0 + STALE_CLAIM - timedelta(seconds=1))
    assert delivery.pk in deliveries_due(now=T0 + STALE_CLAIM + timedelta(seconds=1))
    assert _attempt(delivery, T0 + STALE_CLAIM + timedelta(seconds=1)).outcome == "delivered"
    assert [json.loads(body)["delivery"] for _, body, _ in webhook.requests] == [str(delivery.pk)]


def test_a_slack_message_names_the_instance_app_plan_numbers_and_links_to_the_admin(plans, env_channels):
    _, slack = env_channels
    instance = make_instance()
    _attempt(_delivery(_alert(instance), "slack"), T0)
    [message] = slack.delivered
    text = message["text"]
    assert "*[redis-autoscaler] queue: memory over threshold on premium-0*" in text
    assert "queue-app" in text and "heroku-redis:premium-0" in text and "memory %: 91.0" in text
    assert f"<https://autoscaler.example.com/admin/scaling/redisinstance/{instance.pk}/change/|" in text


def test_a_channel_receives_only_its_events_and_instances(plans, env_channels):
    queue, other = make_instance(), make_instance(name="other", app_name="other-app")
    AlertChannel.objects.filter(name="slack").update(events=["scaling.failed"])
    AlertChannel.objects.get(name="webhook").instances.set([other])
    alert = _alert(queue)
    assert sorted(Delivery.objects.filter(alert=alert).values_list("channel__name", flat=True)) == ["mail"]
    other_alert = _alert(other)
    assert sorted(Delivery.objects.filter(alert=other_alert).values_list("channel__name", flat=True)) == ["mail", "webhook"]


def test_a_repeat_is_not_decided_again_even_while_its_delivery_fails(plans, env_channels):
    webhook, _ = env_channels
    webhook.stop()
    instance = make_instance()
    first = _alert(instance)
    _attempt(_delivery(first, "webhook"), T0)
    assert _alert(instance, now=T0 + timedelta(minutes=5)) is None
    assert Notification.objects.filter(instance=instance).count() == 1


def test_a_channel_whose_url_no_key_reads_is_retried_with_the_reason_and_nothing_of_the_url(plans, env_channels, settings, caplog):
    webhook, _ = env_channels
    delivery = _delivery(_alert(make_instance()), "webhook")
    settings.SECRET_KEY = "another-secret-key-" + "y" * 40  # the derived key changes
    outcome = _attempt(delivery, T0)
    delivery.refresh_from_db()
    assert outcome.outcome == "retry" and delivery.last_error.startswith("DecryptionError")
    assert webhook.requests == []
    assert "T0KEN" not in caplog.text and "T0KEN" not in delivery.last_error


def _alerts(count):
    instance = make_instance()
    return [_alert(instance, fingerprint=f"breach:{n}") for n in range(count)]


def test_a_hanging_receiver_holds_one_worker_for_one_timeout_not_one_per_alert(plans, env_channels):
    webhook, _ = env_channels
    webhook.default = "timeout"
    deliveries = [_delivery(alert, "webhook") for alert in _alerts(4)]
    outcomes = [_attempt(delivery, T0).outcome for delivery in deliveries]
    assert outcomes == ["retry", "channel busy", "channel busy", "channel busy"]
    assert len(webhook.requests) == 1
    assert set(Delivery.objects.filter(channel__name="webhook").values_list("attempts", flat=True)) == {0, 1}


def test_a_429_holds_back_every_delivery_of_its_channel_until_retry_after(plans, env_channels):
    _, slack = env_channels
    slack.script = [(429, 600)]
    first, second = [_delivery(alert, "slack") for alert in _alerts(2)]
    assert _attempt(first, T0).outcome == "retry"
    assert _attempt(second, T0 + timedelta(seconds=599)).outcome == "channel busy"
    assert _attempt(second, T0 + timedelta(seconds=600)).outcome == "delivered"
    # ... and, the channel answering again, the first one with it
    assert [status for _, _, status in slack.requests] == [429, 200, 200]


def test_one_worker_that_takes_a_channel_sends_all_its_due_deliveries(plans, env_channels):
    webhook, _ = env_channels
    deliveries = [_delivery(alert, "webhook") for alert in _alerts(3)]
    assert _attempt(deliveries[0], T0).outcome == "delivered"
    assert sorted(body["delivery"] for body in webhook.delivered) == sorted(str(d.pk) for d in deliveries)
    assert [_attempt(d, T0).outcome for d in deliveries[1:]] == ["not claimed", "not claimed"]


def test_the_sweep_queues_one_delivery_a_channel_and_none_of_a_busy_or_failing_channel(plans, env_channels):
    _, slack = env_channels
    slack.default = 500
    alerts = _alerts(3)
    due = deliveries_due(now=T0)
    assert sorted(Delivery.objects.get(pk=pk).channel.name for pk in due) == ["mail", "slack", "webhook"]
    assert _attempt(_delivery(alerts[0], "slack"), T0).outcome == "retry"
    AlertChannel.objects.get(name="webhook").take(now=T0, lease=CHANNEL_LEASE)
    due = deliveries_due(now=T0 + timedelta(seconds=1))
    assert [Delivery.objects.get(pk=pk).channel.name for pk in due] == ["mail"]


def test_a_channel_held_by_a_worker_that_died_is_free_again_after_the_lease(plans, env_channels):
    delivery = _delivery(_alert(make_instance()), "webhook")
    assert delivery.channel.take(now=T0, lease=CHANNEL_LEASE)  # the worker dies here
    assert _attempt(delivery, T0 + timedelta(seconds=1)).outcome == "channel busy"
    assert _attempt(delivery, T0 + CHANNEL_LEASE + timedelta(seconds=1)).outcome == "delivered"


def test_an_alert_about_no_instance_is_decided_once_and_delivered_without_instance_fields(plans, env_channels):
    webhook, _ = env_channels
    AlertChannel.objects.filter(name="webhook").update(events=[])  # every event
    decide = dict(instance=None, kind="check-failed", fingerprint="account:default", subject="Heroku account failing",
                  lines=["Heroku answers 401 to the account's key."], facts={"reason": "401 unauthorized"})
    alert = notification_send(now=T0, **decide)
    assert notification_send(now=T0 + timedelta(minutes=1), **decide) is None
    _attempt(_delivery(alert, "webhook"), T0)
    [body] = webhook.delivered
    assert (body["instance"], body["app"], body["plan"], body["reason"]) == (None, None, None, "401 unauthorized")
