from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from scaling.models import RedisPlan

pytestmark = pytest.mark.django_db

HEADER = "service_name,plan_name,mem_limit,conn_limit,cost\n"


def _csv(tmp_path, text):
    path = tmp_path / "plans.csv"
    path.write_text(text)
    return str(path)


def test_the_bundled_plan_data_loads_both_providers_with_their_limits(capsys):
    call_command("load_plans")
    premium_0 = RedisPlan.objects.get(plan_name="heroku-redis:premium-0")
    assert (premium_0.mem_limit, premium_0.conn_limit) == (50, 40)
    assert RedisPlan.objects.get(plan_name="heroku-redis:mini").cost == Decimal("3.00")
    assert RedisPlan.objects.get(plan_name="heroku-redis:premium-14").conn_limit == 65000
    assert RedisPlan.objects.filter(service_name="rediscloud").count() >= 8
    assert RedisPlan.objects.filter(plan_name__startswith="heroku-redis:shield-").exists()


def test_loading_the_plan_data_twice_changes_nothing(capsys):
    call_command("load_plans")
    first = list(RedisPlan.objects.order_by("pk").values())
    call_command("load_plans")
    assert list(RedisPlan.objects.order_by("pk").values()) == first
    assert "0 created, 0 updated" in capsys.readouterr().out


def test_a_users_csv_adds_another_provider_and_updates_a_price(tmp_path, capsys):
    call_command("load_plans")
    call_command("load_plans", _csv(tmp_path, HEADER + "acme-redis,acme-redis:small,64,100,7.5\nheroku-redis,heroku-redis:mini,25,20,4\n"))
    assert RedisPlan.objects.get(plan_name="acme-redis:small").cost == Decimal("7.50")
    assert RedisPlan.objects.get(plan_name="heroku-redis:mini").cost == Decimal("4.00")
    assert "1 created, 1 updated" in capsys.readouterr().out


@pytest.mark.parametrize(
    "body, message",
    [
        ("acme,acme:a,64,100,1\nacme,acme:b,sixty,100,1\n", "line 3: mem_limit 'sixty'"),
        ("acme,acme:a,64,100,1\nacme,acme:b,64,0,1\n", "line 3: conn_limit must be above 0, or -1"),
        ("acme,acme:a,64,100,1\nacme,acme:b,64,100,-1\n", "line 3: cost must be a price of 0 or more"),
        ("acme,acme:a,64,100,1\nacme,other:b,64,100,1\n", "line 3: plan_name 'other:b' must look like acme:<plan>"),
        ("acme,acme:a,64,100,1\nacme,acme:a,128,100,1\n", "line 3: plan acme:a already given on line 2"),
        ("acme,acme:a,64,100\n", "line 2: expected 5 fields, found 4"),
    ],
)
def test_a_bad_row_is_reported_with_its_line_number_and_nothing_is_loaded(tmp_path, body, message):
    with pytest.raises(CommandError) as error:
        call_command("load_plans", _csv(tmp_path, HEADER + body))
    assert message in str(error.value)
    assert "nothing loaded" in str(error.value)
    assert not RedisPlan.objects.filter(service_name="acme").exists()


def test_a_header_without_a_required_column_is_reported(tmp_path):
    with pytest.raises(CommandError, match="line 1: header lacks column.*cost"):
        call_command("load_plans", _csv(tmp_path, "service_name,plan_name,mem_limit,conn_limit\nacme,acme:a,1,1\n"))


def test_a_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot be read"):
        call_command("load_plans", str(tmp_path / "nope.csv"))


@pytest.mark.parametrize(
    "body, message",
    [
        ("acme,acme:a,2147483648,100,1\n", "line 2: mem_limit must be at most 2147483647 MB, not 2147483648"),
        ("acme,acme:a,99999999999999999999999,100,1\n", "line 2: mem_limit must be at most 2147483647 MB"),
        ("acme,acme:a,64,2147483648,1\n", "line 2: conn_limit must be at most 2147483647, not 2147483648"),
        ("acme,acme:a,64,100,123456789012\n", "line 2: cost must be a price of 0 or more"),
        ("acme,acme:" + "p" * 130 + ",64,100,1\n", "line 2: plan_name is longer than 128 characters"),
        ("a" * 70 + ",x,64,100,1\n", "line 2: service_name is longer than 64 characters"),
        ("acme,acme:a,64,100,NaN\n", "line 2: cost must be a price of 0 or more"),
    ],
)
def test_values_out_of_the_databases_range_are_one_line_naming_the_row_and_nothing_is_loaded(tmp_path, body, message):
    with pytest.raises(CommandError) as error:
        call_command("load_plans", _csv(tmp_path, HEADER + "acme,acme:ok,64,100,1\n" + body.replace("line 2", "line 3")))
    # the bad row is line 3 (after the header and one good row)
    assert message.replace("line 2", "line 3") in str(error.value)
    assert len(str(error.value).splitlines()) == 1
    assert not RedisPlan.objects.filter(service_name="acme").exists()


def test_plan_data_that_would_put_an_instances_min_plan_above_its_max_is_refused_naming_the_instances(tmp_path, plans):
    from tests.factories import make_instance

    make_instance(name="orders", plan="heroku-redis:premium-0", min_plan="heroku-redis:premium-0", max_plan="heroku-redis:premium-2")
    make_instance(name="carts", plan="heroku-redis:premium-1", min_plan="heroku-redis:premium-1", max_plan="heroku-redis:premium-2")
    make_instance(name="fine", plan="heroku-redis:premium-3", min_plan="heroku-redis:premium-3", max_plan="heroku-redis:premium-5")
    before = list(RedisPlan.objects.order_by("pk").values())
    # premium-2 shrinks below premium-0 and premium-1
    body = HEADER + "heroku-redis,heroku-redis:premium-2,20,40,15\nacme,acme:new,64,100,1\n"

    with pytest.raises(CommandError) as error:
        call_command("load_plans", _csv(tmp_path, body))

    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert "would leave 2 registered instances without a valid plan range" in message
    assert "carts: min plan heroku-redis:premium-1 above max plan heroku-redis:premium-2" in message
    assert "orders: min plan heroku-redis:premium-0 above max plan heroku-redis:premium-2" in message
    assert "fine" not in message
    assert list(RedisPlan.objects.order_by("pk").values()) == before


@pytest.mark.parametrize(
    "row, message",
    [
        ("acme,acme:a\x00b,64,100,1,\n", "line 3: plan_name 'acme:a\\x00b' must look like acme:<plan>"),
        ("acme,acme:a b,64,100,1,\n", "line 3: plan_name 'acme:a b' must look like acme:<plan>"),
        ("acme,acme:b,64,100,1,from\x00here\n", "line 3: source holds control characters"),
    ],
)
def test_control_characters_in_plan_data_are_one_line_not_a_database_error(tmp_path, row, message):
    header = "service_name,plan_name,mem_limit,conn_limit,cost,source\n"
    with pytest.raises(CommandError) as error:
        call_command("load_plans", _csv(tmp_path, header + "acme,acme:ok,64,100,1,\n" + row))
    assert message in str(error.value)
    assert not RedisPlan.objects.filter(service_name="acme").exists()


def test_a_path_with_a_nul_byte_is_one_clear_error():
    with pytest.raises(CommandError) as error:
        call_command("load_plans", "plans\x00.csv")
    assert str(error.value) == "nothing loaded: plans?.csv: cannot be read (not a usable file name)"


def test_every_bundled_price_names_its_source_and_only_minis_is_confirmed():
    call_command("load_plans")
    assert not RedisPlan.objects.filter(price_source="").exists()
    assert list(RedisPlan.objects.filter(price_confirmed=True).values_list("plan_name", flat=True)) == ["heroku-redis:mini"]
    assert RedisPlan.objects.get(plan_name="heroku-redis:premium-0").price_source == "[elements]"


def test_a_users_csv_without_a_price_source_names_its_file_unconfirmed(tmp_path):
    call_command("load_plans", _csv(tmp_path, HEADER + "acme,acme:a,64,100,1\n"))
    plan = RedisPlan.objects.get(plan_name="acme:a")
    assert (plan.price_source, plan.price_confirmed, plan.price_fetched_at) == ("plans.csv", False, None)


def test_a_price_confirmed_other_than_yes_or_no_is_one_line_and_nothing_is_loaded(tmp_path):
    header = "service_name,plan_name,mem_limit,conn_limit,cost,price_source,price_confirmed\n"
    with pytest.raises(CommandError) as error:
        call_command("load_plans", _csv(tmp_path, header + "acme,acme:a,64,100,1,invoice,yes\nacme,acme:b,64,100,1,invoice,maybe\n"))
    assert "line 3: price_confirmed must be yes or no, not 'maybe'" in str(error.value)
    assert not RedisPlan.objects.filter(service_name="acme").exists()
