"""Schedules in the admin: edited one a line on the instance's page, listed in the instance
list, listed and shaded on the chart page. Django test client, real PostgreSQL."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scaling.models import RedisInstance
from tests.factories import make_instance

pytestmark = pytest.mark.django_db

CHART = "admin:scaling_redisinstance_chart"
CHANGE = "admin:scaling_redisinstance_change"


def _form(instance, **changes):
    data = {
        "name": instance.name, "app_name": instance.app_name, "config_var": instance.config_var,
        "metric_rate": instance.metric_rate, "memory_threshold": instance.memory_threshold,
        "connection_threshold": instance.connection_threshold, "scaling_enabled": "on",
        "min_plan": instance.min_plan_id, "max_plan": instance.max_plan_id, "scaling_rate": instance.scaling_rate,
        "notify_breach": "on", "notify_success": "on", "notify_failure": "on",
        "schedules": "", "schedule_lead_minutes": instance.schedule_lead_minutes,
        "workload": instance.workload, "min_hit_rate": instance.min_hit_rate, "scale_down_enabled": "on",
    }
    data.update(changes)
    return data


def test_schedules_are_edited_one_a_line_with_short_plan_names_completed(admin_client, plans):
    instance = make_instance(name="batchy")
    url = reverse(CHANGE, args=[instance.pk])
    response = admin_client.post(url, _form(instance, schedules="mon-fri 06:00-07:00 Europe/Berlin premium-2\n\n"
                                                                 "sat 22:00-02:00 UTC heroku-redis:premium-3\n",
                                            schedule_lead_minutes=20))
    assert response.status_code == 302, response.content.decode()[:3000]
    instance.refresh_from_db()
    assert instance.schedules == ["mon-fri 06:00-07:00 Europe/Berlin heroku-redis:premium-2",
                                  "sat 22:00-02:00 UTC heroku-redis:premium-3"]
    assert instance.schedule_lead_minutes == 20
    page = admin_client.get(url).content.decode()
    assert "mon-fri 06:00-07:00 Europe/Berlin heroku-redis:premium-2\nsat 22:00-02:00 UTC heroku-redis:premium-3" in page
    listing = admin_client.get(reverse("admin:scaling_redisinstance_changelist")).content.decode()
    assert "mon-fri 06:00-07:00 Europe/Berlin heroku-redis:premium-2; sat 22:00-02:00 UTC heroku-redis:premium-3" in listing


@pytest.mark.parametrize(
    "text, message",
    [
        ("daily 06:00-07:00 UTC premium-2\nmon-fri 06:00-07:00 Mars/Base premium-2",
         "line 2: time zone &#x27;Mars/Base&#x27;: not an IANA time zone name"),
        ("daily 06:00-07:00 UTC rediscloud:100", "plan rediscloud:100 is not a plan of heroku-redis"),
        ("daily 06:00-07:00 UTC premium-99", "plan heroku-redis:premium-99 is not a known plan"),
    ],
)
def test_a_bad_schedule_line_is_shown_and_nothing_is_saved(admin_client, plans, text, message):
    instance = make_instance(name="batchy")
    response = admin_client.post(reverse(CHANGE, args=[instance.pk]), _form(instance, schedules=text))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert RedisInstance.objects.get(pk=instance.pk).schedules == []


def test_the_chart_lists_the_schedules_and_shades_their_windows_in_the_period(admin_client, plans):
    now = timezone.now()
    instance = make_instance(name="batchy", schedules=["daily 06:00-07:00 UTC heroku-redis:premium-2"],
                             schedule_lead_minutes=15)
    response = admin_client.get(reverse(CHART, args=[instance.pk]), {"period": "7d"})
    page = response.content.decode()
    assert "daily 06:00-07:00 UTC heroku-redis:premium-2" in page and "plan up 15 min before each window" in page
    start = page.index('<script id="chart-data" type="application/json">') + len('<script id="chart-data" type="application/json">')
    windows = json.loads(page[start:page.index("</script>", start)])["schedules"]
    assert len(windows) in (7, 8)  # one a day over 7 days (8 when the period cuts two)
    for window in windows:
        assert window["to"] - window["from"] == 3600 * 1000 and window["plan"] == "heroku-redis:premium-2"
        assert window["from"] < now.timestamp() * 1000 and window["to"] > (now - timedelta(days=7)).timestamp() * 1000
    assert "Shaded in green: the scheduled windows" in page
