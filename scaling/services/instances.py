"""Finding an instance's add-on on Heroku, and keeping what was found up to date.

What Heroku told us (add-on id, plan, Redis URL) is kept on the instance so that sampling
and checks spend no API calls; it is read again only when a connection fails in a way
Heroku can explain, after a plan change, and by the bulk reconciliation (DESIGN section 7).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction

from scaling.crypto import DecryptionError
from scaling.heroku import AddOn, HerokuError, HerokuNotFound
from scaling.models import RedisInstance, RedisPlan
from scaling.services.heroku_access import account_client, heroku_client

logger = logging.getLogger(__name__)

# A connection failure asks Heroku again at most this often per instance, so a Redis whose
# password is wrong for good costs a few calls an hour, not one per sample.
REFRESH_COOLDOWN = timedelta(minutes=5)
REFRESH_COOLDOWN_MAX = timedelta(hours=1)


class ResolutionError(Exception):
    """The app, config var or add-on is not what registration needs; one line for a person."""

    def __init__(self, message, *, retryable=False):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ResolvedAddon:
    addon: AddOn
    plan: RedisPlan
    redis_url: str

    def __repr__(self):
        return f"ResolvedAddon(addon={self.addon.name!r}, plan={self.plan.plan_name!r})"


def instances_named(*, names, default=None):
    """The instances called `names` (or `default`, all if None, when no name is given);
    ResolutionError naming any that is not registered."""
    queryset = RedisInstance.objects.all()
    if not names:
        return queryset if default is None else default
    queryset = queryset.filter(name__in=names)
    missing = sorted(set(names) - set(queryset.values_list("name", flat=True)))
    if missing:
        raise ResolutionError(f"no registered instance named {', '.join(missing)}")
    return queryset


def known_services():
    return set(RedisPlan.objects.values_list("service_name", flat=True).distinct())


def addon_resolve(*, app_name, config_var, client=None, addons=None):
    """From app name and config var to the add-on, its plan and the Redis URL (2 API calls;
    1 when the app's add-ons were just listed and are passed in)."""
    client = client or heroku_client()
    try:
        addons = client.list_app_addons(app_name) if addons is None else addons
    except HerokuNotFound:
        raise ResolutionError(f"app {app_name!r} does not exist or the API key cannot see it") from None
    except HerokuError as error:
        raise ResolutionError(f"cannot list the add-ons of app {app_name!r}: {error}", retryable=error.retryable) from None
    addon = next((candidate for candidate in addons if config_var in candidate.config_vars), None)
    services = known_services()
    if addon is None:
        redis_vars = sorted(var for a in addons if a.service_name in services for var in a.config_vars)
        hint = f"; its Redis config vars are {', '.join(redis_vars)}" if redis_vars else "; it has no Redis add-on"
        raise ResolutionError(f"config var {config_var} of app {app_name!r} is not set by any add-on{hint}")
    if addon.service_name not in services:
        raise ResolutionError(
            f"config var {config_var} belongs to add-on {addon.name} of service {addon.service_name}, "
            f"not a Redis add-on of a known provider ({', '.join(sorted(services))})"
        )
    plan = RedisPlan.objects.filter(plan_name=addon.plan_name).first()
    if plan is None:
        raise ResolutionError(
            f"add-on {addon.name} is on plan {addon.plan_name}, which the plan data does not know; "
            f"add it with `python manage.py load_plans YOUR.csv`"
        )
    url = _config_var_value(client=client, app_name=app_name, config_var=config_var)
    return ResolvedAddon(addon=addon, plan=plan, redis_url=url)


def _config_var_value(*, client, app_name, config_var):
    try:
        value = client.get_config_vars(app_name).get(config_var, "")
    except HerokuError as error:
        raise ResolutionError(f"cannot read the config vars of app {app_name!r}: {error}", retryable=error.retryable) from None
    if not value:
        raise ResolutionError(f"config var {config_var} of app {app_name!r} is empty")
    return value


def refresh_cooldown(*, consecutive_failures, metric_rate=300):
    """Wait between refreshes of an instance that keeps failing: half the time it has been
    failing, within 5 min .. 1 h. The waits so double (5, 5, 10, 20, 40 min, then hourly)
    whatever the metric rate; counted in failures alone, an instance sampled every 30 s
    went an hour between its first and its second refresh."""
    failing = timedelta(seconds=consecutive_failures * metric_rate)
    return min(max(REFRESH_COOLDOWN, failing / 2), REFRESH_COOLDOWN_MAX)


def instance_refresh_due(*, instance, now):
    if not instance.redis_url_encrypted or instance.resolved_at is None:
        return True
    cooldown = refresh_cooldown(consecutive_failures=instance.consecutive_failures, metric_rate=instance.metric_rate)
    return now - instance.resolved_at >= cooldown


def instance_refresh(*, instance, now, client=None):
    """Read the add-on and Redis URL again (2 calls). Adopts a plan changed outside the app.

    Returns True when the stored URL changed.
    """
    client = client or account_client(account=instance.account)
    if instance.addon_id:
        try:
            addon = client.get_addon(str(instance.addon_id), app=instance.app_name)
        except HerokuNotFound:
            addon = None  # replaced or detached: find it again by its config var
        except HerokuError as error:
            raise ResolutionError(f"cannot read add-on {instance.addon_name}: {error}", retryable=error.retryable) from None
        if addon is not None:
            url = _config_var_value(client=client, app_name=instance.app_name, config_var=instance.config_var)
            plan = RedisPlan.objects.filter(plan_name=addon.plan_name).first()
            resolved = ResolvedAddon(addon=addon, plan=plan or instance.current_plan, redis_url=url)
            return instance_store_resolution(instance=instance, resolved=resolved, now=now, plan_known=plan is not None)
    resolved = addon_resolve(app_name=instance.app_name, config_var=instance.config_var, client=client)
    return instance_store_resolution(instance=instance, resolved=resolved, now=now)


@transaction.atomic
def instance_store_resolution(*, instance, resolved, now, plan_known=True):
    from scaling.services.adoption import plan_adopt_if_changed

    try:
        url_changed = resolved.redis_url != instance.redis_url
    except DecryptionError:  # stored under a key no longer configured: Heroku's URL replaces it
        url_changed = True
    instance.addon_id = resolved.addon.id
    instance.addon_name = resolved.addon.name
    instance.redis_url = resolved.redis_url
    instance.resolved_at = now
    RedisInstance.objects.filter(pk=instance.pk).update(
        addon_id=instance.addon_id, addon_name=instance.addon_name, redis_url_encrypted=instance.redis_url_encrypted,
        resolved_at=now,
    )
    if not plan_known:
        logger.warning("instance %s: add-on is on plan %s, unknown to the plan data", instance.name, resolved.addon.plan_name)
    elif resolved.addon.state == "provisioned":
        plan_adopt_if_changed(instance=instance, plan=resolved.plan, now=now, found_by="a refresh of the add-on")
    return url_changed


# --- Removal: a plan change in flight is settled first ----------------------------------

SETTLE_POLL_SECONDS = 5


@dataclass(frozen=True)
class ChangeInFlight:
    """A plan change Heroku has not finished (or cannot tell about yet)."""

    to_plan: str
    detail: str


def instance_pending_change_settle(*, instance, wait_seconds=0, client=None, now_fn=None, sleep=None):
    """Follow the instance's plan change in flight, as a check would, until Heroku shows how
    it ended (the action then succeeds or fails), for at most `wait_seconds`. Returns None
    when nothing is in flight any more, else a ChangeInFlight. The caller holds the
    instance's check claim, so no check starts another change meanwhile."""
    import time

    from django.utils import timezone

    from logs.models import ScalingAction
    from scaling.services.checks import action_follow_claimed

    now_fn, sleep = now_fn or timezone.now, sleep or time.sleep
    deadline = time.monotonic() + wait_seconds
    while True:
        action = (ScalingAction.objects.select_related("from_plan", "to_plan")
                  .filter(instance=instance, status=ScalingAction.Status.PENDING).first())
        if action is None:
            return None
        outcome = action_follow_claimed(action=action, instance=instance, now=now_fn(), client=client)
        if outcome.outcome == "pending":
            if time.monotonic() >= deadline:
                return ChangeInFlight(to_plan=action.to_plan.plan_name, detail=outcome.detail)
            sleep(SETTLE_POLL_SECONDS)
