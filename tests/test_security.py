import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


def test_admin_login_is_locked_after_five_failures_even_with_the_right_password(client, settings):
    get_user_model().objects.create_superuser("ops", "ops@example.com", "the-right-password-77")
    for _ in range(5):
        response = client.post("/admin/login/", {"username": "ops", "password": "wrong"}, REMOTE_ADDR="10.1.2.3")
        assert response.status_code in (200, 429)
    locked = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": "the-right-password-77"}, REMOTE_ADDR="10.1.2.3")
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_correct_login_works_before_the_limit(client):
    get_user_model().objects.create_superuser("ops", "ops@example.com", "the-right-password-77")
    client.post("/admin/login/", {"username": "ops", "password": "wrong"}, REMOTE_ADDR="10.1.2.4")
    response = client.post("/admin/login/?next=/admin/", {"username": "ops", "password": "the-right-password-77"}, REMOTE_ADDR="10.1.2.4")
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


# Heroku's router connects to the app from its own address (REMOTE_ADDR) and APPENDS the
# address that connected to it to X-Forwarded-For: the client is the last entry.
ROUTER = "10.9.8.7"


def _login_through_router(client, *, client_address, password, forwarded_by_client=None):
    forwarded = f"{forwarded_by_client}, {client_address}" if forwarded_by_client else client_address
    return client.post("/admin/login/?next=/admin/", {"username": "ops", "password": password},
                       REMOTE_ADDR=ROUTER, HTTP_X_FORWARDED_FOR=forwarded)


@pytest.mark.parametrize("attacker, colleague", [("198.51.100.1", "198.51.100.2"), ("2001:db8::1", "2001:db8::2")])
def test_five_failures_through_the_router_lock_out_that_client_not_the_others_behind_the_same_router(client, attacker, colleague):
    from django.test import Client

    get_user_model().objects.create_superuser("ops", "ops@example.com", "the-right-password-77")
    for _ in range(5):
        _login_through_router(client, client_address=attacker, password="wrong")
    assert _login_through_router(client, client_address=attacker, password="the-right-password-77").status_code == 429

    other = Client()
    response = _login_through_router(other, client_address=colleague, password="the-right-password-77")
    assert response.status_code == 302
    assert other.get("/admin/").status_code == 200


def test_a_forwarding_header_forged_by_the_client_does_not_escape_the_lockout(client):
    get_user_model().objects.create_superuser("ops", "ops@example.com", "the-right-password-77")
    # The attacker writes a different X-Forwarded-For each time; the router appends the real address.
    for attempt in range(5):
        _login_through_router(client, client_address="198.51.100.1", password="wrong",
                              forwarded_by_client=f"203.0.113.{attempt + 1}")
    locked = _login_through_router(client, client_address="198.51.100.1", password="the-right-password-77",
                                   forwarded_by_client="203.0.113.99")
    assert locked.status_code == 429


def test_axes_resolves_addresses_through_django_ipware():
    from axes import helpers

    assert helpers.IPWARE_INSTALLED
