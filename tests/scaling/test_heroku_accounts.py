"""Several Heroku accounts: the fake Heroku holds two or three, each with its own key, apps,
add-ons and rate-limit pool; every call for an instance carries its account's key, and one
account drained or refusing its key never holds back another's plan changes."""

import io
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from logs.models import ScalingAction
from notifications.models import Notification
from scaling.models import HerokuAccount, RedisInstance
from scaling.services.accounts import AccountError, account_add, account_remove
from scaling.services.checks import instance_check_scaling
from scaling.services.collection import samples_collect
from scaling.services.encryption import redis_urls_reencrypt
from scaling.services.heroku_access import account_client, heroku_client_reset
from scaling.services.reconcile import addons_reconcile
from scaling.services.registration import RegistrationError, app_find
from standins.heroku import ManualClock, installed_fake
from tests.factories import make_instance
from tests.helpers import alerts_delivered
from tests.scaling.live import fill
from tests.scaling.live import reader  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=dt_timezone.utc)
ACME_KEY = "acme-key-0123456789abcdef"
GLOBEX_KEY = "globex-key-0123456789abcdef"


@pytest.fixture
def heroku():
    """The fake with the `default` account (HEROKU_API_KEY) and two more; its pools refill
    only when the test moves its clock."""
    heroku_client_reset()
    with installed_fake(api_key=settings.HEROKU_API_KEY, base_url=settings.HEROKU_API_URL, clock=ManualClock()) as fake:
        fake.add_account("acme", api_key=ACME_KEY)
        fake.add_account("globex", api_key=GLOBEX_KEY)
        yield fake
    heroku_client_reset()


def _add(name, key):
    return account_add(name=name, api_key=key)


def _bearer(fake):
    return {headers["authorization"] for headers in fake.request_headers}


def test_adding_an_account_checks_its_key_with_heroku_and_stores_it_encrypted(heroku):
    account = _add("acme", ACME_KEY)

    assert heroku.accounts["acme"].count("GET", r"^/account$") == 1
    assert account.email == "acme@example.com"
    stored = HerokuAccount.objects.get(name="acme")
    assert ACME_KEY not in stored.api_key_encrypted and stored.api_key == ACME_KEY
    assert ACME_KEY not in repr(stored)


def test_a_key_heroku_refuses_is_not_saved(heroku):
    heroku.accounts["acme"].revoke_key()

    with pytest.raises(AccountError, match="refused the key for account 'acme'.*nothing saved"):
        _add("acme", ACME_KEY)
    assert not HerokuAccount.objects.filter(name="acme").exists()


def test_the_command_reads_the_key_from_standard_input_never_from_the_command_line(heroku, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(ACME_KEY + "\n"))
    out = io.StringIO()
    call_command("heroku_accounts", "add", "acme", stdout=out)
    listing = io.StringIO()
    call_command("heroku_accounts", "list", stdout=listing)

    assert HerokuAccount.objects.get(name="acme").api_key == ACME_KEY
    assert ACME_KEY not in out.getvalue() + listing.getvalue()
    rows = {line.split("\t")[0]: line.split("\t") for line in listing.getvalue().splitlines()}
    assert rows["acme"][1] == "stored, encrypted" and rows["default"][1] == "HEROKU_API_KEY"
    with pytest.raises(CommandError, match="exists; add --replace"):
        monkeypatch.setattr("sys.stdin", io.StringIO(ACME_KEY + "\n"))
        call_command("heroku_accounts", "add", "acme")


def test_removing_an_account_is_refused_while_an_instance_uses_it(plans, heroku):
    account = _add("acme", ACME_KEY)
    make_instance(name="orders", account=account)

    with pytest.raises(AccountError, match="used by 1 instance"):
        account_remove(name="acme")
    with pytest.raises(AccountError, match="HEROKU_API_KEY and cannot be removed"):
        account_remove(name="default")
    RedisInstance.objects.filter(name="orders").delete()
    account_remove(name="acme")
    assert not HerokuAccount.objects.filter(name="acme").exists()


def test_an_app_found_in_one_account_is_registered_there(plans, heroku):
    _add("acme", ACME_KEY)
    heroku.accounts["acme"].add_redis_addon("shop", plan="heroku-redis:premium-0")

    found = app_find("shop")

    assert [info.account.name for info in found] == ["acme"]
    assert heroku.count("GET", r"^/apps/shop/addons$") == 1  # asked the default account too: not there


def test_an_app_name_in_two_accounts_is_returned_for_each_never_guessed(plans, heroku):
    _add("acme", ACME_KEY)
    heroku.add_redis_addon("shop", plan="heroku-redis:premium-0")
    heroku.accounts["acme"].add_redis_addon("shop", plan="heroku-redis:premium-1")

    both = app_find("shop")
    chosen = app_find("shop", account=HerokuAccount.objects.get(name="acme"))

    assert sorted(info.account.name for info in both) == ["acme", "default"]
    assert [info.account.name for info in chosen] == ["acme"]
    with pytest.raises(RegistrationError, match="does not exist or none of the accounts"):
        app_find("nowhere")


def test_the_cli_refuses_an_app_in_two_accounts_without_account(plans, heroku, capsys):
    import add_redis_mon

    _add("acme", ACME_KEY)
    heroku.add_redis_addon("shop", plan="heroku-redis:premium-0")
    heroku.accounts["acme"].add_redis_addon("shop", plan="heroku-redis:premium-1")

    code = add_redis_mon.main(["--name", "orders", "--app", "shop", "--config-var", "REDIS_URL", "--yes"])

    assert code == 2 and not RedisInstance.objects.exists()
    assert "--account: app 'shop' exists in the accounts default, acme" in capsys.readouterr().err


def test_key_rotation_re_encrypts_the_stored_api_keys(heroku, settings):
    from cryptography.fernet import Fernet

    _add("acme", ACME_KEY)
    before = HerokuAccount.objects.get(name="acme").api_key_encrypted
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode(), "derived"]

    redis_urls_reencrypt()

    after = HerokuAccount.objects.get(name="acme")
    assert after.api_key_encrypted != before and after.api_key == ACME_KEY
    settings.ENCRYPTION_KEYS = settings.ENCRYPTION_KEYS[:1]
    assert HerokuAccount.objects.get(name="acme").api_key == ACME_KEY


def test_reconciliation_lists_each_accounts_add_ons_with_its_key_and_goes_on_past_a_refused_one(plans, heroku):
    acme = _add("acme", ACME_KEY)
    globex = _add("globex", GLOBEX_KEY)
    mine = heroku.add_redis_addon("shop", plan="heroku-redis:premium-0")
    theirs = heroku.accounts["acme"].add_redis_addon("shop", plan="heroku-redis:premium-0")
    lost = heroku.accounts["globex"].add_redis_addon("blog", plan="heroku-redis:premium-0")
    make_instance(name="mine", app_name="shop", addon_id=mine["id"])
    make_instance(name="theirs", app_name="shop", addon_id=theirs["id"], account=acme)
    make_instance(name="lost", app_name="blog", addon_id=lost["id"], account=globex)
    heroku.accounts["acme"].set_plan_by_hand(theirs["id"], "heroku-redis:premium-2")
    heroku.accounts["globex"].revoke_key()

    with pytest.raises(Exception, match="401"):
        addons_reconcile(now=T0)

    assert RedisInstance.objects.get(name="theirs").current_plan.plan_name == "heroku-redis:premium-2"
    assert RedisInstance.objects.get(name="mine").current_plan.plan_name == "heroku-redis:premium-0"
    assert heroku.count("GET", r"^/addons$") == 1 and heroku.accounts["acme"].count("GET", r"^/addons$") == 1
    assert _bearer(heroku.accounts["acme"]) == {f"Bearer {ACME_KEY}"}


def test_one_account_drained_and_one_refused_never_delay_the_third_and_each_is_alerted_once(
        plans, heroku, redis_server_factory, reader):
    accounts = {"default": None, "acme": _add("acme", ACME_KEY), "globex": _add("globex", GLOBEX_KEY)}
    fakes = {"default": heroku, "acme": heroku.accounts["acme"], "globex": heroku.accounts["globex"]}
    instances = {}
    for name, account in accounts.items():
        server = redis_server_factory()
        addon = fakes[name].add_redis_addon("shop", plan="heroku-redis:premium-0", url=server.url)
        extra = {"account": account} if account else {}
        instances[name] = make_instance(
            name=f"{name}-queue", app_name="shop", plan="heroku-redis:premium-0", min_plan="heroku-redis:premium-0",
            max_plan="heroku-redis:premium-3", redis_url=server.url, addon_id=addon["id"], addon_name=addon["name"],
            **extra)
        fill(server, 45)  # 90 % of premium-0's 50 MB: every instance must go up
    fakes["acme"].drain_rate_limit(0)
    fakes["globex"].revoke_key()

    now, first_patch = T0, {}
    for _ in range(8):  # 4 minutes: a sample every 30 s, a check every minute
        now += timedelta(seconds=30)
        samples_collect(due=[(i.pk, now) for i in instances.values()], reader=reader, now_fn=lambda: now)
        if now.second == 0:
            for name, instance in instances.items():
                instance_check_scaling(instance_id=instance.pk, now=now)
                if fakes[name].count("PATCH") and name not in first_patch:
                    first_patch[name] = now

    # The healthy account scaled at its second check (the up window needs two minutes of
    # samples), as it would alone; its client never backed off.
    assert first_patch["default"] == T0 + timedelta(minutes=2)
    assert RedisInstance.objects.get(pk=instances["default"].pk).current_plan.plan_name == "heroku-redis:premium-1"
    assert account_client(account=None)._backoff_until is None
    # Every call carried its own account's key.
    assert _bearer(heroku) == {f"Bearer {settings.HEROKU_API_KEY}"}
    assert _bearer(fakes["acme"]) == {f"Bearer {ACME_KEY}"} and _bearer(fakes["globex"]) == {f"Bearer {GLOBEX_KEY}"}
    # The drained and the refusing account did not scale, and say why.
    failed = {a.instance.name: a for a in ScalingAction.objects.filter(status=ScalingAction.Status.FAILED)}
    assert set(failed) == {"acme-queue", "globex-queue"}
    assert failed["acme-queue"].error.startswith("Heroku PATCH") and "429" in failed["acme-queue"].error
    assert "401" in failed["globex-queue"].error
    # One alert per failing account, none for the healthy one; the admin shows their state.
    alerts = Notification.objects.filter(kind=Notification.Kind.ACCOUNT_FAILING)
    assert sorted(alerts.values_list("fingerprint", flat=True)) == ["account:acme:drained", "account:globex:refusing"]
    states = dict(HerokuAccount.objects.values_list("name", "problem"))
    assert states.pop("default", "") == "" and states == {"acme": "drained", "globex": "refusing"}
    assert all(ACME_KEY not in a.body and GLOBEX_KEY not in a.body for a in alerts)
    # Delivered through the relay (event heroku.account_failing): one mail each.
    assert sorted(alerts.values_list("event", flat=True)) == ["heroku.account_failing"] * 2
    mailed = [m for m in alerts_delivered() if "Heroku account" in m.subject]
    assert len(mailed) == 2 and not any(ACME_KEY in m.body or GLOBEX_KEY in m.body for m in mailed)


def test_the_default_account_drained_is_alerted_once_even_before_its_row_exists(plans, heroku):
    HerokuAccount.objects.all().delete()
    heroku.drain_rate_limit(0)
    client = account_client(account=None)

    for _ in range(3):  # as plan changes' follow-ups do: sent whatever the budget
        with pytest.raises(Exception, match="429"):
            client.get_addon("redis-1", app="shop", priority=True)

    assert HerokuAccount.objects.get(name="default").problem == "drained"
    assert Notification.objects.filter(kind=Notification.Kind.ACCOUNT_FAILING).count() == 1


def test_an_account_answering_again_is_cleared_and_a_new_failure_alerted_again(plans, heroku, settings):
    settings.ALERT_REPEAT_SECONDS = 0
    _add("acme", ACME_KEY)
    acme = heroku.accounts["acme"]
    acme.add_app("shop")
    client = account_client(account=HerokuAccount.objects.get(name="acme"))
    acme.revoke_key()
    with pytest.raises(Exception, match="401"):
        client.get_app("shop")
    acme.revoked = False
    client.get_app("shop")
    cleared = HerokuAccount.objects.get(name="acme").problem
    acme.revoke_key()
    with pytest.raises(Exception, match="401"):
        client.get_app("shop")

    assert cleared == "" and HerokuAccount.objects.get(name="acme").problem == "refusing"
    assert Notification.objects.filter(kind=Notification.Kind.ACCOUNT_FAILING).count() == 2


def test_the_release_check_names_an_account_whose_stored_key_no_configured_key_reads(heroku, settings):
    from cryptography.fernet import Fernet

    from autoscaler.checks import stored_urls_readable_check

    _add("acme", ACME_KEY)
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    errors = stored_urls_readable_check(databases=["default"])

    assert [(error.id, "(acme)" in error.msg) for error in errors] == [("autoscaler.E006", True)]


def test_metrics_give_the_rate_limit_of_each_account(plans, heroku, client, settings):
    settings.METRICS_TOKEN = "metrics-token-0123456789"
    _add("acme", ACME_KEY)
    heroku.accounts["acme"].drain_rate_limit(1234)
    heroku.accounts["acme"].add_app("shop")
    heroku.add_app("blog")
    account_client(account=HerokuAccount.objects.get(name="acme")).get_app("shop")
    account_client(account=None).get_app("blog")

    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-0123456789").content.decode()

    assert 'redis_autoscaler_heroku_rate_limit_remaining{account="acme"} 1233.0' in text
    assert 'redis_autoscaler_heroku_rate_limit_remaining{account="default"} 4499.0' in text


def test_an_interactive_session_asks_which_account_has_the_app_when_two_have_it(plans, heroku, capsys, monkeypatch):
    import add_redis_mon

    _add("acme", ACME_KEY)
    heroku.add_redis_addon("shop", plan="heroku-redis:premium-0", config_var="REDIS_URL")
    heroku.accounts["acme"].add_redis_addon("shop", plan="heroku-redis:premium-1", config_var="HEROKU_REDIS_ACME_URL")
    # Enter at "which account" (look in all), then the account of the two that have the app.
    monkeypatch.setattr("sys.stdin", io.StringIO("\nnowhere\nacme\n"))

    code = add_redis_mon.main(["--name", "orders", "--app", "shop"])

    out = capsys.readouterr().out
    assert "Heroku account (default, acme; Enter: the one that has the app)" in out
    assert "Heroku account (app shop exists in default, acme)" in out
    assert "! no Heroku account named 'nowhere'" in out
    assert "Redis config var (Redis vars of the app: HEROKU_REDIS_ACME_URL)" in out
    assert code != 0 and not RedisInstance.objects.exists()  # the answers ran out: nothing saved


def test_the_admin_shows_each_account_its_state_and_where_its_key_is_never_the_key(plans, heroku, admin_client):
    from django.urls import reverse

    acme = _add("acme", ACME_KEY)
    acme.problem_mark(problem="refusing", detail="GET /apps/shop: 401 unauthorized", now=T0)
    instance = make_instance(name="orders", account=acme)

    listing = admin_client.get(reverse("admin:scaling_herokuaccount_changelist")).content.decode()
    page = admin_client.get(reverse("admin:scaling_herokuaccount_change", args=[acme.pk])).content.decode()
    instance_page = admin_client.get(reverse("admin:scaling_redisinstance_change", args=[instance.pk])).content.decode()

    assert "stored, encrypted" in listing and "key refused (401): GET /apps/shop: 401 unauthorized" in listing
    assert "acme@example.com" in page
    assert ACME_KEY not in listing + page + instance_page
    assert 'name="account"' not in instance_page  # shown, not editable: moving accounts is a registration


def test_registration_by_account_stores_it_and_an_edit_keeps_it(plans, heroku, capsys, redis_server_factory):
    import add_redis_mon

    _add("acme", ACME_KEY)
    server = redis_server_factory()
    heroku.add_redis_addon("shop", plan="heroku-redis:premium-0", url=server.url)
    theirs = heroku.accounts["acme"].add_redis_addon("shop", plan="heroku-redis:premium-1", url=server.url)
    flags = ["--name", "orders", "--app", "shop", "--config-var", "REDIS_URL"]

    registered = add_redis_mon.main(flags + ["--account", "acme"])
    edited = add_redis_mon.main(flags + ["--memory-threshold", "70", "--yes"])

    assert (registered, edited) == (0, 0), capsys.readouterr().err
    instance = RedisInstance.objects.get(name="orders")
    assert (instance.account.name, str(instance.addon_id), instance.memory_threshold) == ("acme", theirs["id"], 70)
    assert instance.current_plan.plan_name == "heroku-redis:premium-1"
    assert heroku.count("GET", r"^/apps/shop/") == 0  # the default account's app was never asked about
    assert add_redis_mon.main(flags + ["--account", "nowhere"]) == 2
    assert "--account: no Heroku account named 'nowhere'" in capsys.readouterr().err


def test_the_fake_answers_each_key_with_its_own_account_and_an_unknown_key_with_401_unauthorized(heroku):
    from scaling.heroku import HerokuAuthError, HerokuClient

    def client(key):
        return HerokuClient(api_key=key, base_url=settings.HEROKU_API_URL, max_retries=0)

    heroku.accounts["acme"].add_app("shop")

    assert client(ACME_KEY).get_account().email == "acme@example.com"
    assert client(ACME_KEY).get_app("shop").name == "shop"
    with pytest.raises(HerokuAuthError) as caught:
        client("nobody-key-0123456789").get_app("shop")
    assert caught.value.error_id == "unauthorized"
    assert heroku.accounts["acme"].count("GET", "^/apps/shop$") == 1 and heroku.count("GET", "^/apps/shop$") == 1


@pytest.mark.django_db(transaction=True)
def test_the_migration_attaches_the_instances_registered_before_accounts_to_default(plans):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("scaling", "0006_instance_workload_and_scale_down")], [("scaling", "0007_heroku_accounts")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    plan = old.get_model("scaling", "RedisPlan").objects.get(plan_name="heroku-redis:premium-0")
    old.get_model("scaling", "RedisInstance").objects.create(
        name="orders", app_name="shop", config_var="REDIS_URL", current_plan_id=plan.pk, min_plan_id=plan.pk,
        max_plan_id=plan.pk)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert RedisInstance.objects.get(name="orders").account.name == "default"
