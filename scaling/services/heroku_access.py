"""One Heroku client per account and process: an account's rate-limit view (the last
`RateLimit-Remaining`, the reserve, the back-off after a 429) is shared by all work in the
process for that account, and never by another account's, so that one account drained or
refused never holds back the calls of another (DESIGN section 9)."""

import threading

import requests

from autoscaler.redaction import secret_register
from scaling.heroku import HerokuAuthError, client_from_settings
from scaling.models import DEFAULT_ACCOUNT

_clients = {}  # account name -> (API key, client)
_lock = threading.Lock()


def account_client(*, account=None):
    """The process's client for `account` (a HerokuAccount; None: `default`, HEROKU_API_KEY).
    A key changed since (account added again, another HEROKU_API_KEY in tests) builds a new one."""
    from django.conf import settings

    name = account.name if account is not None else DEFAULT_ACCOUNT
    key = account.api_key if account is not None else (settings.HEROKU_API_KEY or "")
    with _lock:
        held = _clients.get(name)
        if held is not None and held[0] == key:
            return held[1]
        client = _client_build(name=name, key=key)
        _clients[name] = (key, client)
        return client


def _client_build(*, name, key):
    from operations.heartbeats import RateLimitRecorder
    from scaling.services.accounts import AccountWatch

    secret_register(key)
    if not key and name != DEFAULT_ACCOUNT:
        raise HerokuAuthError(None, None, f"Heroku account {name} has no API key")
    # The web process's /metrics reads the last RateLimit-Remaining a worker saw, per account;
    # the watch records (and alerts once) an account drained or refusing its key.
    session = requests.Session()
    session.hooks["response"].extend([RateLimitRecorder(account=name).response_hook, AccountWatch(account=name).response_hook])
    return client_from_settings(session=session, api_key=key)


def heroku_client():
    """The `default` account's client (HEROKU_API_KEY)."""
    return account_client(account=None)


def heroku_client_reset():
    """Forget the process's clients (tests, or after settings change)."""
    with _lock:
        _clients.clear()
