"""Plan prices in the admin: the plans list and the instance page say where each price came from
and mark a price nobody confirmed; after `load_plans --from-heroku` they show Heroku's."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from scaling.models import UNCONFIRMED_PRICE, RedisPlan
from tests.factories import make_instance
from tests.scaling.test_plan_prices import price_every_plan

pytestmark = pytest.mark.django_db


def _page(admin_client, name, *args):
    response = admin_client.get(reverse(name, args=args))
    assert response.status_code == 200
    return response.content.decode()


def test_the_plans_list_marks_static_prices_unconfirmed_until_herokus_are_loaded(admin_client, plans, heroku):
    before = _page(admin_client, "admin:scaling_redisplan_changelist")
    premium_0 = RedisPlan.objects.get(plan_name="heroku-redis:premium-0")
    assert f"$15.00/month ({UNCONFIRMED_PRICE})" == premium_0.price_label
    assert premium_0.price_label in before and premium_0.price_provenance == "[elements]"
    assert RedisPlan.objects.get(plan_name="heroku-redis:mini").price_label == "$3.00/month"

    price_every_plan(heroku, premium_0=1700)
    call_command("load_plans", "--from-heroku", stdout=StringIO())
    after = _page(admin_client, "admin:scaling_redisplan_changelist")

    premium_0.refresh_from_db()
    assert premium_0.price_label == "$17.00/month"
    assert premium_0.price_label in after and premium_0.price_provenance in after
    assert premium_0.price_provenance.startswith(RedisPlan.HEROKU_PRICE_SOURCE + ", read ")
    assert UNCONFIRMED_PRICE not in after


def test_the_instance_page_shows_the_current_plans_price_and_where_it_came_from(admin_client, plans, heroku):
    instance = make_instance(name="orders", plan="heroku-redis:premium-0")
    page = _page(admin_client, "admin:scaling_redisinstance_change", instance.pk)
    assert f"$15.00/month ({UNCONFIRMED_PRICE}), from [elements]" in page

    price_every_plan(heroku, premium_0=1700)
    call_command("load_plans", "--from-heroku", stdout=StringIO())
    page = _page(admin_client, "admin:scaling_redisinstance_change", instance.pk)

    plan = RedisPlan.objects.get(plan_name="heroku-redis:premium-0")
    assert f"$17.00/month, from {plan.price_provenance}" in page
