"""Instances breach, scale and become unreachable while every channel is down (SMTP refused,
Slack answering 500, the webhook refused, then 429 with Retry-After and a timeout): the
scaling goes on untouched, and after the outage each alert reaches each channel exactly once
(by delivery id), signed, with no secret in any body or log."""

import logging
from collections import Counter
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from notifications.models import Delivery, Notification
from notifications.relay import deliveries_due, delivery_attempt
from scaling.services.collection import samples_collect
from tests.factories import make_instance
from tests.notifications.conftest import WEBHOOK_SECRET
from tests.scaling.live import STEP, LiveLoop, fill, reader  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=dt_timezone.utc)
REDIS_PASSWORD = "redis-pa55word-0123"



def _relay_until_settled(now, *, limit=timedelta(hours=3)):
    """The sweep every 30 s of relay time, each due delivery attempted as its task would."""
    end = now + limit
    while now < end and Delivery.objects.filter(status__in=["pending", "sending"]).exists():
        for delivery_id in deliveries_due(now=now):
            delivery_attempt(delivery_id=delivery_id, now=now)
        now += timedelta(seconds=30)
    return now


def test_an_outage_of_every_channel_delays_alerts_loses_none_and_delivers_each_once(
        plans, heroku, redis_server_factory, reader, smtp, env_channels, caplog, settings):  # noqa: F811
    webhook, slack = env_channels
    heroku.responses_mock.add_passthru("http://127.0.0.1")  # the receivers are real, Heroku is faked
    caplog.set_level(logging.DEBUG)
    server = redis_server_factory(password=REDIS_PASSWORD)
    addon = heroku.add_redis_addon("queue-app", plan="heroku-redis:premium-0", url=server.url)
    queue = make_instance(name="queue", app_name="queue-app", plan="heroku-redis:premium-0",
                          min_plan="heroku-redis:premium-0", max_plan="heroku-redis:premium-3",
                          redis_url=server.url, addon_id=addon["id"], addon_name=addon["name"])
    dead_server = redis_server_factory(password=REDIS_PASSWORD)
    dead = make_instance(name="dead", app_name="dead-app", redis_url=dead_server.url)
    dead_server.stop()

    # The outage: mail refused, Slack 500, the webhook refused.
    smtp.stop()
    slack.default = 500
    webhook.stop()

    def dead_sample():
        samples_collect(due=[(dead.pk, loop.now + STEP)], reader=reader, now_fn=lambda: loop.now + STEP)

    loop = LiveLoop(queue, reader, start=T0, tick=dead_sample)
    loop.run(120)
    fill(server, 45)  # 90 % of premium-0's 50 MB
    loop.run(180)

    # The checks scaled with every channel down, and never waited for one: no receiver was called.
    assert loop.plan == "heroku-redis:premium-1"
    assert slack.requests == [] and webhook.requests == [] and smtp.messages == []
    events = set(Notification.objects.values_list("event", flat=True))
    assert {"threshold.breached", "scaling.succeeded", "instance.unreachable"} <= events

    # Ten minutes of the relay during the outage: every attempt fails, and is retried.
    outage_end = _relay_until_settled(loop.now, limit=timedelta(minutes=10))
    assert not Delivery.objects.filter(status="delivered").exists()
    assert not Delivery.objects.filter(status="failed").exists()
    assert len(slack.requests) > Delivery.objects.filter(channel__name="slack").count()

    # The receivers come back, the webhook first with a 429 (Retry-After 90 s) and a timeout.
    smtp.start()
    webhook.script = [(429, 90), "timeout"]
    webhook.start()
    slack.default = 200
    _relay_until_settled(outage_end)

    deliveries = Delivery.objects.select_related("channel")
    assert deliveries.count() == Notification.objects.count() * 3
    assert set(deliveries.values_list("status", flat=True)) == {"delivered"}
    by_channel = {name: Counter() for name in ("mail", "slack", "webhook")}
    for body in webhook.delivered:
        by_channel["webhook"][body["delivery"]] += 1
    by_channel["slack"].update(slack.delivered_ids)
    for _, message in smtp.messages:
        by_channel["mail"][message["X-Autoscaler-Delivery"]] += 1
    for name, counts in by_channel.items():
        expected = {str(pk) for pk in deliveries.filter(channel__name=name).values_list("pk", flat=True)}
        assert set(counts) == expected and set(counts.values()) == {1}, name
    assert webhook.bad_signatures == 0
    assert 429 in [status for _, _, status in webhook.requests]

    # Nothing secret in anything sent, recorded or logged.
    sent = [body.decode() for _, body, _ in webhook.requests + slack.requests]
    sent += [message.as_string() for _, message in smtp.messages]
    recorded = list(Delivery.objects.values_list("last_error", flat=True))
    recorded += [str(row) for row in Notification.objects.values_list("subject", "body", "data")]
    for secret in (REDIS_PASSWORD, WEBHOOK_SECRET, "T0KEN-in-path", "slack-secret-token"):
        assert not any(secret in text for text in sent + recorded), secret
        assert secret not in caplog.text, secret
