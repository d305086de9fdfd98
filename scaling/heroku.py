"""The one Heroku Platform API client: a thin adapter over `requests`.

Why it looks like this (DESIGN.md section 7):

- One `requests.Session` with the v3 `Accept` header and a Bearer token, and a timeout on
  every call: a hung Heroku must never hang a Celery worker.
- It returns small frozen dataclasses, never raw JSON, so that the rest of the product
  does not depend on Heroku's response shapes; a response that lacks what we need is a
  `HerokuBadResponse`, not a `KeyError` somewhere else.
- The account has 4,500 calls an hour, shared by every process using the key. The client
  reads `RateLimit-Remaining` from every response and keeps `reserve` calls back for
  scaling actions (`change_plan`, and `get_addon(..., priority=True)` to follow one):
  ordinary reads are refused locally (`HerokuBudgetReserved`, nothing sent) while the
  estimated pool is at or below the reserve. The estimate is the last header plus the
  continuous refill (4,500/3,600 tokens a second) since it was seen, so the refusal
  expires by itself: once the estimate passes the reserve, one call goes out and its
  header gives the true figure again.
- A 429 is never retried in a loop: it raises `HerokuRateLimited` and opens a local back-off
  window (`Retry-After` if Heroku sends one, else 60 s) during which ordinary calls are
  refused without being sent.
- 5xx, timeouts and connection errors are retried for GETs only, with exponential back-off
  through the injected `sleep`. A PATCH is never retried: after a timeout it may have been
  applied, so the caller reconciles by GETting the add-on (`HerokuError.outcome_unknown`).
- Exceptions and log lines carry method, path, status and Heroku's error id and message,
  never the API key, config var values or URLs with passwords.

Standard library and `requests` only; `client_from_settings()` imports Django lazily.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from urllib.parse import quote

import requests

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.heroku.com"
ACCEPT = "application/vnd.heroku+json; version=3"
USER_AGENT = "redis-autoscaler"
POOL_SIZE = 4500  # tokens per account
REFILL_PER_SECOND = 4500 / 3600  # continuous refill
DEFAULT_429_BACKOFF = 60.0  # seconds, when a 429 carries no Retry-After
PAGE_SIZE = 1000  # Heroku's maximum page size
MAX_PAGES = 1000  # a Next-Range loop guard: a million items is not a real account

_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.I)


# --- Results ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HerokuApp:
    id: str
    name: str


@dataclasses.dataclass(frozen=True)
class AddOn:
    """An add-on as the product needs it. `plan_name` is Heroku's full plan name
    (`heroku-redis:premium-0`); `config_vars` are the names (never values) it sets."""

    id: str
    name: str
    app_name: str
    service_name: str
    plan_name: str
    state: str
    config_vars: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PlanPrice:
    """A plan of an add-on service as Heroku lists it: its full name and its price in
    `cents` per `unit` (`None` where Heroku gave none, or not a whole number: `has_price` tells
    which); `contract`: negotiated outside the add-on billing."""

    name: str
    cents: int | None
    unit: str | None
    contract: bool
    has_price: bool = True


@dataclasses.dataclass(frozen=True)
class AccountInfo:
    """Whose key this is (`GET /account`)."""

    id: str
    email: str


# --- Errors ----------------------------------------------------------------------------


class HerokuError(Exception):
    """Base of every client error. `retryable`: trying again later may succeed.
    `status`: HTTP status, None when nothing was answered. `error_id`: Heroku's error id.
    `outcome_unknown`: a non-GET whose effect is unknown (reconcile by GETting)."""

    retryable = False

    def __init__(self, method, path, detail, *, status=None, error_id=None, outcome_unknown=False):
        self.method, self.path, self.detail = method, path, detail
        self.status, self.error_id, self.outcome_unknown = status, error_id, outcome_unknown
        super().__init__(self._line())

    def _line(self):
        parts = [f"Heroku {self.method} {self.path}:" if self.method else "Heroku:"]
        if self.status is not None:
            parts.append(f"{self.status}{' ' + self.error_id if self.error_id else ''}:")
        return " ".join(parts + [self.detail])


class HerokuAuthError(HerokuError):
    """401: the key is missing, wrong or revoked. Permanent until someone fixes it."""


class HerokuForbidden(HerokuError):
    """403: the key's account may not do this on that app."""


class HerokuNotFound(HerokuError):
    """404: no such app or add-on (or not visible to this account)."""


class HerokuRefused(HerokuError):
    """402, 422 and other 4xx: Heroku understood and said no (unknown plan, billing...)."""


class HerokuRateLimited(HerokuError):
    """429 from Heroku, or refused locally during the back-off that followed one.
    `retry_after`: seconds until the client will send ordinary calls again."""

    retryable = True

    def __init__(self, *args, retry_after=0.0, **kwargs):
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class HerokuBudgetReserved(HerokuRateLimited):
    """Refused locally, not sent: the remaining calls are kept for scaling actions."""


class HerokuServerError(HerokuError):
    """5xx after retries (GET) or at once (PATCH)."""

    retryable = True


class HerokuTimeout(HerokuError):
    """No answer within the timeout, after retries (GET) or at once (PATCH)."""

    retryable = True


class HerokuConnectionError(HerokuError):
    """The connection failed (DNS, refused, reset), after retries (GET) or at once (PATCH)."""

    retryable = True


class HerokuBadResponse(HerokuError):
    """A 2xx answer that is not JSON or lacks the fields we need."""

    retryable = True


_BY_STATUS = {401: HerokuAuthError, 403: HerokuForbidden, 404: HerokuNotFound}


# --- Client ----------------------------------------------------------------------------


class HerokuClient:
    """Heroku Platform API v3 client, shared by the threads of a worker process so that they
    share one view of the rate limit: `calls`, `rate_limit_remaining` and the back-off
    window are updated under a lock; the `requests.Session` (urllib3's pool) is thread-safe."""

    def __init__(
        self,
        *,
        api_key,
        base_url=DEFAULT_BASE_URL,
        timeout=(3.05, 20),
        reserve=500,
        max_retries=3,
        backoff=0.5,
        sleep=time.sleep,
        clock=time.monotonic,
        session=None,
    ):
        if not api_key:
            raise HerokuAuthError(None, None, "HEROKU_API_KEY is not set")
        if not _valid_timeout(timeout):
            raise ValueError("a positive timeout (seconds, or a (connect, read) pair) is mandatory")
        self._api_key = api_key
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.reserve = reserve
        self.max_retries = max_retries
        self.backoff = backoff
        self.sleep, self.clock = sleep, clock  # injectable: tests record back-offs, move time
        self._session = session or requests.Session()
        self._session.headers.update(
            {"Accept": ACCEPT, "Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}
        )
        self._lock = threading.Lock()
        self.calls = 0  # HTTP requests sent (benchmarks count Heroku calls with it)
        self.rate_limit_remaining = None  # last RateLimit-Remaining seen
        self._remaining_seen_at = None
        self._backoff_until = None  # after a 429

    def __repr__(self):
        return (
            f"<HerokuClient {_scrub(self.base_url, '')} calls={self.calls} "
            f"rate_limit_remaining={self.rate_limit_remaining} reserve={self.reserve}>"
        )

    # --- API -----------------------------------------------------------------------

    def get_account(self) -> AccountInfo:
        """The key's own account: checks a key before it is stored (1 call)."""
        path = "/account"
        data = self._json("GET", path)
        return AccountInfo(id=_field(data, "id", "GET", path), email=_field(data, "email", "GET", path))

    def get_app(self, app) -> HerokuApp:
        path = f"/apps/{_seg(app)}"
        data = self._json("GET", path)
        return HerokuApp(id=_field(data, "id", "GET", path), name=_field(data, "name", "GET", path))

    def list_app_addons(self, app) -> list[AddOn]:
        path = f"/apps/{_seg(app)}/addons"
        return [_addon(item, "GET", path) for item in self._list(path)]

    def list_addons(self) -> list[AddOn]:
        """Every add-on the account can see, all pages (reconciliation in bulk)."""
        return [_addon(item, "GET", "/addons") for item in self._list("/addons")]

    def get_addon(self, addon_id_or_name, app=None, *, priority=False) -> AddOn:
        """`priority=True` may use the reserve: for following a plan change."""
        path = f"/apps/{_seg(app)}/addons/{_seg(addon_id_or_name)}" if app else f"/addons/{_seg(addon_id_or_name)}"
        return _addon(self._json("GET", path, priority=priority), "GET", path)

    def get_config_vars(self, app) -> dict[str, str]:
        """The app's config vars. The values are secrets: never log or show them."""
        path = f"/apps/{_seg(app)}/config-vars"
        data = self._json("GET", path)
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise HerokuBadResponse("GET", path, "config vars are not a JSON object", status=200)
        return {name: value for name, value in data.items() if isinstance(value, str)}

    def change_plan(self, *, app, addon_id, plan) -> AddOn:
        """Move the add-on to `plan` (`service:plan`). A scaling action: may use the reserve,
        and is never retried; on `outcome_unknown` errors GET the add-on to see what happened."""
        path = f"/apps/{_seg(app)}/addons/{_seg(addon_id)}"
        try:
            data = self._json("PATCH", path, body={"plan": plan}, priority=True, retry=False)
            return _addon(data, "PATCH", path)
        except HerokuBadResponse as error:
            # Heroku said 2xx: the change was most likely accepted, only its answer is unusable.
            error.outcome_unknown = True
            raise

    def list_service_plans(self, service) -> list[PlanPrice]:
        """The plans of an add-on service (`heroku-redis`) with their prices, all pages."""
        path = f"/addon-services/{_seg(service)}/plans"
        return [_plan_price(item, "GET", path) for item in self._list(path)]

    def fetch_rate_limit(self) -> int:
        """The account's remaining calls. Free: Heroku does not count this call."""
        path = "/account/rate-limits"
        data = self._json("GET", path, free=True)
        remaining = data.get("remaining") if isinstance(data, dict) else None
        if not isinstance(remaining, int) or isinstance(remaining, bool):
            raise HerokuBadResponse("GET", path, "no integer 'remaining' in the answer", status=200)
        self._note_remaining(remaining)
        return remaining

    # --- Transport -----------------------------------------------------------------

    def _list(self, path):
        """All pages of a list: `Range: id ..; max=1000`, then each `Next-Range` while 206."""
        items, range_header, seen = [], f"id ..; max={PAGE_SIZE}", set()
        for _ in range(MAX_PAGES):
            response = self._send("GET", path, headers={"Range": range_header})
            page = _decode(response, "GET", path)
            if not isinstance(page, list):
                raise HerokuBadResponse("GET", path, "expected a JSON list", status=response.status_code)
            items.extend(page)
            next_range = response.headers.get("Next-Range")
            if response.status_code != 206 or not next_range:
                return items
            if next_range in seen:
                raise HerokuBadResponse("GET", path, "Next-Range repeats itself", status=206)
            seen.add(next_range)
            range_header = next_range
        raise HerokuBadResponse("GET", path, f"more than {MAX_PAGES} pages", status=206)

    def _json(self, method, path, *, body=None, priority=False, retry=True, free=False):
        return _decode(self._send(method, path, body=body, priority=priority, retry=retry, free=free), method, path)

    def _send(self, method, path, *, body=None, headers=None, priority=False, retry=True, free=False):
        if not (priority or free):
            self._check_budget(method, path)
        attempts = 1 + (self.max_retries if retry and method == "GET" else 0)
        for attempt in range(attempts):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            error = None
            started = time.monotonic()
            with self._lock:
                self.calls += 1
            try:
                response = self._session.request(
                    method, self.base_url + path, json=body, headers=headers,
                    timeout=self.timeout, allow_redirects=False,
                )
            except requests.Timeout as exc:
                error = HerokuTimeout(method, path, f"no answer in time ({type(exc).__name__}, timeout {self.timeout})",
                                      outcome_unknown=method != "GET")
            except requests.RequestException as exc:
                error = HerokuConnectionError(method, path, f"connection failed ({type(exc).__name__})",
                                              outcome_unknown=method != "GET")
            if error is not None:
                logger.warning("Heroku %s %s attempt %d/%d: %s", method, path, attempt + 1, attempts, error.detail)
                continue
            self._note_remaining(response.headers.get("RateLimit-Remaining"))
            logger.debug(
                "Heroku %s %s -> %s in %.0f ms (remaining %s)",
                method, path, response.status_code, (time.monotonic() - started) * 1000, self.rate_limit_remaining,
            )
            if response.status_code < 300:
                return response
            error = self._error(method, path, response)
            if not isinstance(error, HerokuServerError):
                raise error
            logger.warning("Heroku %s %s attempt %d/%d: %s", method, path, attempt + 1, attempts, error.detail)
        raise error

    def _check_budget(self, method, path):
        now = self.clock()
        if self._backoff_until is not None and now < self._backoff_until:
            wait = self._backoff_until - now
            raise HerokuRateLimited(method, path, f"not sent: backing off after a 429 for {wait:.0f} s more",
                                    retry_after=wait)
        estimate = self._estimated_remaining(now)
        if estimate is not None and estimate <= self.reserve:
            wait = (self.reserve + 1 - estimate) / REFILL_PER_SECOND
            raise HerokuBudgetReserved(
                method, path,
                f"not sent: about {estimate:.0f} calls left, {self.reserve} kept for scaling actions",
                retry_after=wait,
            )

    def _estimated_remaining(self, now):
        with self._lock:
            remaining, seen_at = self.rate_limit_remaining, self._remaining_seen_at
        if remaining is None:
            return None
        return min(POOL_SIZE, remaining + (now - seen_at) * REFILL_PER_SECOND)

    def _note_remaining(self, value):
        try:
            remaining = int(value)
        except (TypeError, ValueError):
            return
        with self._lock:
            self.rate_limit_remaining, self._remaining_seen_at = remaining, self.clock()

    def _error(self, method, path, response):
        status = response.status_code
        error_id, message = _error_body(response)
        message = _scrub(message, self._api_key)
        kwargs = {"status": status, "error_id": error_id}
        if status == 429:
            retry_after = _seconds(response.headers.get("Retry-After"), DEFAULT_429_BACKOFF)
            self._backoff_until = self.clock() + retry_after
            return HerokuRateLimited(method, path, message, retry_after=retry_after, **kwargs)
        if status >= 500:
            return HerokuServerError(method, path, message, outcome_unknown=method != "GET", **kwargs)
        if 400 <= status < 500:
            return _BY_STATUS.get(status, HerokuRefused)(method, path, message, **kwargs)
        return HerokuBadResponse(method, path, f"unexpected status {status}", **kwargs)


def client_from_settings(**overrides) -> HerokuClient:
    """A client configured from Django settings (HEROKU_API_KEY, HEROKU_API_URL,
    HEROKU_API_RESERVE)."""
    from django.conf import settings

    options = {
        "api_key": settings.HEROKU_API_KEY,
        "base_url": getattr(settings, "HEROKU_API_URL", DEFAULT_BASE_URL),
        "reserve": getattr(settings, "HEROKU_API_RESERVE", 500),
    }
    options.update(overrides)
    return HerokuClient(**options)


# --- Helpers ---------------------------------------------------------------------------


def _valid_timeout(timeout):
    values = timeout if isinstance(timeout, tuple) and len(timeout) == 2 else (timeout,)
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values)


def _seg(value):
    """One path segment: app names, add-on ids and names are quoted, never interpreted."""
    return quote(str(value), safe="")


def _scrub(text, secret):
    """One line, no URL passwords, no API key, bounded length."""
    text = _URL_PASSWORD.sub(r"\1***@", " ".join(str(text).split()))
    if secret:
        text = text.replace(secret, "***")
    return text[:300]


def _seconds(value, default):
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default


def _decode(response, method, path):
    try:
        return response.json()
    except ValueError:
        content_type = (response.headers.get("Content-Type") or "no content type").split(";")[0]
        raise HerokuBadResponse(method, path, f"body is not JSON ({content_type})",
                                status=response.status_code) from None


def _error_body(response):
    try:
        data = response.json()
    except ValueError:
        return None, "(no JSON error body)"
    if not isinstance(data, dict):
        return None, "(unexpected error body)"
    error_id = data.get("id") if isinstance(data.get("id"), str) else None
    return error_id, str(data.get("message") or "(no message)")


def _field(data, dotted, method, path):
    value = data
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str) or not value:
        raise HerokuBadResponse(method, path, f"answer lacks '{dotted}'", status=200)
    return value


def _addon(data, method, path) -> AddOn:
    if not isinstance(data, dict):
        raise HerokuBadResponse(method, path, "an add-on is not a JSON object", status=200)
    config_vars = data.get("config_vars")
    if not isinstance(config_vars, list) or not all(isinstance(name, str) for name in config_vars):
        raise HerokuBadResponse(method, path, "add-on lacks a 'config_vars' list of names", status=200)
    return AddOn(
        id=_field(data, "id", method, path),
        name=_field(data, "name", method, path),
        app_name=_field(data, "app.name", method, path),
        service_name=_field(data, "addon_service.name", method, path),
        plan_name=_field(data, "plan.name", method, path),
        state=_field(data, "state", method, path),
        config_vars=tuple(config_vars),
    )


def _plan_price(data, method, path) -> PlanPrice:
    """The price as Heroku gave it; whether it is a usable monthly price is the caller's call."""
    if not isinstance(data, dict):
        raise HerokuBadResponse(method, path, "a plan is not a JSON object", status=200)
    price = data.get("price") if isinstance(data.get("price"), dict) else {}
    cents, unit = price.get("cents"), price.get("unit")
    return PlanPrice(
        name=_field(data, "name", method, path),
        cents=cents if isinstance(cents, int) and not isinstance(cents, bool) else None,
        unit=unit if isinstance(unit, str) else None,
        contract=price.get("contract") is True,
        has_price=bool(price),
    )
