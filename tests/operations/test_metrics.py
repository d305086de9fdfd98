"""`GET /metrics` (operations/prometheus.py, operations/views.py): Prometheus text behind
METRICS_TOKEN, values read back with the official parser and compared with the record."""

from datetime import timedelta

import pytest
from django.db import InterfaceError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from logs.models import MetricLog, ScalingAction
from operations.heartbeats import RateLimitRecorder
from tests.factories import make_instance
from tests.logs.test_admin_pages import add_action, add_samples

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, token=TOKEN):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response, samples


def labels(instance, **extra):
    return tuple(sorted({"instance": instance.name, "app": instance.app_name, "plan": instance.current_plan.plan_name, **extra}.items()))


def test_metrics_is_404_when_no_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_metrics_is_401_with_a_wrong_or_missing_token(client, token):
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401


def test_each_instance_has_its_series_with_the_recorded_values(client, token, plans):
    now = timezone.now()
    orders = make_instance(name="orders", app_name="shop")
    add_samples(orders, now=now - timedelta(minutes=1), count=4, memory=lambda i: 40.0 + i, connections=12.5)
    MetricLog.objects.create(instance=orders, plan=orders.current_plan, slot=now, collected_at=now,
                             error_kind="refused", error="connection refused")
    add_action(orders, at=now - timedelta(hours=3), to="heroku-redis:premium-1")
    add_action(orders, at=now - timedelta(hours=2), to="heroku-redis:premium-2")
    add_action(orders, at=now - timedelta(hours=1), to="heroku-redis:mini")
    add_action(orders, at=now - timedelta(minutes=30), to="heroku-redis:premium-1", status=ScalingAction.Status.FAILED)
    idle = make_instance(name="idle", plan="heroku-redis:premium-2")
    last_good = MetricLog.objects.filter(instance=orders, error="").order_by("-collected_at").first()

    response, samples = scrape(client)

    assert response["Content-Type"].startswith("text/plain")
    assert samples[("redis_autoscaler_memory_ratio", labels(orders))] == pytest.approx(0.43)
    assert samples[("redis_autoscaler_connections_ratio", labels(orders))] == pytest.approx(0.125)
    assert samples[("redis_autoscaler_last_sample_timestamp_seconds", labels(orders))] == pytest.approx(last_good.collected_at.timestamp())
    assert samples[("redis_autoscaler_plan_monthly_cost_dollars", labels(orders))] == float(orders.current_plan.cost)
    assert samples[("redis_autoscaler_sample_failures_total", labels(orders))] == 1
    assert samples[("redis_autoscaler_plan_changes_total", labels(orders, direction="up"))] == 2
    assert samples[("redis_autoscaler_plan_changes_total", labels(orders, direction="down"))] == 1
    # No sample yet: cost and counters, no ratios.
    assert samples[("redis_autoscaler_plan_monthly_cost_dollars", labels(idle))] == float(idle.current_plan.cost)
    assert samples[("redis_autoscaler_sample_failures_total", labels(idle))] == 0
    assert ("redis_autoscaler_memory_ratio", labels(idle)) not in samples


def test_the_heroku_rate_limit_a_worker_saw_is_exported_per_account(client, token, plans, heroku):
    from scaling.services.heroku_access import heroku_client

    heroku_client().fetch_rate_limit()
    remaining = heroku_client().rate_limit_remaining

    _, samples = scrape(client)

    assert samples[("redis_autoscaler_heroku_rate_limit_remaining", (("account", "default"),))] == remaining


def test_the_rate_limit_is_written_only_when_it_moved_or_a_minute_passed(db):
    clock = [0.0]
    recorder = RateLimitRecorder(clock=lambda: clock[0])
    now = timezone.now()
    assert recorder(remaining=4000, now=now) is True
    assert recorder(remaining=3990, now=now) is False
    assert recorder(remaining=3940, now=now) is True
    clock[0] = 61
    assert recorder(remaining=3939, now=now) is True


def test_a_scrape_takes_the_same_few_queries_whatever_the_number_of_instances(client, token, plans):
    now = timezone.now()
    for n in range(30):
        instance = make_instance(name=f"i{n}")
        add_samples(instance, now=now, count=2)
        add_action(instance, at=now - timedelta(hours=1), to="heroku-redis:premium-1")
    with CaptureQueriesContext(connection) as queries:
        scrape(client)
    assert len(queries) <= 4, [q["sql"][:120] for q in queries]


def test_no_secret_is_in_the_metrics(client, token, plans, settings):
    make_instance(name="orders", redis_url="redis://:very-secret-pass@redis.example.com:6379")
    response, _ = scrape(client)
    assert b"very-secret-pass" not in response.content and settings.HEROKU_API_KEY.encode() not in response.content


def test_a_failing_rate_limit_write_never_breaks_the_heroku_call(plans, heroku, monkeypatch):
    from operations import heartbeats
    from scaling.services.heroku_access import heroku_client

    def broken(**kwargs):
        raise InterfaceError("connection already closed")  # not a DatabaseError

    monkeypatch.setattr(heartbeats, "heartbeat_record", broken)
    assert heroku_client().fetch_rate_limit() >= 0
