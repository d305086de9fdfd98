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
