"""Heroku API calls spent per hour of steady state, for N registered instances.

    DJANGO_SETTINGS_MODULE=autoscaler.test_settings .venv/bin/python benchmarks/api_budget.py \
        [--sizes 100,1000,4000] [--minutes 60] [--rotate-pct 1] [--rotation-sizes ...]

For each N, in a scratch PostgreSQL database (created and dropped by the script):

1. Registration: N Heroku Redis add-ons exist in the fake Heroku (in-process, at the HTTP
   level through `responses`, every request checked against Heroku's schema); each is
   resolved with `addon_resolve` exactly as registration does (list the app's add-ons, read
   its config vars) and stored on a `RedisInstance` (add-on id, plan, encrypted URL).
   These calls are counted apart. They cost 2 calls per instance, so 4,000 registrations
   need more than one hour's 4,500-call pool: the simulated clock moves on while the
   client keeps its reserve back (the simulated time this takes is printed).
2. A quiet hour passes (the registration burst is over, the pool refills).
3. The measured steady hour: a simulated clock advances in 10 s dispatcher ticks; every
   tick calls `due_work_dispatch`, then `samples_collect` for each enqueued batch (with
   `now_fn` on the simulated clock) and `instance_check_scaling` for each check that came
   due; `addons_reconcile` runs once (it is hourly). Every instance: metric rate 60 s,
   scaling rate 60 s (1-minute checks), steady low load (about 20 % of memory and
   connections) on a plan that is also its min plan, so no plan change is due.
   Reads go to a fake reader (instant, no Redis): the point is counting Heroku calls.
4. Rotation scenario (for --rotation-sizes): one more hour on the same instances in which
   --rotate-pct % of them get their password rotated at a random moment (the config var
   changes in the fake; the fake reader answers `auth` errors for the old URL), so the
   collector has to refresh those URLs from Heroku.

The fake Heroku and the app's client share the simulated clock (rate-limit pool and
refill, the client's reserve). Calls are counted from the fake's request log (and checked
against the client's own counter).
"""

from __future__ import annotations

import argparse
import collections
import logging
import math
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch_db import reset_instances, scratch_database  # noqa: E402

POOL_PER_HOUR = 4500
TICK_SECONDS = 10
PLAN = "heroku-redis:premium-0"  # 50 MB, 40 connections
MIN_PLAN = PLAN  # steady low load must not be scaled down: the plan is already the floor
MAX_PLAN = "heroku-redis:premium-5"
MIB = 1024 * 1024


class SimClock:
    """One simulated time for Django (`now()`: aware datetime) and for the fake Heroku and the
    client (`clock()`: float seconds)."""

    def __init__(self, start):
        self.start = start
        self.seconds = 0.0

    def now(self):
        return self.start + timedelta(seconds=self.seconds)

    def __call__(self):
        return 1_000_000.0 + self.seconds

    def advance(self, seconds):
        self.seconds += seconds


class FakeReader:
    """`.read(key, url) -> RedisInfo`, instantly: low steady load, or an `auth` error when
    `url` is not what the add-on's config var holds now (its password was rotated)."""

    def __init__(self, fake, seed=0):
        self.fake = fake
        self.apps = {}  # str(instance pk) -> (app, config var)
        self.reads = 0
        self.auth_errors = 0
        self.seed = seed

    def read(self, key, url):
        from scaling.metrics import MetricsReadError, RedisInfo

        self.reads += 1
        app, var = self.apps[key]
        if self.fake.config[app][var] != url:
            self.auth_errors += 1
            raise MetricsReadError("auth", "auth: redis.fake.test:6379 rejected the credentials in the URL "
                                   "(WRONGPASS invalid username-password pair)", during_connect=True)
        wobble = (hash((key, self.reads, self.seed)) % 200 - 100) / 100.0  # -1 .. +1
        return RedisInfo(
            used_memory=int((10 + 0.3 * wobble) * MIB), maxmemory=50 * MIB,
            connected_clients=8 + (1 if wobble > 0.5 else 0), maxclients=40,
            evicted_keys=0, rejected_connections=0, ops_per_sec=120,
        )


class CountingHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.counts = collections.Counter()

    def emit(self, record):
        self.counts[record.name] += 1


def classify(call):
    path = call.path
    if call.method == "GET" and path == "/addons":
        return "reconcile"
    if path.endswith("/config-vars"):
        return "config-vars"
    if call.method == "PATCH":
        return "plan change"
    if call.method == "GET" and path.startswith("/apps/") and path.endswith("/addons"):
        return "app add-ons"
    if call.method == "GET" and "/addons/" in path:
        return "add-on"
    return f"{call.method} {path}"


def register(*, n, fake, client, clock, plans):
    """N instances as registration leaves them. Returns (calls, simulated seconds waited)."""
    from scaling.models import RedisInstance
    from scaling.services.instances import ResolutionError, addon_resolve

    for i in range(n):
        fake.add_redis_addon(f"bench-{i:05d}-app", plan=PLAN, config_var="REDIS_URL")
    calls_before, started = len(fake.calls), clock.seconds
    rows = []
    for i in range(n):
        app = f"bench-{i:05d}-app"
        while True:
            try:
                resolved = addon_resolve(app_name=app, config_var="REDIS_URL", client=client)
                break
            except ResolutionError as error:
                if not error.retryable:
                    raise
                clock.advance(30)  # the key's pool is at the reserve: registration waits
        instance = RedisInstance(
            name=f"bench-{i:05d}", app_name=app, config_var="REDIS_URL",
            current_plan=plans[resolved.plan.plan_name], min_plan=plans[MIN_PLAN], max_plan=plans[MAX_PLAN],
            metric_rate=60, scaling_rate=60, addon_id=uuid.UUID(resolved.addon.id), addon_name=resolved.addon.name,
            resolved_at=clock.now(), notify_breach=False, notify_success=False,
        )
        instance.redis_url = resolved.redis_url
        rows.append(instance)
    RedisInstance.objects.bulk_create(rows, batch_size=1000)
    return len(fake.calls) - calls_before, clock.seconds - started


def simulate_hour(*, fake, client, clock, reader, minutes, rotations=(), reconcile_at_minute=30):
    """Dispatch, collect, check and reconcile for `minutes` simulated minutes."""
    from scaling.services.checks import instance_check_scaling
    from scaling.services.collection import samples_collect
    from scaling.services.dispatch import due_work_dispatch
    from scaling.services.reconcile import addons_reconcile

    rotations = sorted(rotations)  # [(second into the hour, addon id)]
    calls_before, client_before = len(fake.calls), client.calls
    stats = collections.Counter()
    timings = collections.Counter()
    end = clock.seconds + minutes * 60
    hour_start = clock.seconds
    reconciled = False
    while clock.seconds < end:
        elapsed = clock.seconds - hour_start
        while rotations and rotations[0][0] <= elapsed:
            _, addon_id = rotations.pop(0)
            fake.rotate_url(addon_id, f"redis://default:rotated{uuid.uuid4().hex}@redis.fake.test:6379")
            stats["rotated"] += 1
        batches, checks = [], []
        t0 = time.perf_counter()
        result = due_work_dispatch(now=clock.now(), enqueue_samples=batches.append,
                                   enqueue_check=lambda pk, slot: checks.append(pk))
        t1 = time.perf_counter()
        for batch in batches:
            collected = samples_collect(due=batch, reader=reader, now_fn=clock.now)
            stats["stored"] += collected.stored
            stats["failed"] += collected.failed
            stats["skipped"] += collected.skipped
        t2 = time.perf_counter()
        for pk in checks:
            outcome = instance_check_scaling(instance_id=pk, now=clock.now(), client=client)
            stats[f"check {outcome.outcome}"] += 1
        t3 = time.perf_counter()
        if not reconciled and elapsed >= reconcile_at_minute * 60:
            stats["reconcile checked"] += addons_reconcile(now=clock.now(), client=client).checked
            reconciled = True
        t4 = time.perf_counter()
        timings["dispatch"] += t1 - t0
        timings["collect"] += t2 - t1
        timings["checks"] += t3 - t2
        timings["reconcile"] += t4 - t3
        stats["samples dispatched"] += result.samples
        stats["checks dispatched"] += result.checks
        clock.advance(TICK_SECONDS)
    calls = fake.calls[calls_before:]
    if client.calls - client_before != len(calls):
        print(f"  note: the client counted {client.calls - client_before} calls, the fake saw {len(calls)}")
    return calls, stats, timings


def run_size(*, n, args, rng, counter):
    from django.conf import settings

    from scaling.models import RedisPlan
    from scaling.services.heroku_access import heroku_client, heroku_client_reset
    from tests.fakes.heroku import installed_fake

    reset_instances()
    plans = {plan.plan_name: plan for plan in RedisPlan.objects.all()}
    clock = SimClock(datetime(2030, 1, 1, tzinfo=dt_timezone.utc))
    heroku_client_reset()
    rows = []
    wall_started = time.perf_counter()
    with installed_fake(api_key=settings.HEROKU_API_KEY, base_url=settings.HEROKU_API_URL, clock=clock) as fake:
        client = heroku_client()  # the process's client: collection's refreshes use it too
        client.clock, client.sleep = clock, (lambda seconds: clock.advance(seconds))
        reader = FakeReader(fake, seed=n)

        reg_calls, reg_wait = register(n=n, fake=fake, client=client, clock=clock, plans=plans)
        reg_wall = time.perf_counter() - wall_started
        from scaling.models import RedisInstance

        for pk, app in RedisInstance.objects.values_list("pk", "app_name"):
            reader.apps[str(pk)] = (app, "REDIS_URL")
        clock.advance(3600)  # the registration burst is over; the pool refills

        counter.counts.clear()
        hour_started = time.perf_counter()
        calls, stats, timings = simulate_hour(fake=fake, client=client, clock=clock, reader=reader, minutes=args.minutes,
                                              reconcile_at_minute=args.minutes / 2)
        rows.append(dict(kind="steady", n=n, reg_calls=reg_calls, reg_wait=reg_wait, reg_wall=reg_wall,
                         calls=calls, stats=stats, timings=timings, wall=time.perf_counter() - hour_started,
                         warnings=dict(counter.counts)))

        if n in args.rotation_sizes and args.rotate_pct > 0:
            counter.counts.clear()
            k = max(1, round(n * args.rotate_pct / 100))
            chosen = rng.sample(sorted(fake.addons), k)
            rotations = [(rng.uniform(0, args.minutes * 60), addon_id) for addon_id in chosen]
            hour_started = time.perf_counter()
            auth_before = reader.auth_errors
            calls, stats, timings = simulate_hour(fake=fake, client=client, clock=clock, reader=reader,
                                                  minutes=args.minutes, rotations=rotations,
                                                  reconcile_at_minute=args.minutes / 2)
            stats["auth errors"] = reader.auth_errors - auth_before
            stale = sum(1 for inst in RedisInstance.objects.filter(addon_id__in=chosen)
                        if inst.redis_url != fake.config[inst.app_name]["REDIS_URL"])
            stats["still stale"] = stale
            rows.append(dict(kind="rotation", n=n, rotated=k, calls=calls, stats=stats, timings=timings,
                             wall=time.perf_counter() - hour_started, warnings=dict(counter.counts)))
    heroku_client_reset()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,4000", help="instance counts, comma separated (default 100,1000,4000)")
    parser.add_argument("--minutes", type=int, default=60, help="simulated minutes of steady state (default 60)")
    parser.add_argument("--rotate-pct", type=float, default=1.0, help="%% of instances rotated in the rotation hour (default 1)")
    parser.add_argument("--rotation-sizes", default=None,
                        help="sizes that also run the rotation hour (default: all of --sizes; 'none' to skip)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="show the services' warnings")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.rotation_sizes is None:
        args.rotation_sizes = set(args.sizes)
    elif args.rotation_sizes.strip().lower() == "none":
        args.rotation_sizes = set()
    else:
        args.rotation_sizes = {int(s) for s in args.rotation_sizes.split(",") if s.strip()}

    counter = CountingHandler()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    results = []
    with scratch_database():
        root = logging.getLogger()  # django.setup() configured logging: adjust it now
        if not args.verbose:
            # Counted, not printed (the rotation hour logs a warning per failed sample).
            for handler in list(root.handlers):
                root.removeHandler(handler)
        root.addHandler(counter)
        for n in args.sizes:
            print(f"N={n}: registering and simulating ...", flush=True)
            results.extend(run_size(n=n, args=args, rng=rng, counter=counter))
    report(results, args, time.perf_counter() - started)
    return 0


def report(results, args, total_wall):
    hours = args.minutes / 60
    print()
    print(f"Heroku API calls: registration, then {args.minutes} simulated minutes of steady state "
          f"(10 s dispatcher ticks; metric rate 60 s, 1-minute checks; fake reader; hourly bulk reconciliation)")
    head = (f"{'N':>6} {'reg. calls':>10} {'reg. needs':>10} {'steady calls':>12} {'calls/h':>8} "
            f"{'per 100 inst-h':>14} {'% of 4,500/h':>12} {'original calls/h':>16} {'orig. per 100 inst-h':>20} {'wall s':>7}")
    print(head)
    print("-" * len(head))
    for row in results:
        if row["kind"] != "steady":
            continue
        n, calls = row["n"], len(row["calls"])
        per_hour = calls / hours
        original = 60 * n  # 60 / scaling-minutes per instance-hour, 1-minute checks
        print(f"{n:>6} {row['reg_calls']:>10} {_duration(row['reg_wait']):>10} {calls:>12} {per_hour:>8.1f} "
              f"{100 * per_hour / n:>14.3f} {100 * per_hour / POOL_PER_HOUR:>11.2f}% {original:>16,} {6000:>20,} "
              f"{row['wall']:>7.1f}")
    print()
    print("What was simulated, per size (steady hour):")
    for row in results:
        if row["kind"] != "steady":
            continue
        s, t = row["stats"], row["timings"]
        routes = collections.Counter(classify(c) for c in row["calls"])
        print(f"  N={row['n']}: {s['stored']:,} samples stored ({s['failed']} failed, {s['skipped']} skipped), "
              f"{s['checks dispatched']:,} checks ({_outcomes(s)}), reconcile checked {s['reconcile checked']:,}; "
              f"calls by route {dict(routes) or '{}'}")
        print(f"         wall: registration {row['reg_wall']:.1f} s; hour {row['wall']:.1f} s = dispatch {t['dispatch']:.1f} + "
              f"collect {t['collect']:.1f} + checks {t['checks']:.1f} + reconcile {t['reconcile']:.1f}; "
              f"warnings logged: {sum(row['warnings'].values())}")
    rotation = [r for r in results if r["kind"] == "rotation"]
    if rotation:
        print()
        print(f"Rotation hour: {args.rotate_pct:g} % of instances get a new password at a random moment of the hour")
        head = (f"{'N':>6} {'rotated':>7} {'calls':>6} {'refresh calls':>13} {'reconcile':>9} {'per rotation':>12} "
                f"{'auth fails':>10} {'still stale':>11} {'calls/h':>8} {'per 100 inst-h':>14} {'wall s':>7}")
        print(head)
        print("-" * len(head))
        for row in rotation:
            routes = collections.Counter(classify(c) for c in row["calls"])
            calls = len(row["calls"])
            refresh = calls - routes["reconcile"]
            s = row["stats"]
            print(f"{row['n']:>6} {row['rotated']:>7} {calls:>6} {refresh:>13} {routes['reconcile']:>9} "
                  f"{refresh / max(row['rotated'], 1):>12.2f} {s['auth errors']:>10} {s['still stale']:>11} "
                  f"{calls / hours:>8.1f} {100 * calls / hours / row['n']:>14.3f} {row['wall']:>7.1f}")
            print(f"         calls by route {dict(routes)}; samples {s['stored']:,} stored, {s['failed']} failed; "
                  f"warnings logged by logger {row['warnings']}")
    print()
    steady = [r for r in results if r["kind"] == "steady"]
    worst = max((len(r["calls"]) / hours / r["n"] * 100 for r in steady), default=0)
    biggest = max(steady, key=lambda r: r["n"]) if steady else None
    verdict = "within" if worst <= 1 else "OVER"
    if biggest:
        per_hour = len(biggest["calls"]) / hours
        print(f"summary: steady state spends at most {worst:.3f} Heroku calls per 100 instance-hours ({verdict} the "
              f"1-per-100 target); {biggest['n']:,} instances at 1-minute checks use {per_hour:.0f} of 4,500 calls/h, "
              f"where the original product would need {60 * biggest['n']:,}/h (it capped at 75 instances per key); "
              f"total wall time {total_wall:.0f} s")


def _outcomes(stats):
    return ", ".join(f"{k[6:]} {v:,}" for k, v in sorted(stats.items()) if k.startswith("check "))


def _duration(seconds):
    if seconds <= 0:
        return "0"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


if __name__ == "__main__":
    sys.exit(main())
