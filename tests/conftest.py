import pytest
from django.conf import settings

from scaling.models import RedisPlan
from scaling.services.heroku_access import heroku_client_reset
from scaling.services.plans import plans_load
from tests.fakes.heroku import installed_fake
from tests.redis_servers import redis_server_factory  # noqa: F401  (a fixture)


@pytest.fixture
def plans(db):
    """The bundled plan data, by plan name."""
    plans_load()
    return {plan.plan_name: plan for plan in RedisPlan.objects.all()}


@pytest.fixture
def heroku():
    """The fake Heroku answering the app's client (HEROKU_API_URL); checks every request
    against the official schema and fails the test on a request Heroku would refuse."""
    heroku_client_reset()
    with installed_fake(api_key=settings.HEROKU_API_KEY, base_url=settings.HEROKU_API_URL) as fake:
        yield fake
    heroku_client_reset()
