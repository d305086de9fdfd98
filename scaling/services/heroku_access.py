"""One Heroku client per process, so that its rate-limit view is shared by all work in it."""

import functools

import requests

from scaling.heroku import client_from_settings


@functools.cache
def heroku_client():
    from operations.heartbeats import RateLimitRecorder

    # The web process's /metrics reads the last RateLimit-Remaining a worker saw.
    session = requests.Session()
    session.hooks["response"].append(RateLimitRecorder().response_hook)
    return client_from_settings(session=session)


def heroku_client_reset():
    """Forget the process's client (tests, or after settings change)."""
    heroku_client.cache_clear()
