import pytest

from scaling.metrics import RedisMetricsReader
from tests.faults.support import InfoServer


@pytest.fixture
def reader():
    """Short timeouts, so that a Redis that never answers costs one second, not five."""
    with RedisMetricsReader(connect_timeout=1, read_timeout=1) as reader:
        yield reader


@pytest.fixture
def info_server():
    """Start InfoServers; every one is closed at teardown."""
    servers = []

    def start(**fields):
        server = InfoServer(**fields)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
