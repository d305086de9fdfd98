"""`load_plans --from-heroku` (scaling/services/plan_prices.py) against the fake Heroku's price table."""

import json
import logging
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from scaling.models import RedisPlan
from scaling.services.plan_prices import PriceChange, plan_prices_load_from_heroku, plan_prices_refresh
from scaling.services.plans import plans_load

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 22, 0, tzinfo=dt_timezone.utc)
HEROKU = RedisPlan.HEROKU_PRICE_SOURCE


def price_every_plan(fake, **cents_by_plan):
    """The fake lists every plan of the plan data at its static price, except `cents_by_plan`
    (short names, '_' for '-': premium_0=1700)."""
    for plan in RedisPlan.objects.all():
        fake.set_plan_price(plan.plan_name, int(plan.cost * 100))
    for short, cents in cents_by_plan.items():
        fake.set_plan_price("heroku-redis:" + short.replace("_", "-"), cents)


def plan_rows():
    return list(RedisPlan.objects.order_by("pk").values())


def test_herokus_prices_replace_the_static_ones_with_their_source_and_time_and_the_limits_stay(plans, heroku):
    price_every_plan(heroku, premium_0=1700, premium_1=2900)

    result = plan_prices_load_from_heroku(now=NOW)

    premium_0 = RedisPlan.objects.get(plan_name="heroku-redis:premium-0")
    assert (premium_0.cost, premium_0.mem_limit, premium_0.conn_limit) == (Decimal("17.00"), 50, 40)
    assert (premium_0.price_source, premium_0.price_confirmed, premium_0.price_fetched_at) == (HEROKU, True, NOW)
    assert result.changed == (
        PriceChange(plan="heroku-redis:premium-0", old=Decimal("15.00"), new=Decimal("17.00")),
        PriceChange(plan="heroku-redis:premium-1", old=Decimal("30.00"), new=Decimal("29.00")),
    )
    assert result.confirmed == RedisPlan.objects.count()
    assert result.services == ("heroku-redis", "rediscloud")
    assert not RedisPlan.objects.filter(price_confirmed=False).exists()
    assert heroku.count("GET", r"^/addon-services/heroku-redis/plans$") == 1


def test_the_command_prints_each_changed_price_old_to_new(plans, heroku):
    price_every_plan(heroku, premium_0=1700)
    out = StringIO()

    call_command("load_plans", "--from-heroku", stdout=out)

    assert "  heroku-redis:premium-0: $15.00 -> $17.00 a month" in out.getvalue().splitlines()


def test_plans_heroku_lists_that_the_plan_data_lacks_are_reported_and_not_created(plans, heroku):
    price_every_plan(heroku, premium_15=2000000)

    result = plan_prices_load_from_heroku(now=NOW)

    assert result.unknown == ("heroku-redis:premium-15",)
    assert not RedisPlan.objects.filter(plan_name="heroku-redis:premium-15").exists()


def test_plans_heroku_no_longer_lists_are_reported_and_keep_their_unconfirmed_price(plans, heroku):
    price_every_plan(heroku)
    del heroku.plan_prices["rediscloud:30"]

    result = plan_prices_load_from_heroku(now=NOW)

    assert result.unlisted == ("rediscloud:30",)
    kept = RedisPlan.objects.get(plan_name="rediscloud:30")
    assert (kept.cost, kept.price_source, kept.price_confirmed, kept.price_fetched_at) == (
        Decimal("0.00"), "[elements]", False, None)


@pytest.mark.parametrize(
    "price, message",
    [
        ({"cents": None}, "heroku-redis:premium-2 has no price"),
        ({"cents": 6000, "unit": "hour"}, "heroku-redis:premium-2 is priced per 'hour', not per month"),
        ({"cents": -100}, "heroku-redis:premium-2 has no usable price.cents"),
        ({"cents": 6000, "contract": True}, "heroku-redis:premium-2 is priced in a contract"),
    ],
)
def test_an_odd_price_is_one_line_and_no_price_changes(plans, heroku, price, message):
    price_every_plan(heroku, premium_0=1700)
    heroku.set_plan_price("heroku-redis:premium-2", **price)
    before = plan_rows()

    with pytest.raises(CommandError) as error:
        call_command("load_plans", "--from-heroku")

    assert len(str(error.value).splitlines()) == 1
    assert message in str(error.value)
    assert str(error.value).startswith("no price changed: ")
    assert plan_rows() == before


def test_a_rate_limited_answer_is_one_line_and_no_price_changes(plans, heroku):
    price_every_plan(heroku, premium_0=1700)
    heroku.fail_next("GET", r"^/addon-services/rediscloud/plans$", status=429)
    before = plan_rows()

    with pytest.raises(CommandError) as error:
        call_command("load_plans", "--from-heroku")

    assert "cannot read the plans of rediscloud" in str(error.value)
    assert "429 rate_limit" in str(error.value)
    assert len(str(error.value).splitlines()) == 1
    assert plan_rows() == before


def test_a_server_error_is_retried_by_the_client_and_the_prices_load(plans, heroku):
    price_every_plan(heroku, premium_0=1700)
    heroku.fail_next("GET", r"^/addon-services/heroku-redis/plans$", status=503)

    plan_prices_load_from_heroku(now=NOW)

    assert RedisPlan.objects.get(plan_name="heroku-redis:premium-0").cost == Decimal("17.00")
    assert heroku.count("GET", r"^/addon-services/heroku-redis/plans$") == 2
    assert len(heroku.client_sleeps) == 1


def test_a_service_heroku_does_not_know_is_one_line_and_no_price_changes(plans, heroku, tmp_path):
    price_every_plan(heroku)
    path = tmp_path / "acme.csv"
    path.write_text("service_name,plan_name,mem_limit,conn_limit,cost\nacme-redis,acme-redis:small,64,100,7.5\n")
    plans_load(path=path)
    before = plan_rows()

    with pytest.raises(CommandError, match=r"cannot read the plans of acme-redis: .*404 not_found"):
        call_command("load_plans", "--from-heroku")

    assert plan_rows() == before


@override_settings(HEROKU_API_KEY="")
def test_without_a_heroku_key_it_is_one_line_naming_the_setting(plans):
    from scaling.services.heroku_access import heroku_client_reset

    heroku_client_reset()
    with pytest.raises(CommandError) as error:
        call_command("load_plans", "--from-heroku")
    heroku_client_reset()
    assert "HEROKU_API_KEY is not set" in str(error.value)


def test_without_plan_data_it_says_to_load_it_first(db, heroku):
    with pytest.raises(CommandError, match="run load_plans first"):
        call_command("load_plans", "--from-heroku")


def test_a_csv_and_from_heroku_together_are_refused(plans):
    with pytest.raises(CommandError, match="not both"):
        call_command("load_plans", "plans.csv", "--from-heroku")


def test_reloading_the_static_data_keeps_herokus_prices_and_a_confirmed_csv_price_replaces_them(plans, heroku, tmp_path):
    price_every_plan(heroku, premium_0=1700, premium_1=2900)
    plan_prices_load_from_heroku(now=NOW)

    plans_load()  # initialize.sh at every release
    assert RedisPlan.objects.get(plan_name="heroku-redis:premium-0").cost == Decimal("17.00")

    path = tmp_path / "mine.csv"
    path.write_text("service_name,plan_name,mem_limit,conn_limit,cost,price_source,price_confirmed\n"
                    "heroku-redis,heroku-redis:premium-1,100,80,31,our invoice 2026-11,yes\n")
    plans_load(path=path)
    premium_1 = RedisPlan.objects.get(plan_name="heroku-redis:premium-1")
    assert (premium_1.cost, premium_1.price_source, premium_1.price_confirmed, premium_1.price_fetched_at) == (
        Decimal("31.00"), "our invoice 2026-11", True, None)


def test_the_daily_refresh_without_a_key_does_nothing_and_logs_one_line(plans, caplog):
    with override_settings(HEROKU_API_KEY=""), caplog.at_level(logging.INFO, logger="scaling.services.plan_prices"):
        assert plan_prices_refresh(now=NOW) is None
    assert [record.getMessage() for record in caplog.records] == ["plan prices not refreshed: no Heroku account has an API key"]


def test_the_daily_refresh_logs_a_refused_answer_without_the_key_and_raises_nothing(plans, heroku, caplog, settings):
    price_every_plan(heroku)
    heroku.fail_next("GET", r"^/addon-services/heroku-redis/plans$", status=401)
    before = plan_rows()

    with caplog.at_level(logging.INFO, logger="scaling.services.plan_prices"):
        assert plan_prices_refresh(now=NOW) is None

    assert plan_rows() == before
    messages = [record.getMessage() for record in caplog.records if record.name == "scaling.services.plan_prices"]
    assert len(messages) == 1 and messages[0].startswith("plan prices not refreshed, nothing changed: ")
    assert not any(settings.HEROKU_API_KEY in record.getMessage() for record in caplog.records)


def test_the_daily_refresh_task_loads_herokus_prices(plans, heroku):
    from scaling.tasks import refresh_plan_prices

    price_every_plan(heroku, premium_0=1700)

    assert refresh_plan_prices() == {"confirmed": RedisPlan.objects.count(), "changed": 1, "unknown": 0}
    assert RedisPlan.objects.get(plan_name="heroku-redis:premium-0").cost == Decimal("17.00")


def test_setup_periodic_tasks_creates_the_daily_price_refresh(db):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    call_command("setup_periodic_tasks", stdout=StringIO())

    task = PeriodicTask.objects.get(task="scaling.refresh_plan_prices")
    assert (task.interval.every, task.interval.period) == (1, IntervalSchedule.DAYS)


def test_simulate_costs_the_plans_at_herokus_prices_and_marks_none_unconfirmed_after_the_load(plans, heroku, tmp_path):
    from scaling.services.simulate import trace_simulate

    trace = tmp_path / "quiet.csv"
    rows = [f"{1_700_000_000 + 30 * i},{5 * 1024 * 1024},2" for i in range(241)]  # 2 hours, 10 % of premium-0
    trace.write_text("timestamp,used_memory,connected_clients\n" + "\n".join(rows) + "\n")
    options = {"trace_path": trace, "plan": "heroku-redis:premium-0", "min_plan": "premium-0", "max_plan": "premium-0"}
    assert trace_simulate(**options).unconfirmed_prices == ("heroku-redis:premium-0",)

    price_every_plan(heroku, premium_0=73000)  # $730 a month: $1 an hour
    call_command("load_plans", "--from-heroku", stdout=StringIO())
    as_json = StringIO()
    call_command("simulate", str(trace), "--plan", "heroku-redis:premium-0", "--min-plan", "premium-0",
                 "--max-plan", "premium-0", "--json", stdout=as_json)

    assert json.loads(as_json.getvalue())["cost"] == pytest.approx(2.0)
    assert trace_simulate(**options).unconfirmed_prices == ()


def test_without_heroku_api_key_the_prices_are_read_with_another_accounts_key(plans, heroku, settings):
    from scaling.services.accounts import account_add
    from scaling.services.heroku_access import heroku_client_reset

    agency = heroku.add_account("agency", api_key="agency-key-0123456789abcdef")
    account_add(name="agency", api_key="agency-key-0123456789abcdef")
    settings.HEROKU_API_KEY = ""
    heroku_client_reset()
    price_every_plan(heroku, premium_0=1700)

    plan_prices_load_from_heroku(now=NOW)

    assert RedisPlan.objects.get(plan_name="heroku-redis:premium-0").cost == Decimal("17.00")
    assert agency.count("GET", r"^/addon-services/heroku-redis/plans$") == 1
    assert heroku.count("GET", r"^/addon-services/") == 0
