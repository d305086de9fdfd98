"""The cost report in the admin (`/admin/cost/`) and the month to date on the overview."""

from datetime import datetime, timedelta, timezone as dt_timezone
from io import StringIO
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from scaling.models import RedisInstance
from tests.factories import make_instance

pytestmark = pytest.mark.django_db


def test_the_admin_cost_page_shows_the_commands_figures(admin_client, plans):
    instance = make_instance(name="orders", plan="heroku-redis:premium-2")
    RedisInstance.objects.filter(pk=instance.pk).update(created_at=datetime(2026, 1, 1, tzinfo=dt_timezone.utc))
    out = StringIO()
    call_command("cost_report", "--since", "2026-01-01", "--until", "2026-01-10", "--json", stdout=out)
    figures = json.loads(out.getvalue())["instances"][0]

    page = admin_client.get(reverse("cost_report"), {"since": "2026-01-01", "until": "2026-01-10"}).content.decode()

    assert 'data-instance="orders"' in page
    assert f"${figures['cost']:.2f}" in page and f"${figures['savings']:.2f}" in page


def test_a_bad_date_on_the_admin_page_is_one_message(admin_client, plans):
    response = admin_client.get(reverse("cost_report"), {"since": "soon"})
    assert response.status_code == 200
    assert "is not a date" in response.content.decode()


def test_the_cost_page_needs_a_staff_login(client, plans):
    response = client.get(reverse("cost_report"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(User.objects.create_user("viewer", password="pw", is_staff=True))
    assert client.get(reverse("cost_report")).status_code == 403


def test_the_overview_shows_the_month_to_date(admin_client, plans):
    instance = make_instance(name="orders")
    RedisInstance.objects.filter(pk=instance.pk).update(created_at=timezone.now() - timedelta(days=60))
    page = admin_client.get(reverse("admin:scaling_redisinstance_overview")).content.decode()
    assert 'id="month-to-date"' in page and "saved $" in page
