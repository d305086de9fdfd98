"""The Heroku client against the schema-checked fake Heroku (pure: no database, no network)."""

import logging
import re

import pytest
import requests
import responses

from scaling.heroku import (
    AddOn,
    HerokuApp,
    HerokuAuthError,
    HerokuBadResponse,
    HerokuBudgetReserved,
    HerokuClient,
    HerokuConnectionError,
    HerokuError,
    HerokuForbidden,
    HerokuNotFound,
    HerokuRateLimited,
    HerokuRefused,
    HerokuServerError,
    HerokuTimeout,
    client_from_settings,
)
from standins.heroku import ACCEPT, FakeHeroku, ManualClock, installed_fake

API_KEY = "test-api-key-0123456789"
REDIS_URL = "redis://default:s3cr3t-redis-password@redis-1.fake.test:6379"


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def fake(clock):
    with installed_fake(clock=clock) as fake:
        fake.add_app("shop")
        yield fake


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_client(fake, clock, sleeps):
    def make(**options):
        options = {"api_key": API_KEY, "base_url": fake.base_url, "sleep": sleeps.append, "clock": clock, **options}
        return HerokuClient(**options)

    return make


@pytest.fixture
def client(make_client):
    return make_client()


class RecordingSession(requests.Session):
    def __init__(self):
        super().__init__()
        self.timeouts = []

    def request(self, method, url, **kwargs):
        self.timeouts.append(kwargs.get("timeout"))
        return super().request(method, url, **kwargs)


# --- Requests ---------------------------------------------------------------------------


def test_every_request_carries_the_v3_accept_header_the_bearer_key_and_a_timeout(fake, make_client):
    session = RecordingSession()
    client = make_client(session=session)

    client.get_app("shop")
    client.list_app_addons("shop")

    assert len(fake.request_headers) == 2
    for headers in fake.request_headers:
        assert headers["accept"] == ACCEPT
        assert headers["authorization"] == f"Bearer {API_KEY}"
        assert headers["user-agent"] == "redis-autoscaler"
    assert session.timeouts == [(3.05, 20), (3.05, 20)]
    assert client.calls == 2


@pytest.mark.parametrize("timeout", [None, 0, -1, (3, None), "20"])
def test_the_client_refuses_to_be_built_without_a_usable_timeout(timeout):
    with pytest.raises(ValueError, match="timeout"):
        HerokuClient(api_key=API_KEY, timeout=timeout)


def test_the_client_refuses_to_be_built_without_an_api_key():
    with pytest.raises(HerokuAuthError, match="HEROKU_API_KEY is not set"):
        HerokuClient(api_key="")


def test_client_from_settings_uses_the_key_url_and_reserve_from_django_settings():
    from django.conf import settings

    client = client_from_settings()

    assert client.base_url == settings.HEROKU_API_URL
    assert client.reserve == settings.HEROKU_API_RESERVE
    assert client._session.headers["Authorization"] == f"Bearer {settings.HEROKU_API_KEY}"


# --- Results ----------------------------------------------------------------------------


def test_get_app_returns_the_app_id_and_name(fake, client):
    assert client.get_app("shop") == HerokuApp(id=fake.apps["shop"]["id"], name="shop")


def test_add_ons_come_back_as_small_dataclasses_with_heroku_plan_names(fake, client):
    addon = fake.add_redis_addon("shop", plan="heroku-redis:premium-2", config_var="HEROKU_REDIS_BLUE_URL")
    fake.add_redis_addon("other-app", service="rediscloud", plan="rediscloud:100", config_var="REDISCLOUD_URL")
    expected = AddOn(
        id=addon["id"], name=addon["name"], app_name="shop", service_name="heroku-redis",
        plan_name="heroku-redis:premium-2", state="provisioned", config_vars=("HEROKU_REDIS_BLUE_URL",),
    )

    assert client.list_app_addons("shop") == [expected]
    assert client.get_addon(addon["id"]) == expected
    assert client.get_addon(addon["name"], app="shop") == expected
    assert {a.plan_name for a in client.list_addons()} == {"heroku-redis:premium-2", "rediscloud:100"}


def test_config_vars_come_back_as_a_dict_of_strings(fake, client):
    fake.add_redis_addon("shop", config_var="REDIS_URL", url=REDIS_URL)
    fake.set_config_var("shop", "OTHER", "value")

    assert client.get_config_vars("shop") == {"REDIS_URL": REDIS_URL, "OTHER": "value"}


def test_list_addons_follows_next_range_across_three_pages_of_2500_add_ons(fake, client):
    created = {fake.add_redis_addon(f"app-{n % 50:02d}")["id"] for n in range(2500)}

    addons = client.list_addons()

    assert [a.id for a in addons] == sorted(created)
    assert fake.count("GET", r"^/addons$") == 3
    ranges = [headers.get("range") for headers in fake.request_headers]
    assert ranges[0] == "id ..; max=1000"
    assert all(r.startswith("id ]") and r.endswith("; max=1000") for r in ranges[1:])


def test_a_list_that_fits_one_page_costs_one_call(fake, client):
    fake.add_redis_addon("shop")

    assert len(client.list_app_addons("shop")) == 1
    assert client.calls == 1


def test_an_answer_lacking_expected_fields_raises_bad_response():
    client = HerokuClient(api_key=API_KEY, base_url="https://heroku.test")
    with responses.RequestsMock() as mock:
        mock.get("https://heroku.test/addons/abc", json={"id": "abc", "name": "redis-x", "config_vars": []})
        with pytest.raises(HerokuBadResponse) as caught:
            client.get_addon("abc")
    assert str(caught.value) == "Heroku GET /addons/abc: 200: answer lacks 'app.name'"
    assert caught.value.retryable


def test_a_body_that_is_not_json_raises_bad_response(fake, client):
    fake.fail_next("GET", r"/config-vars$", status="malformed")

    with pytest.raises(HerokuBadResponse, match=r"^Heroku GET /apps/shop/config-vars: 200: body is not JSON") as caught:
        client.get_config_vars("shop")
    assert caught.value.retryable
    assert "\n" not in str(caught.value)


def test_path_segments_are_quoted_not_interpreted(fake, client):
    with pytest.raises(HerokuNotFound):
        client.get_app("../account")
    assert fake.calls[-1].path == "/apps/..%2Faccount"


# --- Rate limit and reserve -----------------------------------------------------------


def test_rate_limit_remaining_is_tracked_from_every_response(fake, client):
    assert client.rate_limit_remaining is None
    client.get_app("shop")
    assert client.rate_limit_remaining == 4499
    client.list_app_addons("shop")
    assert client.rate_limit_remaining == 4498


def test_fetching_the_rate_limit_is_free(fake, client):
    assert client.fetch_rate_limit() == 4500
    assert client.fetch_rate_limit() == 4500
    assert client.rate_limit_remaining == 4500
    assert client.calls == 2


def test_at_the_reserve_ordinary_calls_are_refused_unsent_but_scaling_actions_go(fake, make_client):
    addon = fake.add_redis_addon("shop")
    client = make_client(reserve=500)
    fake.drain_rate_limit(to=501)
    client.get_app("shop")  # the answer says 500 left
    sent = len(fake.calls)

    with pytest.raises(HerokuBudgetReserved) as caught:
        client.list_app_addons("shop")
    with pytest.raises(HerokuBudgetReserved):
        client.get_config_vars("shop")
    assert len(fake.calls) == sent
    assert caught.value.retryable and caught.value.status is None

    changed = client.change_plan(app="shop", addon_id=addon["id"], plan="heroku-redis:premium-1")
    followed = client.get_addon(addon["id"], priority=True)
    assert changed.plan_name == followed.plan_name == "heroku-redis:premium-1"
    assert client.rate_limit_remaining == 498


def test_the_reserve_refusal_expires_as_the_pool_refills(fake, make_client, clock):
    client = make_client(reserve=500)
    fake.drain_rate_limit(to=400)
    client.get_app("shop")  # 399 left
    with pytest.raises(HerokuBudgetReserved) as caught:
        client.get_app("shop")
    assert caught.value.retry_after == pytest.approx((501 - 399) / (4500 / 3600))

    clock.advance(caught.value.retry_after + 1)

    assert client.get_app("shop").name == "shop"
    assert client.rate_limit_remaining > 500


def test_a_429_raises_rate_limited_and_backs_off_without_sending_again(fake, make_client, clock, sleeps):
    client = make_client(reserve=0)
    fake.drain_rate_limit(to=0)

    with pytest.raises(HerokuRateLimited) as caught:
        client.get_app("shop")
    assert (caught.value.status, caught.value.error_id, caught.value.retryable) == (429, "rate_limit", True)
    assert caught.value.retry_after == 60
    with pytest.raises(HerokuRateLimited, match="not sent"):
        client.get_app("shop")
    assert fake.count("GET", "/apps/shop") == 1
    assert sleeps == []

    clock.advance(61)
    assert client.get_app("shop").name == "shop"


def test_a_429_honours_retry_after(fake, make_client, clock):
    client = make_client()
    fake.fail_next("GET", r"^/apps/shop$", status=429, headers={"Retry-After": "5"})

    with pytest.raises(HerokuRateLimited) as caught:
        client.get_app("shop")
    assert caught.value.retry_after == 5
    clock.advance(5)
    assert client.get_app("shop").name == "shop"


def test_a_plan_change_still_goes_during_a_429_back_off(fake, make_client):
    addon = fake.add_redis_addon("shop")
    client = make_client()
    fake.fail_next("GET", r"^/apps/shop$", status=429)
    with pytest.raises(HerokuRateLimited):
        client.get_app("shop")

    assert client.change_plan(app="shop", addon_id=addon["id"], plan="heroku-redis:premium-3").plan_name == (
        "heroku-redis:premium-3"
    )


def test_the_fake_answers_429_when_its_pool_is_empty_and_refills_continuously(fake, clock):
    fake.drain_rate_limit(to=0)
    headers = {"Accept": ACCEPT, "Authorization": f"Bearer {API_KEY}"}
    assert fake.handle("GET", "/apps/shop", headers, b"")[0] == 429
    clock.advance(3600 / 4500 * 2)
    status, answer_headers, _ = fake.handle("GET", "/apps/shop", headers, b"")
    assert (status, answer_headers["RateLimit-Remaining"]) == (200, "1")


# --- Retries --------------------------------------------------------------------------


def test_a_500_then_success_is_retried_with_exponential_backoff(fake, client, sleeps):
    fake.fail_next("GET", r"^/apps/shop$", status=500, times=2)

    assert client.get_app("shop").name == "shop"
    assert fake.count("GET", r"^/apps/shop$") == 3
    assert sleeps == [0.5, 1.0]
    assert client.calls == 3


def test_a_get_that_keeps_failing_with_5xx_raises_server_error_after_the_retries(fake, client, sleeps):
    fake.fail_next("GET", r"^/apps/shop$", status=503, times=10)

    with pytest.raises(HerokuServerError) as caught:
        client.get_app("shop")
    assert (caught.value.status, caught.value.error_id, caught.value.retryable) == (503, "service_unavailable", True)
    assert fake.count() == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_get_that_keeps_timing_out_raises_heroku_timeout_after_the_retries(fake, client, sleeps):
    fake.fail_next("GET", r"/addons$", status="timeout", times=10)

    with pytest.raises(HerokuTimeout) as caught:
        client.list_app_addons("shop")
    assert caught.value.retryable and caught.value.status is None
    assert not caught.value.outcome_unknown
    assert fake.count("GET", r"/addons$") == 4
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_timeout_then_success_is_retried(fake, client, sleeps):
    fake.fail_next("GET", r"^/apps/shop$", status="timeout")

    assert client.get_app("shop").name == "shop"
    assert sleeps == [0.5]


def test_connection_errors_are_retried_then_raised(fake, client):
    fake.fail_next("GET", r"^/apps/shop$", status="connection", times=10)

    with pytest.raises(HerokuConnectionError) as caught:
        client.get_app("shop")
    assert caught.value.retryable
    assert fake.count() == 4


def test_a_patch_that_times_out_is_not_retried_and_its_outcome_is_unknown(fake, client, sleeps):
    addon = fake.add_redis_addon("shop")
    fake.fail_next("PATCH", r"/addons/", status="timeout", applied=True)

    with pytest.raises(HerokuTimeout) as caught:
        client.change_plan(app="shop", addon_id=addon["id"], plan="heroku-redis:premium-1")
    assert caught.value.outcome_unknown
    assert fake.count("PATCH") == 1
    assert sleeps == []
    # The caller reconciles: the change went through.
    assert client.get_addon(addon["id"], priority=True).plan_name == "heroku-redis:premium-1"


def test_a_patch_answered_500_is_not_retried(fake, client, sleeps):
    addon = fake.add_redis_addon("shop")
    fake.fail_next("PATCH", r"/addons/", status=500)

    with pytest.raises(HerokuServerError) as caught:
        client.change_plan(app="shop", addon_id=addon["id"], plan="heroku-redis:premium-1")
    assert caught.value.outcome_unknown
    assert fake.count("PATCH") == 1
    assert sleeps == []


# --- Permanent errors -----------------------------------------------------------------


def _wrong_key(fake, make_client):
    return make_client(api_key="another-key-9876543210").get_app("shop")


def _forbidden(fake, make_client):
    fake.fail_next("GET", r"^/apps/shop$", status=403, message="You do not have access to the app shop.")
    return make_client().get_app("shop")


def _unknown_app(fake, make_client):
    return make_client().list_app_addons("no-such-app")


def _invalid_plan(fake, make_client):
    addon = fake.add_redis_addon("shop")
    fake.mark_plan_invalid("heroku-redis:premium-99")
    return make_client().change_plan(app="shop", addon_id=addon["id"], plan="heroku-redis:premium-99")


def _payment_required(fake, make_client):
    addon = fake.add_redis_addon("shop")
    fake.fail_next("PATCH", r"/addons/", status=402)
    return make_client().change_plan(app="shop", addon_id=addon["id"], plan="heroku-redis:premium-9")


@pytest.mark.parametrize(
    "provoke, error_class, status, error_id",
    [
        (_wrong_key, HerokuAuthError, 401, "unauthorized"),
        (_forbidden, HerokuForbidden, 403, "forbidden"),
        (_unknown_app, HerokuNotFound, 404, "not_found"),
        (_payment_required, HerokuRefused, 402, "delinquent"),
        (_invalid_plan, HerokuRefused, 422, "invalid_params"),
    ],
)
def test_4xx_answers_are_typed_permanent_and_sent_once(fake, make_client, sleeps, provoke, error_class, status,
                                                       error_id):
    with pytest.raises(error_class) as caught:
        provoke(fake, make_client)

    error = caught.value
    assert isinstance(error, HerokuError)
    assert (error.status, error.error_id, error.retryable) == (status, error_id, False)
    assert len(fake.calls) == 1
    assert sleeps == []
    assert re.fullmatch(rf"Heroku (GET|PATCH) /\S+: {status} {error_id}: .+", str(error))


def test_a_404_reads_as_one_line_with_method_path_status_id_and_message(fake, client):
    with pytest.raises(HerokuNotFound) as caught:
        client.list_app_addons("myapp")
    assert str(caught.value) == "Heroku GET /apps/myapp/addons: 404 not_found: Couldn't find that app."


# --- Secrets --------------------------------------------------------------------------


def test_the_api_key_and_config_values_never_reach_errors_repr_or_logs(fake, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    fake.add_redis_addon("shop", url=REDIS_URL)
    client = make_client()
    errors = []

    client.get_config_vars("shop")
    client.list_addons()
    for status, times in ((500, 4), ("timeout", 4), ("connection", 4), ("malformed", 1), (403, 1), (429, 1)):
        fake.fail_next("GET", r"^/apps/shop$", status=status, times=times,
                       message=f"echo of {API_KEY} and {REDIS_URL}")
        with pytest.raises(HerokuError) as caught:
            make_client().get_app("shop")
        errors.append(caught.value)
    with pytest.raises(HerokuError) as caught:
        make_client(api_key=API_KEY[::-1]).get_app("shop")
    errors.append(caught.value)

    texts = [repr(client), caplog.text] + [str(e) for e in errors] + [repr(e) for e in errors]
    assert caplog.records, "the client logs its calls at DEBUG"
    for text in texts:
        assert API_KEY not in text
        assert "s3cr3t-redis-password" not in text
    assert [type(e) for e in errors] == [HerokuServerError, HerokuTimeout, HerokuConnectionError, HerokuBadResponse,
                                         HerokuForbidden, HerokuRateLimited, HerokuAuthError]
    assert str(errors[0]) == ("Heroku GET /apps/shop: 500 internal_server_error: "
                              "echo of *** and redis://default:***@redis-1.fake.test:6379")


# --- The fake itself ------------------------------------------------------------------


def test_the_fake_rejects_a_plan_given_as_an_object_and_records_a_violation(fake):
    addon = fake.add_redis_addon("shop")

    answer = requests.patch(
        f"{fake.base_url}/apps/shop/addons/{addon['id']}",
        json={"plan": {"name": "x"}},
        headers={"Accept": ACCEPT, "Authorization": f"Bearer {API_KEY}"},
        timeout=5,
    )

    assert answer.status_code == 422
    assert answer.json()["id"] == "invalid_params"
    assert len(fake.violations) == 1 and "plan" in fake.violations[0]
    with pytest.raises(AssertionError, match="would refuse"):
        fake.assert_no_violations()
    assert fake.addons[addon["id"]]["plan"] == "heroku-redis:premium-0"
    fake.violations.clear()


def test_the_fake_rejects_unknown_routes_and_a_missing_version_header(fake):
    headers = {"Accept": ACCEPT, "Authorization": f"Bearer {API_KEY}"}
    assert requests.get(f"{fake.base_url}/apps/shop/addonz", headers=headers, timeout=5).status_code == 404
    assert requests.get(f"{fake.base_url}/apps/shop", headers={"Authorization": headers["Authorization"]},
                        timeout=5).status_code == 400

    assert len(fake.violations) == 2
    fake.violations.clear()


def test_after_a_plan_change_the_add_on_provisions_for_plan_change_seconds(fake, client, clock):
    addon = fake.add_redis_addon("shop")
    fake.plan_change_seconds = 120

    changed = client.change_plan(app="shop", addon_id=addon["id"], plan="heroku-redis:premium-1")
    assert (changed.plan_name, changed.state) == ("heroku-redis:premium-1", "provisioning")
    clock.advance(119)
    assert client.get_addon(addon["id"], priority=True).state == "provisioning"
    clock.advance(1)
    assert client.get_addon(addon["id"], priority=True).state == "provisioned"


def test_a_plan_changed_by_hand_and_a_rotated_url_are_what_the_client_reads_next(fake, client):
    addon = fake.add_redis_addon("shop", url=REDIS_URL)
    fake.set_plan_by_hand(addon["id"], "heroku-redis:premium-5")
    fake.rotate_url(addon["id"], "redis://default:new@redis-2.fake.test:6379")

    assert client.get_addon(addon["id"]).plan_name == "heroku-redis:premium-5"
    assert client.get_config_vars("shop")["REDIS_URL"] == "redis://default:new@redis-2.fake.test:6379"


# --- Served over real HTTP ------------------------------------------------------------


def test_the_served_fake_works_with_the_client_end_to_end():
    fake = FakeHeroku(clock=ManualClock())  # no refill: the pool counts every call
    addons = [fake.add_redis_addon(f"app-{n % 7}") for n in range(1100)]
    with fake.serve() as base_url:
        client = HerokuClient(api_key=API_KEY, base_url=base_url, timeout=(1, 10), max_retries=0)
        impatient = HerokuClient(api_key=API_KEY, base_url=base_url, timeout=(1, 0.2), max_retries=0)

        assert client.get_app("app-1").name == "app-1"
        assert len(client.list_addons()) == 1100
        changed = client.change_plan(app=addons[0]["app"], addon_id=addons[0]["id"], plan="heroku-redis:premium-1")
        assert changed.plan_name == "heroku-redis:premium-1"
        assert "REDIS_URL" in client.get_config_vars("app-1")
        with pytest.raises(HerokuNotFound):
            client.get_app("nope")

        fake.fail_next("GET", r"^/apps/app-1$", status="timeout")
        with pytest.raises(HerokuTimeout):
            impatient.get_app("app-1")
        fake.fail_next("GET", r"^/apps/app-1$", status="connection")
        with pytest.raises(HerokuConnectionError):
            impatient.get_app("app-1")
        assert client.get_app("app-1").name == "app-1"

    assert fake.count("GET", r"^/addons$") == 2
    assert client.rate_limit_remaining == 4500 - client.calls - impatient.calls
    fake.assert_no_violations()
