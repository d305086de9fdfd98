"""Plan prices from Heroku: `load_plans --from-heroku` and the daily beat refresh (DESIGN section 9).

Heroku lists every plan of an add-on service with its price (`GET /addon-services/{service}/plans`,
`price.cents` per `price.unit`). The memory and connection limits are not in that answer: they
stay those of the static plan data. So only plans the static data knows get a price; plans Heroku
lists that it lacks are reported (never created: their limits would be guesses), and plans it
has that Heroku no longer lists are reported and keep their price.

All or nothing: every service is read and every price checked before anything is written; an
odd answer (no price, a unit other than a month, cents that are not a price) is one line and
leaves the plans as they were.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from scaling.heroku import HerokuError
from scaling.models import RedisPlan
from scaling.services.heroku_access import account_client
from scaling.services.plans import instance_plan_range_problems

logger = logging.getLogger(__name__)

MAX_CENTS = 10**10 - 1  # RedisPlan.cost: 10 digits, 2 of them cents


class PlanPriceError(Exception):
    """Heroku's answer cannot be used, or Heroku could not be asked; one line, nothing written."""


@dataclass(frozen=True)
class PriceChange:
    plan: str
    old: Decimal
    new: Decimal


@dataclass(frozen=True)
class PriceRefreshResult:
    fetched_at: datetime  # when Heroku was asked
    services: tuple  # the add-on services asked
    changed: tuple  # PriceChange, price differs from the one before
    confirmed: int  # plans whose price Heroku gave (changed or not)
    unknown: tuple  # plans Heroku lists that the static data lacks (not created)
    unlisted: tuple  # plans of the static data Heroku no longer lists (price kept)


def _price_problem(service, plan):
    """Why a listed plan's price is unusable, or None."""
    if not plan.name.startswith(service + ":"):
        return f"plan {plan.name!r} listed under {service} is not named {service}:<plan>"
    if not plan.has_price:
        return f"{plan.name} has no price"
    if plan.cents is None or not 0 <= plan.cents <= MAX_CENTS:
        return f"{plan.name} has no usable price.cents (a whole number of cents from 0 to {MAX_CENTS})"
    if plan.unit != "month":
        return f"{plan.name} is priced per {plan.unit!r}, not per month"
    if plan.contract:
        return f"{plan.name} is priced in a contract outside the monthly billing"
    return None


def _heroku_prices(*, services, client):
    """{plan name: monthly price} of every plan Heroku lists for `services`, or PlanPriceError."""
    prices = {}
    for service in services:
        try:
            listed = client.list_service_plans(service)
        except HerokuError as error:
            raise PlanPriceError(f"cannot read the plans of {service}: {error}") from None
        for plan in listed:
            problem = _price_problem(service, plan)
            if problem:
                raise PlanPriceError(f"Heroku's plans of {service}: {problem}")
            prices[plan.name] = (Decimal(plan.cents) / 100).quantize(Decimal("0.01"))
    return prices


def plan_prices_load_from_heroku(*, now, client=None):
    """Read the price of every plan of the static data's services from Heroku and record it
    (price, source, time); returns what changed and what does not match the static data."""
    services = tuple(sorted(set(RedisPlan.objects.values_list("service_name", flat=True))))
    if not services:
        raise PlanPriceError("there is no plan data yet: run load_plans first (the limits come from it)")
    try:
        client = client or _prices_client()
    except HerokuError as error:  # no key
        raise PlanPriceError(str(error)) from None
    prices = _heroku_prices(services=services, client=client)
    changed, confirmed = [], 0
    with transaction.atomic():
        plans = list(RedisPlan.objects.select_for_update().filter(service_name__in=services).order_by("plan_name"))
        for plan in plans:
            price = prices.get(plan.plan_name)
            if price is None:
                continue
            confirmed += 1
            if price != plan.cost:
                changed.append(PriceChange(plan=plan.plan_name, old=plan.cost, new=price))
            RedisPlan.objects.filter(pk=plan.pk).update(
                cost=price, price_source=RedisPlan.HEROKU_PRICE_SOURCE, price_confirmed=True, price_fetched_at=now)
        problems = instance_plan_range_problems()
        if problems:  # raised inside the transaction: nothing above is kept
            raise PlanPriceError("Heroku's prices would leave registered instances without a valid plan range: "
                                 + "; ".join(problems[:10]))
    from scaling.services.engine_input import engine_ladders_forget

    engine_ladders_forget()
    known = {plan.plan_name for plan in plans}
    return PriceRefreshResult(
        fetched_at=now, services=services, changed=tuple(changed), confirmed=confirmed,
        unknown=tuple(sorted(set(prices) - known)), unlisted=tuple(sorted(known - set(prices))),
    )


def _prices_client():
    """Plan prices are Heroku's, the same for every account: any account with a key will do
    (`default`, HEROKU_API_KEY, first)."""
    from scaling.services.accounts import accounts_usable

    accounts = accounts_usable()
    return account_client(account=accounts[0] if accounts else None)


def plan_prices_refresh(*, now, client=None):
    """The daily beat task: refresh the prices when a Heroku key is set; a failure is one
    logged line (never the key), never an exception out of the task. Returns the result or None."""
    from scaling.services.accounts import accounts_usable

    if client is None and not accounts_usable():
        logger.info("plan prices not refreshed: no Heroku account has an API key")
        return None
    try:
        result = plan_prices_load_from_heroku(now=now, client=client)
    except PlanPriceError as error:
        logger.warning("plan prices not refreshed, nothing changed: %s", error)
        return None
    for change in result.changed:
        logger.info("plan price from Heroku: %s $%s -> $%s a month", change.plan, change.old, change.new)
    if result.unknown:
        logger.warning("Heroku lists plans the plan data lacks (not loaded): %s", ", ".join(result.unknown))
    return result
