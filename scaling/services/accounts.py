"""Heroku accounts: adding one (its key checked with `GET /account` first), listing,
removing, and watching each account's answers for a drained rate limit or a refused key
(DESIGN section 9)."""

import logging
import re
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from autoscaler.redaction import secret_register
from scaling.heroku import DEFAULT_BASE_URL, HerokuAuthError, HerokuClient, HerokuError
from scaling.models import DEFAULT_ACCOUNT, NAME_PATTERN, HerokuAccount, RedisInstance, default_account_id

logger = logging.getLogger(__name__)

Problem = HerokuAccount.Problem


class AccountError(Exception):
    """What a person asked of an account cannot be done; `str()` is one line."""


def account_name_clean(value):
    name = (value or "").strip()
    if not name or len(name) > 64 or not re.fullmatch(NAME_PATTERN, name):
        raise AccountError(f"account name must be 1 to 64 letters, digits, '-' or '_', not {name[:70]!r}")
    return name


def account_named(*, name):
    """The account called `name`; AccountError naming the known ones when there is none."""
    if name == DEFAULT_ACCOUNT:
        default_account_id()  # its row may not be made yet
    account = HerokuAccount.objects.filter(name=name).first()
    if account is None:
        known = ", ".join(HerokuAccount.objects.values_list("name", flat=True)) or "none"
        raise AccountError(f"no Heroku account named {name!r} (known: {known})")
    return account


def accounts_usable():
    """The accounts with a key, `default` (HEROKU_API_KEY) first when it is set."""
    default_account_id()
    accounts = [account for account in HerokuAccount.objects.all() if account.usable]
    return sorted(accounts, key=lambda account: (not account.is_default, account.name))


def account_add(*, name, api_key, replace=False, client=None):
    """Check `api_key` with Heroku (`GET /account`, 1 call) and store it encrypted as account
    `name`; `replace`: an existing account gets the new key. Nothing is saved on any error."""
    name = account_name_clean(name)
    if name == DEFAULT_ACCOUNT:
        raise AccountError("the account 'default' is HEROKU_API_KEY: set that variable instead")
    api_key = (api_key or "").strip()
    if not api_key or any(ch.isspace() for ch in api_key):
        raise AccountError("the API key is empty or has spaces in it (give the key alone, e.g. from heroku authorizations:create)")
    secret_register(api_key)
    exists = HerokuAccount.objects.filter(name=name).exists()
    if exists and not replace:
        raise AccountError(f"account {name!r} exists; add --replace to give it a new key")
    client = client or HerokuClient(api_key=api_key, base_url=getattr(settings, "HEROKU_API_URL", DEFAULT_BASE_URL),
                                    max_retries=1)
    try:
        info = client.get_account()
    except HerokuAuthError as error:
        raise AccountError(f"Heroku refused the key for account {name!r}: {_detail(error)}; nothing saved") from None
    except HerokuError as error:
        raise AccountError(f"cannot check the key with Heroku (GET /account): {_detail(error)}; nothing saved") from None
    try:
        with transaction.atomic():
            account = HerokuAccount.objects.select_for_update().filter(name=name).first() or HerokuAccount(name=name)
            account.api_key = api_key
            account.email = info.email
            account.save()
            account.problem_clear()
    except IntegrityError:
        raise AccountError(f"account {name!r} was added meanwhile; nothing saved") from None
    return account


def _detail(error):
    return str(error).split(": ", 1)[-1]


def account_remove(*, name):
    """Remove an account no instance uses."""
    name = account_name_clean(name)
    if name == DEFAULT_ACCOUNT:
        raise AccountError("the account 'default' is HEROKU_API_KEY and cannot be removed; unset the variable instead")
    with transaction.atomic():
        account = HerokuAccount.objects.select_for_update().filter(name=name).first()
        if account is None:
            account_named(name=name)
        users = list(RedisInstance.objects.filter(account.instances_q()).order_by("name").values_list("name", flat=True))
        if users:
            shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
            raise AccountError(f"account {name!r} is used by {len(users)} instance(s) ({shown}); "
                               f"remove them or register them under another account first")
        account.delete()


@dataclass(frozen=True)
class AccountRow:
    name: str
    key: str  # where the key is, never the key
    email: str
    instances: int
    state: str


def accounts_table():
    """One row per account, by name; the key shown only as where it is kept."""
    default_account_id()
    rows = []
    for account in HerokuAccount.objects.order_by("name"):
        if account.is_default:
            key = "HEROKU_API_KEY" + ("" if account.usable else " (not set)")
        else:
            key = "stored, encrypted"
        state = account.get_problem_display() + (f" since {account.problem_since:%Y-%m-%d %H:%M} UTC: {account.problem_detail}"
                                                   if account.problem else "")
        rows.append(AccountRow(name=account.name, key=key, email=account.email or "-", instances=account.instance_count, state=state))
    return rows


# --- Watching an account's answers ---------------------------------------------------------


def account_problem_record(*, name, problem, detail, now):
    """The account is drained or refusing: recorded on it and alerted, once per transition.
    Returns True when this call moved it there."""
    from notifications import services as mail

    if name == DEFAULT_ACCOUNT:
        default_account_id()  # its row may not be made yet
    account = HerokuAccount.objects.filter(name=name).first()
    if account is None or not account.problem_mark(problem=problem, detail=detail, now=now):
        return False
    logger.warning("Heroku account %s: %s: %s", name, account.get_problem_display(), detail)
    mail.account_failing_notify(account=account, now=now)
    return True


def account_problem_clear(*, name):
    account = HerokuAccount.objects.filter(name=name).first()
    return account is not None and account.problem_clear()


class AccountWatch:
    """A `requests` response hook on an account's session: a 401 is the key refused, a 429 or
    `RateLimit-Remaining: 0` the pool drained, any other answer the account fine again. The
    process writes only when what it saw changes; the database's compare-and-set decides who
    alerts. A failed write is logged and never breaks the Heroku call."""

    def __init__(self, *, account):
        self.account = account
        self._seen = None  # the problem this process last recorded ("" fine, None not yet)
        self._lock = threading.Lock()

    def response_hook(self, response, *args, **kwargs):
        problem, detail = _problem_of(response)
        if problem is None:
            return None
        with self._lock:
            if problem == self._seen:
                return None
            self._seen = problem
        try:
            from django.utils import timezone

            with transaction.atomic():
                if problem:
                    account_problem_record(name=self.account, problem=problem, detail=detail, now=timezone.now())
                else:
                    account_problem_clear(name=self.account)
        except Exception as error:  # noqa: BLE001 - a lost record never breaks the Heroku call it came with
            logger.warning("could not record the state of Heroku account %s: %s", self.account, error.__class__.__name__)
            with self._lock:
                self._seen = None
        return None


def _problem_of(response):
    status = response.status_code
    method = getattr(response.request, "method", "")
    path = re.sub(r"^[a-z]+://[^/]+", "", getattr(response.request, "url", "") or "").split("?")[0]
    if status == 401:
        return Problem.REFUSING, f"{method} {path}: 401 unauthorized: the API key is wrong or revoked"
    if status == 429:
        return Problem.DRAINED, f"{method} {path}: 429: the account's API rate limit is used up"
    if status < 300 and response.headers.get("RateLimit-Remaining") == "0":
        return Problem.DRAINED, f"{method} {path}: RateLimit-Remaining is 0"
    if status < 400:
        return Problem.NONE, ""
    return None, ""  # other errors say nothing about the account
