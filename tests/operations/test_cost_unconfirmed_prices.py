"""Cost figures name the plans whose price nobody confirmed (cost_report JSON and text,
/admin/cost/), and after `load_plans --from-heroku` they use Heroku's prices, confirmed."""

import json
from datetime import datetime, timezone as dt_timezone
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from operations.cost import cost_report_build
from operations.cost_text import cost_report_lines
from scaling.models import RedisInstance
from tests.factories import make_instance
from tests.scaling.test_plan_prices import price_every_plan

pytestmark = pytest.mark.django_db
SINCE, UNTIL = datetime(2026, 1, 1, tzinfo=dt_timezone.utc), datetime(2026, 1, 31, tzinfo=dt_timezone.utc)


def _orders():
    instance = make_instance(name="orders", plan="heroku-redis:premium-0", max_plan="heroku-redis:premium-5")
    RedisInstance.objects.filter(pk=instance.pk).update(created_at=SINCE)


def _report_json():
    out = StringIO()
    call_command("cost_report", "--since", "2026-01-01", "--until", "2026-01-30", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_the_json_report_names_the_unconfirmed_prices_it_rests_on(plans):
    _orders()
    report = _report_json()
    assert report["unconfirmed_prices"] == ["heroku-redis:premium-0", "heroku-redis:premium-5"]
    assert report["instances"][0]["unconfirmed_prices"] == ["heroku-redis:premium-0", "heroku-redis:premium-5"]
    assert report["instances"][0]["plans"][0]["price_confirmed"] is False


def test_after_loading_herokus_prices_the_report_uses_them_and_names_none_unconfirmed(plans, heroku):
    _orders()
    price_every_plan(heroku, premium_0=3000)  # $30 a month: $30 for the 30 days
    call_command("load_plans", "--from-heroku", stdout=StringIO())

    report = _report_json()

    assert report["unconfirmed_prices"] == []
    row = report["instances"][0]
    assert (row["plans"][0]["monthly_price"], row["plans"][0]["price_confirmed"], row["cost"]) == (30.0, True, 30.0)


def test_the_text_report_ends_with_the_unconfirmed_plans(plans):
    _orders()
    lines = cost_report_lines(cost_report_build(since=SINCE, until=UNTIL))
    assert lines[-1].endswith(": premium-0, premium-5")


def test_the_admin_cost_page_marks_the_unconfirmed_prices(admin_client, plans, heroku):
    _orders()
    page = admin_client.get(reverse("cost_report"), {"since": "2026-01-01", "until": "2026-01-30"}).content.decode()
    assert 'data-plans="premium-0,premium-5"' in page and 'data-unconfirmed="premium-0,premium-5"' in page

    price_every_plan(heroku)
    call_command("load_plans", "--from-heroku", stdout=StringIO())
    page = admin_client.get(reverse("cost_report"), {"since": "2026-01-01", "until": "2026-01-30"}).content.decode()
    assert 'id="unconfirmed-prices"' not in page and "data-unconfirmed" not in page


def test_the_weekly_summary_ends_with_the_unconfirmed_plans(plans):
    from operations.weekly_summary import weekly_summary_lines

    _orders()
    lines = weekly_summary_lines(since=datetime(2026, 1, 5, tzinfo=dt_timezone.utc),
                                 until=datetime(2026, 1, 12, tzinfo=dt_timezone.utc))
    assert lines[-1].endswith(": premium-0, premium-5")
