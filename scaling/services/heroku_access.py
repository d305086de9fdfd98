"""One Heroku client per process, so that its rate-limit view is shared by all work in it."""

import functools

from scaling.heroku import client_from_settings


@functools.cache
def heroku_client():
    return client_from_settings()


def heroku_client_reset():
    """Forget the process's client (tests, or after settings change)."""
    heroku_client.cache_clear()
