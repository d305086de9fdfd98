"""A fake Heroku Platform API at the HTTP level, checked against Heroku's own schema.

Every request is matched to a `link` of the Heroku contract `heroku_contract.json` beside this
file (the links the product calls, cut by `scripts/heroku_contract.py` from Heroku's official
Platform API schema, which it names with its sha256) and its JSON body validated against the
link's `schema`; every 2xx answer is validated against the link's `targetSchema`. Anything that does not fit (unknown route, invalid body, missing
`Accept` version, an answer of the fake's own that breaks the schema) is recorded in
`violations` and answered the way Heroku would (404 `not_found`, 422 `invalid_params`...),
so a test that drives the client wrongly fails in `assert_no_violations()` even where the
code under test swallows the HTTP error.

Two adapters share `handle()`: `install(responses_mock)` for in-process tests (no socket),
and `serve()`, a real HTTP server on 127.0.0.1 for subprocesses and benchmarks.

    fake = FakeHeroku()
    app = fake.add_app("shop")
    addon = fake.add_redis_addon("shop", plan="heroku-redis:premium-0")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        ...
    fake.assert_no_violations()

Several accounts answer at one address, each with its own key, apps, add-ons and rate-limit
pool: `other = fake.add_account("acme", api_key=...)` returns the other account (a FakeHeroku
with the same helpers); a request is answered by the account whose key it carries, 401
`unauthorized` for an unknown or revoked key (`other.revoke_key()`), as Heroku answers. Each
account records the calls made with its key (refused ones too); the first one also those
with a key no account has.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import functools
import itertools
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT4

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTRACT_PATH = Path(__file__).with_name("heroku_contract.json")
ACCEPT = "application/vnd.heroku+json; version=3"
POOL_SIZE = 4500
REFILL_PER_SECOND = 4500 / 3600
DEFAULT_PAGE, MAX_PAGE = 200, 1000
FREE_PATHS = {"/account/rate-limits"}  # not counted against the rate limit

Call = collections.namedtuple("Call", "method path body")


class ManualClock:
    """A clock that moves only when told: pass `clock` to the fake and the client."""

    def __init__(self, start=1000.0):
        self.now = float(start)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class SimulatedTimeout(Exception):
    """Raised by `handle()`: the adapter makes the client see a read timeout."""

    def __init__(self, delay):
        super().__init__("simulated timeout")
        self.delay = delay


class SimulatedDisconnect(Exception):
    """Raised by `handle()`: the adapter drops the connection without an answer."""


# --- Schema ----------------------------------------------------------------------------

_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value):
    return not isinstance(value, str) or bool(uuid.UUID(value))


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value):
    if isinstance(value, str):
        if "T" not in value:
            raise ValueError(value)
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@_FORMATS.checks("uri")
def _is_uri(value):
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


_PARAM = re.compile(r"\{\(([^)]*)\)\}")


class _Route:
    def __init__(self, method, href, link, pointer):
        self.method, self.href, self.link, self.pointer = method, href, link, pointer
        self.params = [unquote(p) for p in _PARAM.findall(href)]
        literal = [re.escape(part) for part in _PARAM.split(href)[::2]]
        self.regex = re.compile("([^/]+)".join(literal))

    def __repr__(self):
        return f"{self.method} {_PARAM.sub('{…}', self.href)}"


class HerokuSchema:
    """The routes of the hyper-schema and validators for their request/response schemas: the
    repository's contract (its "schema" part) or Heroku's whole schema, which has the same pointers."""

    def __init__(self, path):
        self.path = Path(path)
        document = json.loads(self.path.read_text(encoding="utf-8"))
        self.root = document["schema"] if "contract" in document else document
        resource = DRAFT4.create_resource(self.root)
        self.base_uri = resource.id() or ""
        self.registry = Registry().with_resource(self.base_uri, resource)
        self.routes = []
        for name, definition in self.root.get("definitions", {}).items():
            for index, link in enumerate(definition.get("links", [])):
                self._add(link, f"/definitions/{_escape(name)}/links/{index}")
        for index, link in enumerate(self.root.get("links", [])):
            self._add(link, f"/links/{index}")
        self._checkers = {}

    def _add(self, link, pointer):
        href, method = link.get("href", ""), link.get("method")
        if method and href.startswith("/"):
            self.routes.append(_Route(method.upper(), href, link, pointer))

    def route(self, method, path):
        """(route, decoded params) of the most literal link matching, or (None, None)."""
        best = None
        for route in self.routes:
            if route.method == method:
                match = route.regex.fullmatch(path)
                if match and (best is None or len(route.params) < len(best[0].params)):
                    best = (route, [unquote(g) for g in match.groups()])
        return best or (None, None)

    def errors(self, route, key, instance):
        """Messages of `instance` against the link's `schema` or `targetSchema`."""
        if key not in route.link:
            return []
        cache_key = (route.pointer, key)
        if cache_key not in self._checkers:
            self._checkers[cache_key] = self._compile(self._inline(route.link[key], ()))
        return self._checkers[cache_key](instance, ())

    def _compile(self, schema):
        """A check(instance, path) -> messages. `$ref`s are inlined beforehand (a recursive one
        stays, made absolute for the registry). Plain lists are checked item by item and plain
        object schemas property by property, remembering values already found valid, so that
        listing thousands of add-ons stays fast; anything else goes to jsonschema whole."""
        if _is_plain(schema, "array") and isinstance(schema.get("items"), dict):
            check_item = self._compile(schema["items"])

            def check_list(instance, path):
                if not isinstance(instance, list):
                    return [f"{_where(path)}: {instance!r} is not of type 'array'"]
                return [m for index, item in enumerate(instance) for m in check_item(item, path + (index,))]

            return check_list
        if _is_plain(schema, "object") and isinstance(schema.get("properties"), dict) \
                and schema.get("additionalProperties", True) in (True, False) and "patternProperties" not in schema:
            required, closed = schema.get("required", []), schema.get("additionalProperties") is False
            properties = {name: self._memoised(sub) for name, sub in schema["properties"].items()}

            def check_object(instance, path):
                if not isinstance(instance, dict):
                    return [f"{_where(path)}: {instance!r} is not of type 'object'"]
                problems = [f"{_where(path)}: {name!r} is a required property" for name in required
                            if name not in instance]
                if closed and set(instance) - set(properties):
                    problems.append(f"{_where(path)}: additional properties are not allowed: "
                                    f"{sorted(set(instance) - set(properties))}")
                for name, value in instance.items():
                    if name in properties:
                        problems.extend(properties[name](value, path + (name,)))
                return problems

            return check_object
        validator = Draft4Validator(schema, registry=self.registry, format_checker=_FORMATS)
        return lambda instance, path: [
            f"{_where(path + tuple(error.absolute_path))}: {error.message}" for error in validator.iter_errors(instance)
        ]

    def _memoised(self, schema):
        check, valid = self._compile(schema), set()

        def check_memoised(instance, path):
            key = json.dumps(instance, sort_keys=True)
            if key in valid:
                return []
            problems = check(instance, path)
            if not problems:
                valid.add(key)
            return problems

        return check_memoised

    def _inline(self, node, stack):
        if isinstance(node, list):
            return [self._inline(value, stack) for value in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in stack:
                return {"$ref": self.base_uri + ref}
            target = self.root
            for token in ref[2:].split("/"):
                token = token.replace("~1", "/").replace("~0", "~")
                target = target[int(token)] if isinstance(target, list) else target[token]
            return self._inline(target, stack + (ref,))
        return {name: self._inline(value, stack) for name, value in node.items()}


# Keywords that only describe; a schema with nothing else but type/properties/required/
# additionalProperties (or type/items) can be checked piecewise.
_ANNOTATIONS = {"description", "title", "$schema", "stability", "strictProperties", "definitions", "links",
                "example", "readOnly", "id", "identity"}


def _is_plain(schema, kind):
    allowed = {"type", "items"} if kind == "array" else {"type", "properties", "required", "additionalProperties"}
    return isinstance(schema, dict) and schema.get("type") in ([kind], kind) and set(schema) <= allowed | _ANNOTATIONS


def _where(path):
    return "/".join(map(str, path)) or "(root)"


def _escape(token):
    return token.replace("~", "~0").replace("/", "~1")


@functools.lru_cache(maxsize=4)
def _schema(path):
    return HerokuSchema(path)


# --- The fake --------------------------------------------------------------------------


class FakeHeroku:
    """State of one Heroku account, answering HTTP requests as the Platform API would (and
    the first of several accounts at one address, see `add_account`)."""

    def __init__(self, *, api_key="test-api-key-0123456789", base_url="https://heroku.test",
                 schema_path=None, clock=time.monotonic, email="owner@example.com"):
        self.api_key = api_key
        self.email = email
        self.account_id = str(uuid.uuid4())
        self.revoked = False
        self.accounts = {}  # the other accounts at this address, by name (add_account)
        self.base_url = base_url.rstrip("/")
        self.schema = _schema(str(schema_path or CONTRACT_PATH))
        self.clock = clock
        self.apps = {}  # name -> app dict
        self.addons = {}  # id -> add-on state (see add_redis_addon)
        self.config = {}  # app name -> {config var: value}
        self.invalid_plans = set()
        # The plans and prices GET /addon-services/{service}/plans lists: plan name ->
        # {"cents": int, "unit": "month", "contract": False}, or None for a plan listed without
        # a price (set_plan_price). A service is known when a plan of it is in the table or it
        # is one of KNOWN_SERVICES.
        self.plan_prices = {}
        self.plan_change_seconds = 0
        self.timeout_seconds = 30  # how long serve() holds a "timeout" before dropping it
        self.served_url = None  # set by serve()
        self.violations = []
        self.calls = []  # Call(method, path, body) for every request received
        self.request_headers = []  # the headers of each call, same order
        self.tokens, self._tokens_at = float(POOL_SIZE), clock()
        self._faults = []
        self._serial = itertools.count(1)
        self._lock = threading.RLock()

    # --- Accounts ------------------------------------------------------------------

    def add_account(self, name, *, api_key, email=None):
        """Another Heroku account answered at the same address: its own key, apps, add-ons,
        config vars, faults and rate-limit pool. Returns it (a FakeHeroku: the same helpers)."""
        account = FakeHeroku(api_key=api_key, base_url=self.base_url, clock=self.clock,
                             email=email or f"{name}@example.com")
        account.schema, account.violations, account._lock = self.schema, self.violations, self._lock
        account.plan_prices = self.plan_prices  # add-on plan prices are Heroku's, the same for every account
        self.accounts[name] = account
        return account

    def revoke_key(self):
        """The account's key was revoked: every request with it answers 401 unauthorized."""
        self.revoked = True

    def _account_for(self, authorization, *, revoked=False):
        """The account whose key the request carries (`revoked=True`: even a revoked one)."""
        for account in (self, *self.accounts.values()):
            if authorization == f"Bearer {account.api_key}" and (revoked or not account.revoked):
                return account
        return None

    # --- State helpers -------------------------------------------------------------

    def add_app(self, name, *, id=None):
        app = {"id": id or str(uuid.uuid4()), "name": name, "created_at": _now()}
        self.apps[name] = app
        self.config.setdefault(name, {})
        return app

    def add_redis_addon(self, app, *, service="heroku-redis", plan="heroku-redis:premium-0",
                        config_var="REDIS_URL", url=None, name=None, state="provisioned"):
        """A Redis add-on on `app` (created if unknown) that sets `config_var` to `url`."""
        app_name = app["name"] if isinstance(app, dict) else app
        if app_name not in self.apps:
            self.add_app(app_name)
        n = next(self._serial)
        addon_id = str(uuid.uuid4())
        prefix = "redis" if service == "heroku-redis" else service
        addon = {
            "id": addon_id,
            "name": name or f"{prefix}-fake-{n:05d}",
            "app": app_name,
            "service": service,
            "plan": plan,
            "state": state,
            "ready_at": None,
            "config_vars": [config_var],
            "provider_id": f"resource{n}@fake",
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.addons[addon_id] = addon
        self.config[app_name][config_var] = url or f"redis://default:secret{n:05d}pw@redis-{n}.fake.test:{6379 + n}"
        return addon

    def set_config_var(self, app, name, value):
        self.config.setdefault(app, {})[name] = value

    def rotate_url(self, addon_id, new_url):
        """Heroku rotated the credentials: every config var of the add-on gets `new_url`."""
        addon = self.addons[addon_id]
        for var in addon["config_vars"]:
            self.config[addon["app"]][var] = new_url

    def set_plan_by_hand(self, addon_id, plan):
        """A person changed the plan outside the autoscaler (dashboard, CLI)."""
        addon = self.addons[addon_id]
        addon.update(plan=plan, state="provisioned", ready_at=None, updated_at=_now())

    def mark_plan_invalid(self, plan):
        """PATCHing an add-on to `plan` answers 422 invalid_params."""
        self.invalid_plans.add(plan)

    def set_plan_price(self, plan, cents, *, unit="month", contract=False):
        """Heroku lists `plan` (`service:plan`) at `cents` per `unit`; `cents=None`: without a price."""
        self.plan_prices[plan] = None if cents is None else {"cents": cents, "unit": unit, "contract": contract}

    def drain_rate_limit(self, to=0):
        with self._lock:
            self._refill()
            self.tokens = float(to)

    def fail_next(self, method, path_regex, *, status=500, times=1, error_id=None, message=None,
                  headers=None, applied=False, delay=None):
        """The next `times` requests matching fail. `status`: an HTTP status (answered with a
        Heroku error body), "timeout" (the client sees a read timeout), "connection" (the
        connection drops) or "malformed" (200 with a body that is not JSON). `applied=True`:
        the request takes effect before the timeout/drop (a PATCH that went through)."""
        self._faults.append({
            "method": method.upper(), "regex": re.compile(path_regex), "status": status, "left": times,
            "error_id": error_id, "message": message, "headers": dict(headers or {}),
            "applied": applied, "delay": delay,
        })

    # --- Inspection ----------------------------------------------------------------

    def count(self, method=None, path_regex=None):
        return sum(
            1 for call in self.calls
            if (method is None or call.method == method.upper())
            and (path_regex is None or re.search(path_regex, call.path))
        )

    def assert_no_violations(self):
        if self.violations:
            raise AssertionError("fake Heroku saw requests the real one would refuse:\n  "
                                 + "\n  ".join(self.violations))

    def addon_state(self, addon_id):
        """The add-on's state now (provisioning turns provisioned after plan_change_seconds)."""
        addon = self.addons[addon_id]
        if addon["state"] == "provisioning" and addon["ready_at"] is not None and self.clock() >= addon["ready_at"]:
            addon.update(state="provisioned", ready_at=None)
        return addon["state"]

    # --- HTTP ----------------------------------------------------------------------

    def handle(self, method, path_with_query, headers, body_bytes):
        """One HTTP request -> (status, headers, body bytes). May raise SimulatedTimeout or
        SimulatedDisconnect, which the adapters turn into what a client would see."""
        with self._lock:
            method = method.upper()
            path = urlsplit(path_with_query).path or "/"
            headers = {k.lower(): v for k, v in headers.items()}
            body, body_error = _parse_body(body_bytes)
            account = self._account_for(headers.get("authorization"))
            keeper = account or self._account_for(headers.get("authorization"), revoked=True) or self
            keeper.calls.append(Call(method, path, body))
            keeper.request_headers.append(headers)
            where = f"{method} {path}"

            route, params = self.schema.route(method, path)
            if route is None:
                return self._violation(404, "not_found", f"{where}: no such route in the Heroku schema",
                                       "The requested API endpoint was not found.")
            if headers.get("accept") != ACCEPT:
                return self._violation(400, "bad_request", f"{where}: Accept is {headers.get('accept')!r}, "
                                       f"not {ACCEPT!r}", "Please specify a version in the Accept header.")
            if account is None:  # no account's pool to report
                status, extra, payload = self._error(401, "unauthorized", "Invalid credentials provided.")
                extra.pop("RateLimit-Remaining", None)
                return status, extra, payload
            return account._handle_authorised(method, path, where, route, params, headers, body, body_error)

    def _handle_authorised(self, method, path, where, route, params, headers, body, body_error):
        """The rest of `handle()`, by the account whose key the request carries."""
        if path not in FREE_PATHS:
            self._refill()
            if self.tokens < 1:
                return self._error(429, "rate_limit", "Your account reached the API rate limit\n"
                                   "Please wait a few minutes before making new requests")
            self.tokens -= 1
        if body_error:
            return self._violation(400, "bad_request", f"{where}: {body_error}", "Invalid JSON in the body.")
        if body is not None and "schema" not in route.link:
            return self._violation(400, "bad_request", f"{where}: this link takes no body, got {body!r}",
                                   "Unexpected body.")
        if "schema" in route.link:
            if body is not None and "json" not in headers.get("content-type", ""):
                self.violations.append(f"{where}: body sent as {headers.get('content-type')!r}, not JSON")
            problems = self.schema.errors(route, "schema", body if body is not None else {})
            if problems:
                return self._violation(422, "invalid_params", f"{where}: body {body!r} invalid: "
                                       + "; ".join(problems), "Invalid params: " + "; ".join(problems))

        fault = self._take_fault(method, path)
        if fault is not None:
            return self._fault(fault, route, params, headers, body)
        return self._dispatch(route, params, headers, body)

    def _dispatch(self, route, params, headers, body):
        handler = _HANDLERS.get((route.method, route.href))
        if handler is None:
            return self._violation(501, "not_implemented", f"{route!r} is in the schema but not in the fake",
                                   "The fake Heroku does not implement this endpoint.")
        status, data, extra = getattr(self, handler)(params, headers, body)
        if 200 <= status < 300:
            for problem in self.schema.errors(route, "targetSchema", data):
                if not _KNOWN_LIVE_DIFFERENCE.search(problem):
                    self.violations.append(f"fake answer to {route!r} breaks targetSchema: {problem}")
        return self._response(status, data, extra)

    def _fault(self, fault, route, params, headers, body):
        kind = fault["status"]
        if kind in ("timeout", "connection"):
            if fault["applied"]:
                self._dispatch(route, params, headers, body)
            if kind == "timeout":
                raise SimulatedTimeout(fault["delay"] or self.timeout_seconds)
            raise SimulatedDisconnect()
        if kind == "malformed":
            return 200, self._headers({"Content-Type": "application/json"}), b'{"id": "01234567-89ab-<html>'
        error_id = fault["error_id"] or _DEFAULT_ERROR_IDS.get(kind, "error")
        status, extra, payload = self._error(kind, error_id, fault["message"] or f"Simulated {kind}.")
        extra.update(fault["headers"])
        return status, extra, payload

    def _take_fault(self, method, path):
        for fault in self._faults:
            if fault["method"] in (method, "*") and fault["regex"].search(path):
                fault["left"] -= 1
                if fault["left"] <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # --- Endpoints -----------------------------------------------------------------

    def _get_app(self, params, headers, body):
        app = self._find_app(params[0])
        if app is None:
            return _not_found("app")
        return 200, self._app_json(app), {}

    def _list_addons(self, params, headers, body):
        return self._page(list(self.addons.values()), headers, self._addon_json)

    def _list_app_addons(self, params, headers, body):
        app = self._find_app(params[0])
        if app is None:
            return _not_found("app")
        owned = [a for a in self.addons.values() if a["app"] == app["name"]]
        return self._page(owned, headers, self._addon_json)

    def _get_addon(self, params, headers, body):
        addon = self._find_addon(params[0])
        return (200, self._addon_json(addon), {}) if addon else _not_found("add-on")

    def _get_app_addon(self, params, headers, body):
        app = self._find_app(params[0])
        if app is None:
            return _not_found("app")
        addon = self._find_addon(params[1], app["name"])
        return (200, self._addon_json(addon), {}) if addon else _not_found("add-on")

    def _patch_app_addon(self, params, headers, body):
        app = self._find_app(params[0])
        if app is None:
            return _not_found("app")
        addon = self._find_addon(params[1], app["name"])
        if addon is None:
            return _not_found("add-on")
        plan = body["plan"]
        if plan in self.invalid_plans or not plan.startswith(addon["service"] + ":"):
            return 422, {"id": "invalid_params", "message": f"Couldn't find either the add-on service or "
                         f"the add-on plan of \"{plan}\"."}, {}
        if body.get("name"):
            addon["name"] = body["name"]
        if plan != addon["plan"]:
            waiting = self.plan_change_seconds > 0
            addon.update(plan=plan, updated_at=_now(), state="provisioning" if waiting else "provisioned",
                         ready_at=self.clock() + self.plan_change_seconds if waiting else None)
        return 200, self._addon_json(addon), {}

    def _get_config_vars(self, params, headers, body):
        app = self._find_app(params[0])
        if app is None:
            return _not_found("app")
        return 200, dict(self.config.get(app["name"], {})), {}

    def _list_service_plans(self, params, headers, body):
        service = params[0]
        plans = [{"id": _uuid_for("plan:" + name), "name": name, "service": service, "price": price}
                 for name, price in self.plan_prices.items() if name.startswith(service + ":")]
        if not plans and service not in KNOWN_SERVICES:
            return _not_found("add-on service")
        return self._page(plans, headers, self._plan_json)

    def _get_rate_limits(self, params, headers, body):
        return 200, {"remaining": self._remaining()}, {}

    def _get_account(self, params, headers, body):
        return 200, {
            "allow_tracking": False, "beta": False, "created_at": "2020-01-01T00:00:00Z", "email": self.email,
            "federated": False, "id": self.account_id, "identity_provider": None, "last_login": None,
            "name": None, "sms_number": None, "suspended_at": None, "delinquent_at": None,
            "two_factor_authentication": True, "updated_at": "2020-01-01T00:00:00Z", "verified": True,
            "country_of_residence": None, "default_organization": None, "default_team": None,
        }, {}

    # --- Rendering -----------------------------------------------------------------

    def _find_app(self, identity):
        return self.apps.get(identity) or next((a for a in self.apps.values() if a["id"] == identity), None)

    def _find_addon(self, identity, app_name=None):
        addon = self.addons.get(identity) or next(
            (a for a in self.addons.values() if a["name"] == identity), None)
        return addon if addon and (app_name is None or addon["app"] == app_name) else None

    def _app_json(self, app):
        """An app object as the `app` definition describes it (it has no required list)."""
        return {
            "acm": False, "archived_at": None, "buildpack_provided_description": None,
            "build_stack": {"id": _uuid_for("stack:heroku-24"), "name": "heroku-24"},
            "created_at": app["created_at"], "git_url": f"https://git.heroku.com/{app['name']}.git",
            "id": app["id"], "internal_routing": None, "maintenance": False, "name": app["name"],
            "owner": {"email": "owner@example.com", "id": _uuid_for("account:owner")},
            "organization": None, "team": None,
            "region": {"id": _uuid_for("region:us"), "name": "us"},
            "released_at": app["created_at"], "repo_size": None, "slug_size": None, "space": None,
            "stack": {"id": _uuid_for("stack:heroku-24"), "name": "heroku-24"},
            "updated_at": app["created_at"], "web_url": f"https://{app['name']}.herokuapp.com/",
        }

    def _addon_json(self, addon):
        """Exactly the fields of the `add-on` definition (it has additionalProperties: false)."""
        app = self.apps[addon["app"]]
        return {
            "actions": [],
            "addon_service": {"id": _uuid_for("service:" + addon["service"]), "name": addon["service"]},
            "app": {"id": app["id"], "name": app["name"]},
            "billed_price": {"cents": 0, "contract": False, "unit": "month"},
            "billing_entity": {"id": app["id"], "name": app["name"], "type": "app"},
            "config_vars": list(addon["config_vars"]),
            "created_at": addon["created_at"],
            "id": addon["id"],
            "name": addon["name"],
            "plan": {"id": _uuid_for("plan:" + addon["plan"]), "name": addon["plan"]},
            "provider_id": addon["provider_id"],
            "state": self.addon_state(addon["id"]),
            "updated_at": addon["updated_at"],
            "web_url": f"https://addons-sso.heroku.com/apps/{app['id']}/addons/{addon['id']}",
        }

    def _plan_json(self, plan):
        """A plan as the `plan` definition describes it; `price` left out when the table says None."""
        data = {
            "addon_service": {"id": _uuid_for("service:" + plan["service"]), "name": plan["service"]},
            "compliance": None, "created_at": "2020-01-01T00:00:00Z", "default": False,
            "description": plan["name"], "human_name": plan["name"].split(":", 1)[1], "id": plan["id"],
            "installable_inside_private_network": False, "installable_outside_private_network": True,
            "name": plan["name"], "space_default": False, "state": "public",
            "updated_at": "2020-01-01T00:00:00Z", "visible": True,
        }
        if plan["price"] is not None:
            data["price"] = dict(plan["price"])
        return data

    def _page(self, items, headers, render):
        """Heroku's Range pagination: `Range: <field> [start]..[end][; max=N][, order=desc]`;
        a truncated page answers 206 with `Next-Range: ]<last>..; max=N`."""
        spec = headers.get("range")
        field, exclusive, start, end, limit, descending = "id", False, "", "", DEFAULT_PAGE, False
        if spec:
            match = re.fullmatch(r"\s*(\w+)\s+(\]?)([^.;]*)\.\.([^;]*?)\s*(?:;\s*(.*))?", spec)
            options = dict(re.findall(r"(\w+)=([^,;\s]+)", match.group(5) or "")) if match else {}
            max_value = options.get("max", str(DEFAULT_PAGE))
            if (not match or match.group(1) not in ("id", "name") or not max_value.isdigit()
                    or not 1 <= int(max_value) <= MAX_PAGE or options.get("order", "asc") not in ("asc", "desc")):
                self.violations.append(f"bad Range header {spec!r}")
                return 416, {"id": "requested_range_not_satisfiable",
                             "message": f"Invalid Range header {spec!r}."}, {}
            field, exclusive, start, end = match.group(1), bool(match.group(2)), match.group(3).strip(), match.group(4)
            limit, descending = int(max_value), options.get("order") == "desc"
        items = sorted(items, key=lambda item: item[field], reverse=descending)
        if start:
            after = (lambda v: v < start) if descending else (lambda v: v > start)
            items = [i for i in items if after(i[field]) or (not exclusive and i[field] == start)]
        if end.strip():
            stop = end.strip()
            items = [i for i in items if (i[field] >= stop if descending else i[field] <= stop)]
        page, more = items[:limit], len(items) > limit
        rendered = [render(item) for item in page]
        extra = {"Accept-Ranges": "id, name"}
        if page:
            extra["Content-Range"] = f"{field} {page[0][field]}..{page[-1][field]}"
        if more:
            order = ", order=desc" if descending else ""
            extra["Next-Range"] = f"{field} ]{page[-1][field]}..; max={limit}{order}"
            return 206, rendered, extra
        return 200, rendered, extra

    def _response(self, status, data, extra):
        return status, self._headers({"Content-Type": "application/json; charset=utf-8", **extra}), \
            json.dumps(data).encode()

    def _headers(self, extra):
        return {"RateLimit-Remaining": str(self._remaining()), "Request-Id": str(uuid.uuid4()), **extra}

    def _error(self, status, error_id, message):
        return self._response(status, {"id": error_id, "message": message}, {})

    def _violation(self, status, error_id, violation, message):
        self.violations.append(violation)
        return self._error(status, error_id, message)

    def _refill(self):
        now = self.clock()
        self.tokens = min(POOL_SIZE, self.tokens + (now - self._tokens_at) * REFILL_PER_SECOND)
        self._tokens_at = now

    def _remaining(self):
        self._refill()
        return int(self.tokens)

    # --- Adapters ------------------------------------------------------------------

    def install(self, responses_mock):
        """Answer every request to `base_url` made through `requests` inside `responses_mock`
        (build it with assert_all_requests_are_fired=False: one callback per method)."""
        pattern = re.compile(re.escape(self.base_url) + r"(?:[/?].*)?$")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            responses_mock.add_callback(method, pattern, callback=self._responses_callback)
        return self

    def _responses_callback(self, request):
        url = urlsplit(request.url)
        prefix = urlsplit(self.base_url).path
        path = url.path[len(prefix):] if prefix and url.path.startswith(prefix) else url.path
        body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
        try:
            return self.handle(request.method, path + (f"?{url.query}" if url.query else ""),
                               dict(request.headers), body)
        except SimulatedTimeout:
            raise requests.exceptions.ReadTimeout("simulated read timeout (fake Heroku)") from None
        except SimulatedDisconnect:
            raise requests.exceptions.ConnectionError("simulated connection drop (fake Heroku)") from None

    @contextlib.contextmanager
    def serve(self):
        """Run the fake as a real HTTP server on 127.0.0.1 (ephemeral port); yields its base URL."""
        fake, stopping = self, threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    status, headers, payload = fake.handle(self.command, self.path, dict(self.headers), body)
                except SimulatedTimeout as timeout:
                    stopping.wait(timeout.delay)  # longer than the client waits; then drop it
                    self.close_connection = True
                    return
                except SimulatedDisconnect:
                    self.close_connection = True
                    return
                except Exception as exc:  # a bug in the fake must not look like Heroku
                    fake.violations.append(f"fake crashed on {self.command} {self.path}: {exc!r}")
                    status, headers, payload = 500, {}, b'{"id":"fake_crashed","message":"see violations"}'
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="fake-heroku", daemon=True)
        thread.start()
        self.served_url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self.served_url
        finally:
            stopping.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@contextlib.contextmanager
def installed_fake(**options):
    """A `FakeHeroku(**options)` answering every `requests` call to its base URL through
    `responses` (no socket, and any other URL is refused) for the block, which then fails
    if the fake saw a request the real Heroku would refuse. For a pytest fixture:

        with installed_fake() as fake:
            yield fake
    """
    import responses

    fake = FakeHeroku(**options)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        fake.responses_mock = mock  # e.g. mock.add_passthru(URL) for a test's own local receivers
        yield fake
    fake.assert_no_violations()


_APP = "/apps/{(%23%2Fdefinitions%2Fapp%2Fdefinitions%2Fidentity)}"
_ADDON = "{(%23%2Fdefinitions%2Fadd-on%2Fdefinitions%2Fidentity)}"
_HANDLERS = {  # (method, schema href) -> FakeHeroku method; the contract's ENDPOINTS, the same links
    ("GET", _APP): "_get_app",
    ("GET", "/addons"): "_list_addons",
    ("GET", f"{_APP}/addons"): "_list_app_addons",
    ("GET", f"/addons/{_ADDON}"): "_get_addon",
    ("GET", f"{_APP}/addons/{_ADDON}"): "_get_app_addon",
    ("PATCH", f"{_APP}/addons/{_ADDON}"): "_patch_app_addon",
    ("GET", f"{_APP}/config-vars"): "_get_config_vars",
    ("GET", "/account/rate-limits"): "_get_rate_limits",
    ("GET", "/addon-services/{(%23%2Fdefinitions%2Fadd-on-service%2Fdefinitions%2Fidentity)}/plans"): "_list_service_plans",
    ("GET", "/account"): "_get_account",
}
KNOWN_SERVICES = ("heroku-redis", "rediscloud")  # answer an empty plan list rather than 404
# The live API answers add-on state "deprovisioning", which the schema's enum lacks
# (Heroku's schema README in ../shared/heroku): a fake add-on in that state is not the fake's mistake.
_KNOWN_LIVE_DIFFERENCE = re.compile(r"state: 'deprovisioning' is not one of")
_DEFAULT_ERROR_IDS = {400: "bad_request", 401: "unauthorized", 402: "delinquent", 403: "forbidden",
                      404: "not_found", 422: "invalid_params", 429: "rate_limit", 500: "internal_server_error",
                      502: "bad_gateway", 503: "service_unavailable"}


def _not_found(what):
    return 404, {"id": "not_found", "message": f"Couldn't find that {what}."}, {}


def _parse_body(body_bytes):
    if not body_bytes:
        return None, None
    try:
        return json.loads(body_bytes), None
    except ValueError:
        return body_bytes[:200].decode("utf-8", "replace"), "body is not JSON"


def _uuid_for(name):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "https://fake-heroku.test/" + name))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
