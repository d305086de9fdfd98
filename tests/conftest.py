import pytest
from django.conf import settings

from scaling.models import RedisPlan
from scaling.services.heroku_access import heroku_client, heroku_client_reset
from scaling.services.plans import plans_load
from standins.heroku import FakeHeroku, installed_fake
from standins.redis_servers import RedisServer, start_redis


@pytest.fixture
def plans(db):
    """The bundled plan data, by plan name."""
    plans_load()
    return {plan.plan_name: plan for plan in RedisPlan.objects.all()}


@pytest.fixture
def heroku():
    """The fake Heroku answering the app's client (HEROKU_API_URL); checks every request
    against the repository's Heroku contract (cut from the official schema) and fails the test
    on a request Heroku would refuse."""
    heroku_client_reset()
    with installed_fake(api_key=settings.HEROKU_API_KEY, base_url=settings.HEROKU_API_URL) as fake:
        # Back-offs of the app's client are recorded, not slept.
        fake.client_sleeps = []
        heroku_client().sleep = fake.client_sleeps.append
        yield fake
    heroku_client_reset()


@pytest.fixture
def served_heroku():
    """The fake on a real socket, for subprocesses: set HEROKU_API_URL=fake.served_url in their env."""
    fake = FakeHeroku(api_key=settings.HEROKU_API_KEY)
    with fake.serve():
        yield fake
    fake.assert_no_violations()


@pytest.fixture
def redis_server_factory():
    """Yield ``start_redis`` (standins.redis_servers); every server started through it is closed
    at teardown."""
    servers: list[RedisServer] = []

    def start(**kwargs) -> RedisServer:
        server = start_redis(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
