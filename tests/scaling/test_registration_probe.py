"""Registration's probe of a Redis: the same deadline and reply cap as every sample."""

import pytest

from scaling.services.registration import redis_probe
from standins.fake_redis import FakeServer, bulk

INFO_TEXT = "# Memory\r\nused_memory:1048576\r\n# Clients\r\nconnected_clients:3\r\n"


@pytest.fixture
def server():
    servers = []

    def start(respond, trickle=None):
        servers.append(FakeServer(respond, trickle=trickle))
        return servers[-1]

    yield start
    for each in servers:
        each.close()


def test_the_probe_of_a_trickling_redis_ends_at_the_deadline_with_one_line(settings, server):
    settings.REDIS_CONNECT_TIMEOUT, settings.REDIS_READ_TIMEOUT = 1, 1
    trickler = server(lambda args: bulk(INFO_TEXT), trickle=0.1)  # would take 8 s

    probe = redis_probe(f"redis://:probe-secret@127.0.0.1:{trickler.port}")

    assert not probe.ok
    assert probe.error == f"slow: 127.0.0.1:{trickler.port} did not finish the INFO exchange within its 2 s deadline"
    assert trickler.sent < len(bulk(INFO_TEXT))


def test_the_probe_refuses_an_oversized_reply(server):
    huge = server(lambda args: bulk("used_memory:1\r\nconnected_clients:1\r\n" + "x" * (3 << 20)))

    probe = redis_probe(huge.url)

    assert not probe.ok and probe.error.startswith("too_large: ")


def test_the_probe_of_a_redis_without_readable_used_memory_fails(server):
    odd = server(lambda args: bulk("used_memory:lots\r\nconnected_clients:3\r\n"))

    probe = redis_probe(odd.url)

    assert not probe.ok and probe.error.startswith("incomplete: ")
