"""`GET /healthz` (operations/health.py, operations/views.py) on the real PostgreSQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from operations import health
from operations.heartbeats import dispatcher_tick_record
from scaling import tasks
from tests.factories import make_instance
from tests.logs.test_admin_pages import add_samples

pytestmark = pytest.mark.django_db


def get_health(client):
    response = client.get("/healthz")
    return response.status_code, response.json()


def test_healthz_is_200_with_no_login_when_beat_ticked_and_samples_are_fresh(client, plans):
    now = timezone.now()
    instance = make_instance(name="orders", metric_rate=30)
    add_samples(instance, now=now - timedelta(seconds=20), count=3)
    dispatcher_tick_record(now=now - timedelta(seconds=5))

    status, body = get_health(client)

    assert status == 200
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "ok"
    assert body["instances"] == 1
    assert 5 <= body["beat_seconds_ago"] < 60
    assert 20 <= body["sample_seconds_ago"] < 90
    assert body["problems"] == []


def test_healthz_is_503_once_the_dispatcher_has_not_ticked_for_a_minute(client, plans):
    dispatcher_tick_record(now=timezone.now() - timedelta(seconds=health.BEAT_FRESH_SECONDS + 5))

    status, body = get_health(client)

    assert status == 503
    assert body["status"] == "failing"
    assert "beat or worker not ticking" in body["problems"][0]


def test_healthz_is_503_when_beat_never_ticked(client, plans):
    status, body = get_health(client)
    assert status == 503 and body["beat_seconds_ago"] is None


def test_the_dispatcher_task_stamps_its_tick(client, plans):
    tasks.dispatch()
    status, body = get_health(client)
    assert status == 200 and body["beat_seconds_ago"] < 5


def test_healthz_is_503_when_no_sample_was_stored_within_twice_the_fastest_rate(client, plans):
    now = timezone.now()
    instance = make_instance(name="orders", metric_rate=60)
    add_samples(instance, now=now - timedelta(seconds=150), count=2)
    dispatcher_tick_record(now=now)

    status, body = get_health(client)

    assert status == 503
    assert body["sample_seconds_ago"] >= 150
    assert "no sample stored" in body["problems"][0] and "120 s" in body["problems"][0]


def test_a_failed_sample_still_shows_the_collector_is_alive(client, plans):
    now = timezone.now()
    instance = make_instance(name="orders", metric_rate=30)
    from logs.models import MetricLog

    MetricLog.objects.create(instance=instance, plan=instance.current_plan, slot=now, collected_at=now,
                             error_kind="refused", error="connection refused")
    dispatcher_tick_record(now=now)
    assert get_health(client)[0] == 200


def test_a_just_registered_instance_without_samples_is_not_stale_yet(client, plans):
    make_instance(name="fresh", metric_rate=30)
    dispatcher_tick_record(now=timezone.now())
    status, body = get_health(client)
    assert status == 200 and body["sample_seconds_ago"] is None


def test_without_instances_only_beat_matters(client, plans):
    dispatcher_tick_record(now=timezone.now())
    status, body = get_health(client)
    assert status == 200 and body["instances"] == 0


def test_an_unreachable_broker_is_503_without_naming_its_host(client, plans, settings):
    settings.CELERY_BROKER_URL = "redis://:s3cret-pass@127.0.0.1:1/0"
    from autoscaler.celery import app

    app.conf.broker_url = settings.CELERY_BROKER_URL
    try:
        dispatcher_tick_record(now=timezone.now())
        response = client.get("/healthz")
    finally:
        app.conf.broker_url = "memory://"
    assert response.status_code == 503
    assert response.json()["broker"] == "unreachable"
    assert b"127.0.0.1" not in response.content and b"s3cret" not in response.content


def test_a_reachable_redis_broker_is_ok(client, plans, settings, redis_server_factory):
    server = redis_server_factory()
    from autoscaler.celery import app

    settings.CELERY_BROKER_URL = server.url
    app.conf.broker_url = server.url
    try:
        assert health.broker_reachable() is True
    finally:
        app.conf.broker_url = "memory://"


def test_the_filesystem_broker_is_reachable_when_its_folder_exists(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://localhost//"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    assert health.broker_reachable() is True
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "gone")}
    assert health.broker_reachable() is False
