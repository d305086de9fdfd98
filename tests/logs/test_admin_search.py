"""Searching the admin with hostile text: never a server error."""

import pytest
from django.urls import reverse

from tests.factories import make_instance

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["orders\x00", "\x00", "ord\x00ers", "orders\x1b[31m", "%00", "o" * 5000])
def test_the_overview_search_with_a_nul_byte_or_control_characters_is_a_page_not_a_server_error(admin_client, plans, query):
    make_instance(name="orders")
    make_instance(name="sessions")

    response = admin_client.get(reverse("admin:scaling_redisinstance_overview"), {"q": query})

    assert response.status_code == 200
    page = response.content.decode()
    if query.startswith("orders") or query == "ord\x00ers":
        assert "orders" in page and "sessions-app" not in page


@pytest.mark.parametrize("changelist", ["admin:scaling_redisinstance_changelist", "admin:logs_metriclog_changelist",
                                        "admin:logs_scalingaction_changelist", "admin:scaling_redisplan_changelist"])
def test_the_record_searches_with_a_nul_byte_are_a_page_not_a_server_error(admin_client, plans, changelist):
    make_instance(name="orders")

    response = admin_client.get(reverse(changelist), {"q": "orders\x00"})

    assert response.status_code == 200
