"""Registering a Redis instance for autoscaling (`add_redis_mon.py`), and removing one.

Each `clean_*` function takes what a person typed (or a flag's value) and returns the
cleaned value, or raises `RegistrationError` with a one-line reason that reads well after
the flag name or under the question ("must be a whole number from 1 to 100, not 150").
They touch the database only where the answer depends on it (plans, taken names).

`instance_register` saves a new or edited instance in one transaction and makes it due at
the next dispatcher tick, so that its first sample comes within one tick, without a restart
of the worker or of beat.
"""

import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from autoscaler.redaction import redact
from logs.models import MetricLog, ScalingAction
from notifications.models import Notification
from scaling.heroku import HerokuAuthError, HerokuError, HerokuForbidden, HerokuNotFound
from scaling.metrics import MetricsReadError, RedisMetricsReader
from scaling.models import MIB, NAME_PATTERN, RedisInstance, RedisPlan
from scaling.services.dispatch import instance_schedule_now
from scaling.services.heroku_access import account_client
from scaling.services.instances import ResolutionError, addon_resolve, known_services
from scaling.services.plans import plan_family, plan_ladder
from scaling.schedules import ScheduleError, parse_lead_minutes, parse_schedule

NAME_MAX = RedisInstance._meta.get_field("name").max_length
APP_MAX = RedisInstance._meta.get_field("app_name").max_length
CONFIG_VAR_MAX = RedisInstance._meta.get_field("config_var").max_length
DEFAULT_METRIC_RATE = RedisInstance.MetricRate.M1
DEFAULT_SCALING_RATE = RedisInstance.ScalingRate.M1
DEFAULT_THRESHOLD = 80
DEFAULT_SCHEDULE_LEAD = 10  # minutes
MAX_PLAN_MEMORY_FACTOR = 4
HIGHEST = "highest"  # as a max plan: the provider's highest plan

TRUE_WORDS = {"y", "yes", "true", "on", "1"}
FALSE_WORDS = {"n", "no", "false", "off", "0"}
FAMILY_NAMES = {"private": "Private Spaces", "shield": "Shield Spaces", "": "Common Runtime"}


class RegistrationError(Exception):
    """An answer or flag registration cannot take; `str()` is one line for a person.

    `retryable`: the answer may be fine and Heroku was only unavailable.
    `fatal`: no other answer can help (e.g. the API key is refused).
    """

    def __init__(self, message, *, retryable=False, fatal=False):
        super().__init__(" ".join(str(message).split()))
        self.retryable = retryable
        self.fatal = fatal


# --- One field each ----------------------------------------------------------------------


def _shown(value, limit=40):
    value = str(value)
    return repr(value if len(value) <= limit else value[:limit] + "...")


def clean_name(value):
    name = (value or "").strip()
    if not name:
        raise RegistrationError("a name is required")
    if len(name) > NAME_MAX:
        raise RegistrationError(f"must be at most {NAME_MAX} characters, not {len(name)}")
    if not re.fullmatch(NAME_PATTERN, name):
        raise RegistrationError(f"use letters, digits, '-' and '_' only, not {_shown(name)}")
    return name


def clean_app_name(value):
    app = (value or "").strip()
    if not app:
        raise RegistrationError("a Heroku app name is required")
    if len(app) > APP_MAX:
        raise RegistrationError(f"must be at most {APP_MAX} characters, not {len(app)}")
    if _is_uuid(app):
        return app.lower()
    if not re.fullmatch(r"[a-z][a-z0-9-]*", app):
        hint = f" (did you mean {app.lower()!r}?)" if re.fullmatch(r"[a-z][a-z0-9-]*", app.lower()) else ""
        raise RegistrationError(f"Heroku app names are lower-case letters, digits and '-', not {_shown(app)}{hint}")
    return app


def clean_config_var(value):
    var = (value or "").strip()
    if not var:
        raise RegistrationError("a config var name is required, e.g. REDIS_URL")
    if len(var) > CONFIG_VAR_MAX:
        raise RegistrationError(f"must be at most {CONFIG_VAR_MAX} characters, not {len(var)}")
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", var):
        hint = f" (did you mean {var.upper()!r}?)" if re.fullmatch(r"[A-Z][A-Z0-9_]*", var.upper()) else ""
        raise RegistrationError(
            f"config var names are upper-case letters, digits and '_' (e.g. REDIS_URL), not {_shown(var)}{hint}"
        )
    return var


def _clean_rate(value, choices):
    text = (value or "").strip().lower().replace(" ", "")
    text = re.sub(r"(mins?|minutes?)$", "m", re.sub(r"(secs?|seconds?)$", "s", text))
    for seconds, label in choices:
        if text in (label, str(seconds), f"{seconds}s"):
            return seconds
    labels = ", ".join(label for _, label in choices)
    raise RegistrationError(f"must be one of {labels}, not {_shown(value or '')}")


def clean_metric_rate(value):
    """'30s', '1m', '5m' (or the seconds) -> seconds."""
    return _clean_rate(value, RedisInstance.MetricRate.choices)


def clean_scaling_rate(value):
    """'1m', '5m', '10m' (or the seconds) -> seconds."""
    return _clean_rate(value, RedisInstance.ScalingRate.choices)


def rate_label(seconds, choices):
    return dict(choices).get(seconds, f"{seconds}s")


def clean_threshold(value):
    """A whole percentage 1..100 ('80' or '80%')."""
    text = str(value if value is not None else "").strip()
    number = text[:-1].strip() if text.endswith("%") else text
    if not re.fullmatch(r"[0-9]{1,6}", number) or not 1 <= int(number) <= 100:
        given = text if re.fullmatch(r"[-+]?[0-9.,]{1,12}%?", text) else (_shown(text) if text else "nothing")
        raise RegistrationError(f"must be a whole number from 1 to 100, not {given}")
    return int(number)


def clean_workload(value):
    """'queue' or 'cache'."""
    word = (value or "").strip().lower()
    if word in RedisInstance.Workload.values:
        return word
    raise RegistrationError(f"must be queue or cache, not {_shown(value or '')}")


def workload_suggestion(probe):
    """(workload or None, why): what the Redis' eviction policy says it is used as
    (DESIGN section 9: ``noeviction`` a queue, any evicting policy a cache)."""
    policy = probe.info.maxmemory_policy if probe is not None and probe.ok else None
    if not policy:
        return None, "its maxmemory-policy could not be read"
    if policy == "noeviction":
        return "queue", "maxmemory-policy is noeviction: a full Redis refuses writes rather than drop keys, as a queue needs"
    return "cache", f"maxmemory-policy is {policy}: a full Redis evicts keys, as a cache does"


def clean_bool(value):
    word = (value or "").strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RegistrationError(f"answer y or n, not {_shown(value or '')}")


def clean_plan(value, *, ladder):
    """A plan of `ladder` by its Heroku name or its short name ('premium-0')."""
    text = (value or "").strip().lower()
    if not text:
        raise RegistrationError("a plan name is required")
    service = ladder[0].service_name
    for plan in ladder:
        if text in (plan.plan_name, plan.short_name):
            return plan
    offered = ", ".join(plan.short_name for plan in ladder)
    full = text if ":" in text else f"{service}:{text}"
    other = RedisPlan.objects.filter(plan_name=full).first()
    if other is not None and other.service_name == service:
        family = FAMILY_NAMES.get(plan_family(other), plan_family(other))
        current = FAMILY_NAMES.get(plan_family(ladder[0]), "")
        raise RegistrationError(
            f"{other.plan_name} is a {family} plan; this add-on can move only between {current} plans: {offered}"
        )
    if ":" in text and text.split(":", 1)[0] != service:
        raise RegistrationError(f"{_shown(value.strip())} is not a {service} plan; this add-on is {service}: choose one of {offered}")
    raise RegistrationError(f"unknown plan {_shown(value.strip())}; choose one of {offered}")


def clean_max_plan(value, *, ladder):
    """Like clean_plan; 'highest' is the provider's highest plan."""
    if (value or "").strip().lower() == HIGHEST:
        return ladder[-1]
    return clean_plan(value, ladder=ladder)


def max_plan_default(*, ladder, current, min_plan):
    """The cheapest plan of `ladder` with at least MAX_PLAN_MEMORY_FACTOR times the memory of the
    current plan (or of the min plan, when that is higher); the highest when none has that much.
    A bound, so that a registration that names no max plan cannot run up the provider's top price."""
    base = max(current, min_plan, key=_rank)
    roomy = [plan for plan in ladder if plan.mem_limit >= MAX_PLAN_MEMORY_FACTOR * base.mem_limit]
    return min(roomy, key=lambda plan: (plan.cost, plan.mem_limit)) if roomy else ladder[-1]


def clean_plan_range(*, min_plan, max_plan):
    if _rank(min_plan) > _rank(max_plan):
        raise RegistrationError(
            f"the min plan {min_plan.short_name} is above the max plan {max_plan.short_name}"
        )
    return min_plan, max_plan


def _rank(plan):
    return plan.rank


# --- Schedules (DESIGN section 9): a minimum plan by time --------------------------------------


def clean_schedule(value, *, ladder):
    """A schedule spec, its plan one of `ladder` (short names allowed), stored with the plan's
    full name: 'mon-fri 08:00-18:00 Europe/Berlin heroku-redis:premium-2'."""
    try:
        schedule = parse_schedule(value or "")
    except ScheduleError as error:
        raise RegistrationError(str(error)) from None
    try:
        plan = clean_plan(schedule.plan, ladder=ladder)
    except RegistrationError as error:
        raise RegistrationError(f"plan of schedule {_shown(schedule.spec, 80)}: {error}") from None
    return schedule.with_plan(plan.plan_name).spec


def clean_schedule_lead(value):
    """Minutes before a scheduled window its plan should be up: 0 to a day."""
    try:
        return parse_lead_minutes(value)
    except ScheduleError as error:
        raise RegistrationError(str(error)) from None


def schedule_summary(*, schedules, schedule_lead_minutes, max_plan):
    """(text, notes) for the summary: the schedules, or 'none'."""
    if not schedules:
        return "none", []
    text = "; ".join(schedules) + f" (each plan up {schedule_lead_minutes} min before its window opens)"
    notes = []
    for spec in schedules:
        plan = RedisPlan.objects.filter(plan_name=parse_schedule(spec).plan).first()
        if plan is not None and _rank(plan) > _rank(max_plan):
            notes.append(f"schedule '{spec}' asks for a plan above the max plan: it raises only to "
                         f"{max_plan.short_name}")
    return text, notes


def _is_uuid(text):
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# --- Checks that ask the database or Heroku ------------------------------------------------


def instance_by_name(name):
    return RedisInstance.objects.with_plans().filter(name=name).first()


def plans_loaded():
    return RedisPlan.objects.exists()


@dataclass(frozen=True)
class AppAddons:
    """An app the key can see, and the config vars of its Redis add-ons of known providers."""

    app_name: str
    redis_config_vars: tuple
    addons: tuple = ()  # what Heroku listed, reused to resolve the config var without asking again
    account: object = None  # the HerokuAccount whose key sees it (None: default)

    @property
    def client(self):
        return account_client(account=self.account)


def _key_label(account):
    return "HEROKU_API_KEY" if account is None or account.is_default else f"account {account.name}"


def clean_account(value):
    """An account name given with --account or typed: a known account that has a key."""
    from scaling.services.accounts import AccountError, account_named

    try:
        account = account_named(name=(value or "").strip())
    except AccountError as error:
        raise RegistrationError(str(error)) from None
    if not account.usable:
        raise RegistrationError(f"account {account.name!r} has no API key ({_key_label(account)} is not set)")
    return account


def app_find(app_name, *, account=None):
    """The accounts whose key sees the app, each with its Redis config vars (AppAddons, 1 API
    call per account asked). With `account`, only that one; else every account with a key:
    an app found in several is returned once per account, for the caller to ask which (an
    app name is never guessed)."""
    from scaling.services.accounts import accounts_usable

    if account is not None:
        return [app_check(app_name, account=account)]
    accounts = accounts_usable()
    if len(accounts) <= 1:
        return [app_check(app_name, account=accounts[0] if accounts else None)]
    found, refused = [], []
    for candidate in accounts:
        try:
            found.append(app_check(app_name, account=candidate))
        except RegistrationError as error:
            if error.retryable:
                raise
            refused.append(candidate.name)
    if not found:
        raise RegistrationError(f"app {app_name!r} does not exist or none of the accounts' keys can see it "
                                f"(asked {', '.join(refused)})")
    return found


def app_check(app_name, *, client=None, account=None):
    """That the app exists and the key (of `account`, default HEROKU_API_KEY) sees it; its
    Redis config vars (1 API call)."""
    if client is None and (account is None or account.is_default) and not getattr(settings, "HEROKU_API_KEY", ""):
        raise RegistrationError("HEROKU_API_KEY is not set: set it to an API key that can see the app "
                                "(heroku authorizations:create), or add an account: "
                                "python manage.py heroku_accounts add NAME", fatal=True)
    try:
        client = client or account_client(account=account)
        addons = client.list_app_addons(app_name)
    except HerokuAuthError as error:
        raise RegistrationError(f"Heroku refused the API key ({_key_label(account)}): {_heroku_detail(error)}", fatal=True) from None
    except (HerokuNotFound, HerokuForbidden):
        raise RegistrationError(f"app {app_name!r} does not exist or the API key cannot see it") from None
    except HerokuError as error:
        raise RegistrationError(f"cannot list the add-ons of app {app_name!r}: {error}", retryable=error.retryable) from None
    services = known_services()
    redis_vars = tuple(sorted(var for addon in addons if addon.service_name in services for var in addon.config_vars))
    return AppAddons(app_name=app_name, redis_config_vars=redis_vars, addons=tuple(addons), account=account)


def addon_find(*, app_name, config_var, client=None, exclude=None, addons=None, account=None):
    """The add-on behind `config_var` (ResolvedAddon), checked to be a Redis add-on of a
    known provider that no other registered instance watches."""
    client = client or account_client(account=account)
    try:
        resolved = addon_resolve(app_name=app_name, config_var=config_var, client=client, addons=addons)
    except HerokuAuthError as error:
        raise RegistrationError(f"Heroku refused the API key ({_key_label(account)}): {_heroku_detail(error)}", fatal=True) from None
    except ResolutionError as error:
        raise RegistrationError(str(error), retryable=error.retryable) from None
    other = addon_registered_elsewhere(resolved=resolved, app_name=app_name, config_var=config_var, exclude=exclude)
    if other is not None:
        raise RegistrationError(
            f"add-on {resolved.addon.name} ({config_var} of app {app_name!r}) is already registered as "
            f"instance {other.name!r}; edit that one (--name {other.name}) instead"
        )
    return resolved


def _heroku_detail(error):
    return str(error).split(": ", 1)[-1] if isinstance(error, HerokuError) else str(error)


def addon_registered_elsewhere(*, resolved, app_name, config_var, exclude=None):
    """Another instance watching the same add-on (two would fight over its plan)."""
    others = RedisInstance.objects.all()
    if exclude is not None and exclude.pk:
        others = others.exclude(pk=exclude.pk)
    same = others.filter(addon_id=resolved.addon.id).first() if resolved.addon.id else None
    return same or others.filter(app_name=app_name, config_var=config_var).first()


# --- Reading the Redis once ----------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    info: object = None
    error: str = ""

    @property
    def ok(self):
        return self.info is not None


def redis_address(url):
    """host:port of a Redis URL (no user, no password)."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port or 6379}"
    except ValueError:
        return "(unparsable URL)"


def redis_probe(url):
    """One INFO read of the Redis at `url`: Probe(info) or Probe(error=one line, no password)."""
    reader = RedisMetricsReader(
        connect_timeout=getattr(settings, "REDIS_CONNECT_TIMEOUT", 5),
        read_timeout=getattr(settings, "REDIS_READ_TIMEOUT", 5),
    )
    try:
        info = reader.read("registration", url)
    except MetricsReadError as error:
        return Probe(error=redact(str(error)))
    except Exception as error:  # noqa: BLE001 - reported to the person, never a traceback
        return Probe(error=redact(f"{error.__class__.__name__}: {error}").replace(url, "***"))
    finally:
        reader.close_all()
    if not info.usable:
        return Probe(error="INFO lacks a readable used_memory or connected_clients: " + "; ".join(info.warnings))
    return Probe(info=info)


# --- What the numbers mean -----------------------------------------------------------------


def _mb(value_bytes):
    mb = value_bytes / MIB
    return f"{mb:,.1f} MB" if mb < 100 else f"{mb:,.0f} MB"


def _pct(part, whole):
    return f"{100 * part / whole:.0f}%" if whole else "?"


def threshold_memory_mb(plan, pct):
    return plan.mem_limit * pct / 100


def threshold_connections(plan, pct):
    return None if plan.unlimited_connections else plan.conn_limit * pct // 100


def monthly(cost):
    return f"${cost:,.2f}/month"


def plan_line(plan):
    conns = "unlimited connections" if plan.unlimited_connections else f"{plan.conn_limit:,} connections"
    return f"{plan.mem_limit:,} MB, {conns}, ${plan.cost}/month"


def summary_lines(*, name, app_name, config_var, resolved, metric_rate, memory_threshold, connection_threshold,
                  scaling_enabled, min_plan, max_plan, scaling_rate, notify_breach, notify_success, notify_failure,
                  probe=None, existing=None, max_plan_defaulted=False, schedules=None, schedule_lead_minutes=None,
                  workload="queue", min_hit_rate=90, scale_down_enabled=True):
    """(label, text) rows that show what will be saved and what it means on the current plan.
    ``schedules``/``schedule_lead_minutes`` None: those of ``existing`` (kept), or none."""
    plan = resolved.plan
    rows = [
        ("Instance", f"{name}" + (" (edit of the registered instance)" if existing is not None else " (new)")),
        ("Heroku app", app_name),
        ("Config var", f"{config_var} -> add-on {resolved.addon.name} ({plan.service_name})"),
        ("Current plan", f"{plan.plan_name} ({plan_line(plan)})"),
    ]
    notes = []
    if probe is not None:
        if probe.ok:
            info = probe.info
            parts = []
            if info.used_memory is not None:
                parts.append(f"memory {_mb(info.used_memory)} of {plan.mem_limit:,} MB "
                             f"({_pct(info.used_memory, plan.mem_limit_bytes)})")
                if 100 * info.used_memory >= memory_threshold * plan.mem_limit_bytes:
                    notes.append("memory in use is already above the memory threshold: the first checks may scale up")
            if info.connected_clients is not None:
                if plan.unlimited_connections:
                    parts.append(f"{info.connected_clients:,} connections (plan: unlimited)")
                else:
                    parts.append(f"{info.connected_clients:,} of {plan.conn_limit:,} connections "
                                 f"({_pct(info.connected_clients, plan.conn_limit)})")
                    if 100 * info.connected_clients >= connection_threshold * plan.conn_limit:
                        notes.append("connections in use are already above the connection threshold: "
                                     "the first checks may scale up")
            rows.append(("In use now", ", ".join(parts) or "INFO had no memory or connection figures"))
        else:
            rows.append(("In use now", f"unknown: Redis at {redis_address(resolved.redis_url)} could not be read "
                                       f"({probe.error})"))
    mem_mb = threshold_memory_mb(plan, memory_threshold)
    rows.append(("Metric rate", f"a sample every {rate_label(metric_rate, RedisInstance.MetricRate.choices)}"))
    rows.append(("Memory threshold", f"{memory_threshold}% = {mem_mb:,.1f} MB on {plan.short_name}"))
    conns = threshold_connections(plan, connection_threshold)
    rows.append(("Connection threshold", f"{connection_threshold}% = "
                 + (f"{conns:,} connections on {plan.short_name}" if conns is not None
                    else f"no limit on {plan.short_name} (connections are unlimited)")))
    rows.append(("Scaling", ("enabled" if scaling_enabled else "disabled")
                 + f", between {min_plan.short_name} and {max_plan.short_name}, "
                 f"checked every {rate_label(scaling_rate, RedisInstance.ScalingRate.choices)}"))
    schedules, schedule_lead_minutes = _schedules_kept(existing, schedules, schedule_lead_minutes)
    schedule_text, schedule_notes = schedule_summary(schedules=schedules, schedule_lead_minutes=schedule_lead_minutes,
                                                     max_plan=max_plan)
    rows.append(("Schedules", schedule_text))
    notes.extend(schedule_notes)
    cost = f"{monthly(plan.cost)} now on {plan.short_name}, at most {monthly(max_plan.cost)} on {max_plan.short_name}"
    if max_plan_defaulted:
        highest = plan_ladder(plan=plan)[-1]
        cost += (f" (the default max plan: the cheapest with {MAX_PLAN_MEMORY_FACTOR}x the memory; "
                 f"'{HIGHEST}' is {highest.short_name}, {monthly(highest.cost)})")
    suggested, why = workload_suggestion(probe)
    if workload == "cache":
        rows.append(("Workload", f"cache: evictions are normal; up when the hit rate is under {min_hit_rate}% "
                                 "while keys are evicted, or on connections"))
    else:
        rows.append(("Workload", "queue: every eviction or rejected connection is data lost; up at once"))
    if suggested is not None and suggested != workload:
        notes.append(f"the workload is {workload}, but {why}; the admin flags this until one of them changes")
    rows.append(("Scale down", "yes, when the load has fallen for the stabilisation window" if scale_down_enabled
                 else "no: scale-in protection, the plan only ever moves up"))
    rows.append(("Cost", cost))
    rows.append(("Mail on", ", ".join(f"{what}: {'yes' if flag else 'no'}" for what, flag in (
        ("breach", notify_breach), ("success", notify_success), ("failure", notify_failure)))))
    if scaling_enabled and _rank(plan) < _rank(min_plan):
        notes.append(f"the current plan is below the min plan: the first check will move it up to {min_plan.short_name}")
    elif scaling_enabled and _rank(plan) > _rank(max_plan):
        notes.append(f"the current plan is above the max plan: the first check will move it down to {max_plan.short_name}")
    rows.extend(("Note", note) for note in notes)
    return rows


# --- Saving and removing -------------------------------------------------------------------


def _validation_line(error):
    if hasattr(error, "message_dict"):
        parts = []
        for field, messages in error.message_dict.items():
            label = "" if field == "__all__" else field.replace("_", " ") + ": "
            parts.extend(label + " ".join(str(m).split()) for m in messages)
        return "; ".join(parts)
    return "; ".join(" ".join(str(m).split()) for m in error.messages)


def _schedules_kept(existing, schedules, schedule_lead_minutes):
    """None keeps an edited instance's schedules and lead (a new one: none, 10 min)."""
    if schedules is None:
        schedules = list(existing.schedules) if existing is not None else []
    if schedule_lead_minutes is None:
        schedule_lead_minutes = existing.schedule_lead_minutes if existing is not None else DEFAULT_SCHEDULE_LEAD
    return schedules, schedule_lead_minutes


def instance_register(*, name, app_name, config_var, resolved, metric_rate, memory_threshold, connection_threshold,
                      scaling_enabled, min_plan, max_plan, scaling_rate, notify_breach, notify_success,
                      notify_failure, now, existing=None, schedules=None, schedule_lead_minutes=None,
                      workload="queue", min_hit_rate=90, scale_down_enabled=True, maxmemory_policy=None,
                      account=None):
    """Create (or, with `existing`, update) an instance in one transaction and make it due now.
    ``schedules`` (specs as :func:`clean_schedule` returns them) and ``schedule_lead_minutes``:
    None keeps those of ``existing``.

    Raises RegistrationError (nothing saved) when a value is not acceptable.
    """
    ladder = plan_ladder(plan=resolved.plan)
    for label, plan in (("min plan", min_plan), ("max plan", max_plan)):
        if plan.pk not in {p.pk for p in ladder}:
            raise RegistrationError(f"the {label} {plan.plan_name} is not a plan this add-on can move to")
    clean_plan_range(min_plan=min_plan, max_plan=max_plan)
    try:
        with transaction.atomic():
            if existing is None:
                instance = RedisInstance(name=name)
            else:
                instance = RedisInstance.objects.select_for_update().filter(pk=existing.pk).first()
                if instance is None:
                    raise RegistrationError(f"instance {existing.name!r} was removed meanwhile")
            other = addon_registered_elsewhere(resolved=resolved, app_name=app_name, config_var=config_var,
                                               exclude=instance if instance.pk else None)
            if other is not None:
                raise RegistrationError(f"add-on {resolved.addon.name} is already registered as instance {other.name!r}")
            same_addon = instance.pk is not None and str(instance.addon_id or "") == str(resolved.addon.id)
            if instance.pk is not None and same_addon and instance.current_plan_id != resolved.plan.pk:
                from scaling.services.adoption import plan_adopt_if_changed

                plan_adopt_if_changed(instance=instance, plan=resolved.plan, now=now, found_by="a registration edit")
                instance.refresh_from_db()
            if instance.pk is None or not same_addon:
                instance.current_plan = resolved.plan
                instance.plan_changed_at = None
            instance.name = name
            instance.app_name = resolved.addon.app_name or app_name
            if account is not None:
                instance.account = account
            instance.config_var = config_var
            instance.metric_rate = metric_rate
            instance.memory_threshold = memory_threshold
            instance.connection_threshold = connection_threshold
            instance.scaling_enabled = scaling_enabled
            instance.min_plan = min_plan
            instance.max_plan = max_plan
            instance.scaling_rate = scaling_rate
            instance.notify_breach = notify_breach
            instance.notify_success = notify_success
            instance.notify_failure = notify_failure
            instance.schedules, instance.schedule_lead_minutes = _schedules_kept(
                existing, schedules, schedule_lead_minutes)
            instance.workload = workload
            instance.min_hit_rate = min_hit_rate
            instance.scale_down_enabled = scale_down_enabled
            if maxmemory_policy:
                instance.maxmemory_policy = maxmemory_policy
            instance.addon_id = resolved.addon.id
            instance.addon_name = resolved.addon.name
            instance.redis_url = resolved.redis_url
            instance.resolved_at = now
            instance.consecutive_failures = 0
            try:
                instance.full_clean()
            except ValidationError as error:
                raise RegistrationError(_validation_line(error)) from None
            instance.save()
            instance_schedule_now(instance=instance, now=now)
    except IntegrityError as error:
        if "name" in str(error) and "unique" in str(error).lower():
            raise RegistrationError(f"an instance named {name!r} was registered meanwhile; nothing saved") from None
        raise RegistrationError(f"the database refused the instance: {redact(' '.join(str(error).split()))[:200]}") from None
    instance.refresh_from_db()
    return instance


@dataclass(frozen=True)
class RemovalResult:
    name: str
    samples: int
    actions: int
    notifications: int
    kept: bool


def instance_records(instance):
    return (
        MetricLog.objects.filter(instance=instance).count(),
        ScalingAction.objects.filter(instance=instance).count(),
        Notification.objects.filter(instance=instance).count(),
    )


def instance_remove(*, name, keep_record, wait_seconds=None, client=None):
    """Remove an instance. keep_record: its samples, scaling actions and notifications stay
    (without the instance: their foreign key is SET_NULL); else they are deleted first.

    A plan change in flight is settled first (followed on Heroku for up to `wait_seconds`,
    default PLAN_FOLLOW_SECONDS, until it succeeds or fails), under the instance's check
    claim so that no check starts another meanwhile; if it is still provisioning, nothing is
    removed (RegistrationError): an action left pending without its instance would never
    be completed, and the add-on registered again would be changed a second time."""
    from scaling.services.checks import instance_claimed
    from scaling.services.instances import instance_pending_change_settle

    instance = RedisInstance.objects.filter(name=name).first()
    if instance is None:
        raise RegistrationError(f"no instance named {name!r}")
    with instance_claimed(instance_id=instance.pk, now=timezone.now()) as claimed:
        if not claimed:
            raise RegistrationError(f"a scaling check of {name!r} is running; try again in a minute")
        wait = settings.PLAN_FOLLOW_SECONDS if wait_seconds is None else wait_seconds
        in_flight = instance_pending_change_settle(instance=instance, wait_seconds=wait, client=client)
        if in_flight is not None:
            raise RegistrationError(f"instance {name!r} has a plan change to {in_flight.to_plan} in flight"
                                    f" ({in_flight.detail}); remove it once the change has landed")
        with transaction.atomic():
            instance = RedisInstance.objects.select_for_update().filter(pk=instance.pk).first()
            if instance is None:
                raise RegistrationError(f"no instance named {name!r}")
            samples, actions, notifications = instance_records(instance)
            if not keep_record:
                MetricLog.objects.filter(instance=instance).delete()
                ScalingAction.objects.filter(instance=instance).delete()
                Notification.objects.filter(instance=instance).delete()
            instance.delete()
    return RemovalResult(name=name, samples=samples, actions=actions, notifications=notifications, kept=keep_record)


TABLE_COLUMNS = ("NAME", "APP", "CONFIG VAR", "PLAN", "MIN..MAX", "SAMPLE", "MEM%", "CONN%", "SCALING", "MAIL", "NEXT SAMPLE")


def instances_table():
    """One row (tuple of strings, TABLE_COLUMNS) per registered instance, by name."""
    rows = []
    for instance in RedisInstance.objects.with_plans().order_by("name"):
        mail = "".join(letter if flag else "-" for letter, flag in (
            ("b", instance.notify_breach), ("s", instance.notify_success), ("f", instance.notify_failure)))
        scaling = (f"every {rate_label(instance.scaling_rate, RedisInstance.ScalingRate.choices)}"
                   if instance.scaling_enabled else "off")
        if instance.scaling_enabled and instance.dry_run:
            scaling += " (dry run)"
        rows.append((
            instance.name,
            instance.app_name,
            instance.config_var,
            instance.current_plan.plan_name,
            f"{instance.min_plan.short_name}..{instance.max_plan.short_name}",
            rate_label(instance.metric_rate, RedisInstance.MetricRate.choices),
            str(instance.memory_threshold),
            str(instance.connection_threshold),
            scaling,
            mail,
            instance.next_sample_at.strftime("%Y-%m-%d %H:%M:%S") if instance.next_sample_at else "-",
        ))
    return rows
