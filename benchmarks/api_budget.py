"""Heroku API calls spent per hour of steady state, for N registered instances.

    DJANGO_SETTINGS_MODULE=autoscaler.test_settings .venv/bin/python benchmarks/api_budget.py \
        [--sizes 100,1000,4000] [--minutes 5] [--warmup-minutes 1] [--max-checks 40] \
        [--rotate-pct 1] [--rotation-minutes 5] [--rotation-sizes 1000|all|none] [--accounts 2]

For each N, in a scratch PostgreSQL database (created and dropped by the script):

1. Registration: N Heroku Redis add-ons exist in the fake Heroku (in-process, at the HTTP
   level through `responses`, every request checked against Heroku's schema); each is
   resolved with `addon_resolve` exactly as registration does (list the app's add-ons, read
   its config vars) and stored on a `RedisInstance` (add-on id, plan, encrypted URL).
   These calls are counted apart. They cost 2 calls per instance, so 4,000 registrations
   need more than one hour's 4,500-call pool: the simulated clock moves on while the
   client keeps its reserve back (the simulated time this takes is printed; a resolution
   refused half-way by the reserve is tried again whole, which repeats its first call).
2. A quiet hour passes (the registration burst is over, the pool refills), then a warm-up
   (--warmup-minutes, not counted: every new instance is due at the first tick).
3. The measured window: a simulated clock advances in 10 s dispatcher ticks; every tick
   calls `due_work_dispatch`, then `samples_collect` for each enqueued batch (`now_fn` on
   the simulated clock) and `instance_check_scaling` for the checks that came due;
   `addons_reconcile` runs once (it is hourly). Every instance: metric rate 60 s, scaling
   rate 60 s (1-minute checks), steady low load (about 20 % of memory and connections) on
   a plan that is also its min plan, so no plan change is due. Reads go to a fake reader
   (instant, no Redis): the point is counting Heroku calls.
4. Rotation scenario (for --rotation-sizes): a further window on the same instances in
   which --rotate-pct % of them get their password rotated at random moments (the config
   var changes in the fake; the fake reader answers `auth` errors for the old URL), so the
   collector has to refresh those URLs from Heroku.

What is simulated, honestly: the whole hour would take too long at 4,000 instances on 2
cores (each check costs ~15-25 ms of database and ORM work here, the dispatcher ~1-2 ms per
claimed slot), so by default --minutes 5 are simulated and extrapolated: calls an hour =
the reconciliation's calls (it runs once an hour) + every other call x 60 / minutes. Every
due sample is collected; of the checks due in a tick at most --max-checks are run (a random
subset; the rest were claimed and are dropped) and their calls are scaled up by the share
not run. `--minutes 60 --max-checks 100000` simulates a whole hour without sampling.

With `--accounts K` (default 1) the fake Heroku holds K accounts, each with its own key and
4,500-call pool, and each size is N instances *per account* (`--sizes 4000 --accounts 2`:
8,000 instances); the accounts are added with `heroku_accounts add`'s service (1 call each,
`GET /account`), their registrations interleaved (the clock waits only when every account is
at its reserve), and every call is made with the instance's account's client. Calls are
reported in total and per account.

The fake Heroku and the app's clients share the simulated clock (rate-limit pool and
refill, the client's reserve). Calls are counted from the fake's request log (and checked
against the client's own counter).
"""

from __future__ import annotations

import argparse
import collections
import logging
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

    def __init__(self, seed=0):
        self.apps = {}  # str(instance pk) -> (fake account, app, config var)
        self.reads = 0
        self.auth_errors = 0
        self.seed = seed

    def read(self, key, url):
        from scaling.metrics import MetricsReadError, RedisInfo

        self.reads += 1
        fake, app, var = self.apps[key]
        if fake.config[app][var] != url:
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


def register(*, n, accounts, clock, plans):
    """N instances per account as registration leaves them, the accounts' registrations
    interleaved: the clock waits only while every account still registering is at its
    reserve. Returns (calls, simulated seconds waited, {account: seconds until its last})."""
    from scaling.models import RedisInstance
    from scaling.services.heroku_access import account_client
    from scaling.services.instances import ResolutionError, addon_resolve

    for account, fake in accounts:
        for i in range(n):
            fake.add_redis_addon(f"{account.name}-{i:05d}-app", plan=PLAN, config_var="REDIS_URL")
    calls_before, started = total_calls(accounts), clock.seconds
    rows, done, finished = [], {account.name: 0 for account, _ in accounts}, {}
    while len(finished) < len(accounts):
        progressed = False
        for account, _ in accounts:
            i = done[account.name]
            if i >= n:
                continue
            app = f"{account.name}-{i:05d}-app"
            try:
                resolved = addon_resolve(app_name=app, config_var="REDIS_URL", client=account_client(account=account))
            except ResolutionError as error:
                if not error.retryable:
                    raise
                continue  # this account's pool is at the reserve: it waits, the others go on
            instance = RedisInstance(
                name=f"{account.name}-{i:05d}", app_name=app, config_var="REDIS_URL", account=account,
                current_plan=plans[resolved.plan.plan_name], min_plan=plans[MIN_PLAN], max_plan=plans[MAX_PLAN],
                metric_rate=60, scaling_rate=60, addon_id=uuid.UUID(resolved.addon.id), addon_name=resolved.addon.name,
                resolved_at=clock.now(), notify_breach=False, notify_success=False,
            )
            instance.redis_url = resolved.redis_url
            rows.append(instance)
            done[account.name] += 1
            progressed = True
            if done[account.name] == n:
                finished[account.name] = clock.seconds - started
        if not progressed:
            clock.advance(30)
    RedisInstance.objects.bulk_create(rows, batch_size=1000)
    return total_calls(accounts) - calls_before, clock.seconds - started, finished


def total_calls(accounts):
    return sum(len(fake.calls) for _, fake in accounts)


def all_calls(accounts):
    return [(account.name, call) for account, fake in accounts for call in fake.calls]


def simulate(*, accounts, clock, reader, minutes, rng, max_checks, rotations=(), reconcile=True):
    """Dispatch, collect and check every 10 s for `minutes` simulated minutes; reconcile once.

    Every due sample is collected. Of the checks due in one tick at most `max_checks` are
    run (a random subset; the others were claimed by the dispatcher and are dropped), to
    keep large N tractable: the fraction run is reported.
    """
    from scaling.services.checks import instance_check_scaling
    from scaling.services.collection import samples_collect
    from scaling.services.dispatch import due_work_dispatch
    from scaling.services.reconcile import addons_reconcile

    from scaling.services.heroku_access import account_client

    fake = accounts[0][1]  # rotations happen on the first account's add-ons
    clients = [account_client(account=account) for account, _ in accounts]
    rotations = sorted(rotations)  # [(second into the window, addon id)]
    calls_before, client_before = all_calls(accounts), sum(c.calls for c in clients)
    phase_calls = collections.Counter()  # Heroku calls by the phase that made them
    stats = collections.Counter()
    timings = collections.Counter()
    window_start = clock.seconds
    end = window_start + minutes * 60
    reconcile_at = minutes / 2 * 60
    reconciled = not reconcile
    while clock.seconds < end:
        elapsed = clock.seconds - window_start
        while rotations and rotations[0][0] <= elapsed:
            _, addon_id = rotations.pop(0)
            fake.rotate_url(addon_id, f"redis://default:rotated{uuid.uuid4().hex}@redis.fake.test:6379")
            stats["rotated"] += 1
        batches, checks = [], []
        c0 = total_calls(accounts)
        t0 = time.perf_counter()
        result = due_work_dispatch(now=clock.now(), enqueue_samples=batches.append,
                                   enqueue_check=lambda pk, slot: checks.append(pk))
        t1, c1 = time.perf_counter(), total_calls(accounts)
        for batch in batches:
            collected = samples_collect(due=batch, reader=reader, now_fn=clock.now)
            stats["stored"] += collected.stored
            stats["failed"] += collected.failed
            stats["skipped"] += collected.skipped
        t2, c2 = time.perf_counter(), total_calls(accounts)
        if len(checks) > max_checks:
            checks = rng.sample(checks, max_checks)
        for pk in checks:
            outcome = instance_check_scaling(instance_id=pk, now=clock.now())
            stats[f"check {outcome.outcome}"] += 1
            stats["checks run"] += 1
        t3, c3 = time.perf_counter(), total_calls(accounts)
        if not reconciled and elapsed >= reconcile_at:
            stats["reconcile checked"] += addons_reconcile(now=clock.now()).checked
            reconciled = True
        t4, c4 = time.perf_counter(), total_calls(accounts)
        phase_calls["dispatch"] += c1 - c0
        phase_calls["collect"] += c2 - c1
        phase_calls["checks"] += c3 - c2
        phase_calls["reconcile"] += c4 - c3
        timings["dispatch"] += t1 - t0
        timings["collect"] += t2 - t1
        timings["checks"] += t3 - t2
        timings["reconcile"] += t4 - t3
        timings["ticks"] += 1
        stats["samples dispatched"] += result.samples
        stats["checks dispatched"] += result.checks
        clock.advance(TICK_SECONDS)
    before = collections.Counter(name for name, _ in calls_before)
    seen = collections.Counter()
    calls, by_account = [], collections.Counter()
    for name, call in all_calls(accounts):
        seen[name] += 1
        if seen[name] > before[name]:
            calls.append(call)
            by_account[name] += 1
    if sum(c.calls for c in clients) - client_before != len(calls):
        print(f"  note: the clients counted {sum(c.calls for c in clients) - client_before} calls, the fake saw {len(calls)}")
    return dict(calls=calls, by_account=by_account, phase_calls=phase_calls, stats=stats, timings=timings)


def per_hour(window, minutes):
    """Calls an hour: the (hourly) reconciliation once, the rest scaled from the window to 60 min.
    Checks that were not run (sampling) are assumed to cost what the run ones cost."""
    stats, phases = window["stats"], window["phase_calls"]
    checks = phases["checks"] * stats["checks dispatched"] / max(stats["checks run"], 1)
    return phases["reconcile"] + (phases["dispatch"] + phases["collect"] + checks) * 60 / minutes


def run_size(*, n, args, rng, counter):
    from django.conf import settings

    from scaling.models import HerokuAccount, RedisInstance, RedisPlan
    from scaling.services.accounts import account_add
    from scaling.services.heroku_access import account_client, heroku_client_reset
    from standins.heroku import installed_fake

    reset_instances()
    HerokuAccount.objects.exclude(name="default").delete()
    plans = {plan.plan_name: plan for plan in RedisPlan.objects.all()}
    clock = SimClock(datetime(2030, 1, 1, tzinfo=dt_timezone.utc))
    heroku_client_reset()
    rows = []
    wall_started = time.perf_counter()
    with installed_fake(api_key=settings.HEROKU_API_KEY, base_url=settings.HEROKU_API_URL, clock=clock) as fake:
        accounts = [(HerokuAccount.objects.get(name="default"), fake)]
        for k in range(2, args.accounts + 1):
            other = fake.add_account(f"account{k}", api_key=f"bench-key-{k}-0123456789abcdef")
            accounts.append((account_add(name=f"account{k}", api_key=other.api_key), other))
        for account, _ in accounts:
            # The process's clients (checks and collection's refreshes use them), on the simulated clock.
            client = account_client(account=account)
            client.clock, client.sleep = clock, (lambda seconds: clock.advance(seconds))
        reader = FakeReader(seed=n)

        reg_calls, reg_wait, reg_finished = register(n=n, accounts=accounts, clock=clock, plans=plans)
        reg_wall = time.perf_counter() - wall_started
        fakes = {account.pk: account_fake for account, account_fake in accounts}
        for pk, app, account_id in RedisInstance.objects.values_list("pk", "app_name", "account_id"):
            reader.apps[str(pk)] = (fakes[account_id], app, "REDIS_URL")
        clock.advance(3600)  # the registration burst is over; the pool refills
        if args.warmup_minutes > 0:
            # Past the first tick (every new instance is due at once) and the engine has samples.
            warmup = simulate(accounts=accounts, clock=clock, reader=reader, minutes=args.warmup_minutes,
                              rng=rng, max_checks=args.max_checks, reconcile=False)
            if warmup["calls"]:
                print(f"  note: {len(warmup['calls'])} Heroku calls during the warm-up (not counted)")

        counter.counts.clear()
        started = time.perf_counter()
        window = simulate(accounts=accounts, clock=clock, reader=reader, minutes=args.minutes, rng=rng,
                          max_checks=args.max_checks)
        rows.append(dict(kind="steady", n=n * len(accounts), accounts=len(accounts), reg_calls=reg_calls, reg_wait=reg_wait,
                         reg_finished=reg_finished, reg_wall=reg_wall,
                         minutes=args.minutes, wall=time.perf_counter() - started, warnings=dict(counter.counts),
                         **window))

        if n in args.rotation_sizes and args.rotate_pct > 0:
            counter.counts.clear()
            minutes = args.rotation_minutes
            k = max(1, round(n * len(accounts) * args.rotate_pct / 100))
            chosen = rng.sample(sorted(fake.addons), k)
            # All within the window, early enough for a sample to notice (metric rate 60 s).
            rotations = [(rng.uniform(0, max(minutes * 60 - 120, 10)), addon_id) for addon_id in chosen]
            started = time.perf_counter()
            auth_before = reader.auth_errors
            window = simulate(accounts=accounts, clock=clock, reader=reader, minutes=minutes, rng=rng,
                              max_checks=args.max_checks, rotations=rotations)
            window["stats"]["auth errors"] = reader.auth_errors - auth_before
            window["stats"]["still stale"] = sum(
                1 for inst in RedisInstance.objects.filter(addon_id__in=chosen)
                if inst.redis_url != fake.config[inst.app_name]["REDIS_URL"])
            rows.append(dict(kind="rotation", n=n * len(accounts), rotated=k, minutes=minutes, wall=time.perf_counter() - started,
                             warnings=dict(counter.counts), **window))
    heroku_client_reset()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,4000", help="instance counts, comma separated (default 100,1000,4000)")
    parser.add_argument("--minutes", type=float, default=5,
                        help="simulated minutes of steady state, extrapolated to the hour (default 5; 60 = a whole hour)")
    parser.add_argument("--warmup-minutes", type=float, default=1,
                        help="simulated minutes run before the measured window, not counted (default 1)")
    parser.add_argument("--max-checks", type=int, default=40,
                        help="scaling checks run per 10 s tick at most; more due: a random subset (default 40)")
    parser.add_argument("--rotate-pct", type=float, default=1.0,
                        help="%% of instances whose password is rotated in the rotation window (default 1)")
    parser.add_argument("--rotation-minutes", type=float, default=5, help="simulated minutes of the rotation window (default 5)")
    parser.add_argument("--rotation-sizes", default="1000",
                        help="sizes that also run the rotation window (default 1000; 'all' or 'none')")
    parser.add_argument("--accounts", type=int, default=1,
                        help="Heroku accounts, each with N instances of each size and its own pool (default 1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sync-commit", action="store_true",
                        help="keep synchronous_commit on in the scratch database (default off: the simulation "
                        "counts API calls, it does not measure the disk)")
    parser.add_argument("--verbose", action="store_true", help="show the services' log lines")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    choice = args.rotation_sizes.strip().lower()
    args.rotation_sizes = (set(args.sizes) if choice == "all" else set() if choice == "none"
                           else {int(s) for s in choice.split(",") if s.strip()})

    counter = CountingHandler()
    rng = random.Random(args.seed)
    started = time.perf_counter()
    results = []
    with scratch_database(synchronous_commit=args.sync_commit):
        root = logging.getLogger()  # django.setup() configured logging: adjust it now
        if not args.verbose:
            # Counted, not printed (a rotated password logs a warning per failed sample).
            for handler in list(root.handlers):
                root.removeHandler(handler)
        root.addHandler(counter)
        for n in args.sizes:
            print(f"N={n}: registering, then simulating {args.minutes:g} min ...", flush=True)
            results.extend(run_size(n=n, args=args, rng=rng, counter=counter))
    report(results, args, time.perf_counter() - started)
    return 0


def report(results, args, total_wall):
    steady = [r for r in results if r["kind"] == "steady"]
    rotation = [r for r in results if r["kind"] == "rotation"]
    print()
    print(f"Heroku API calls in steady state: {args.minutes:g} simulated minutes per size after {args.warmup_minutes:g} "
          f"min of warm-up (10 s dispatcher ticks, metric rate 60 s, 1-minute checks, steady low load, at most "
          f"{args.max_checks} checks run per tick), the hourly bulk reconciliation once;")
    print("calls/h = reconciliation + the rest scaled to 60 min. Original product: 60 / scaling-minutes calls per "
          "instance-hour (1-minute checks: 60, i.e. 6,000 per 100 instance-hours; 75 instances max per 4,500/h key).")
    head = (f"{'N':>6} | {'reg. calls':>10} {'reg. takes':>10} | {'window calls':>12} {'calls/h':>8} "
            f"{'per 100 inst-h':>14} {'of 4,500/h':>10} | {'original calls/h':>16} | {'wall s':>7}")
    print(head)
    print("-" * len(head))
    for row in steady:
        n = row["n"]
        hourly = per_hour(row, row["minutes"])
        print(f"{n:>6} | {row['reg_calls']:>10,} {_duration(row['reg_wait']):>10} | {len(row['calls']):>12} {hourly:>8.1f} "
              f"{100 * hourly / n:>14.3f} {100 * hourly / POOL_PER_HOUR:>9.2f}% | {60 * n:>16,} | "
              f"{row['reg_wall'] + row['wall']:>7.1f}")
    print()
    print("What was simulated:")
    for row in steady:
        s, t, p = row["stats"], row["timings"], row["phase_calls"]
        routes = collections.Counter(classify(c) for c in row["calls"])
        print(f"  N={row['n']}: {s['stored']:,} samples stored ({s['failed']} failed, {s['skipped']} skipped) of "
              f"{s['samples dispatched']:,} dispatched; checks dispatched {s['checks dispatched']:,}, run "
              f"{s['checks run']:,} ({100 * s['checks run'] / max(s['checks dispatched'], 1):.0f} %: {_outcomes(s)}); "
              f"reconciliation checked {s['reconcile checked']:,} instances")
        print(f"         calls by phase {dict(p)}, by route {dict(routes)}; registration: {row['reg_calls']:,} calls = "
              f"2 x {row['n']:,} + {row['reg_calls'] - 2 * row['n']} repeated after waiting for the reserve")
        print(f"         wall: registration {row['reg_wall']:.1f} s; window {row['wall']:.1f} s = dispatch {t['dispatch']:.1f} "
              f"+ collect {t['collect']:.1f} + checks {t['checks']:.1f} + reconcile {t['reconcile']:.1f} "
              f"({1000 * t['checks'] / max(s['checks run'], 1):.1f} ms per check, "
              f"{1000 * t['dispatch'] / max(s['samples dispatched'] + s['checks dispatched'], 1):.2f} ms per claimed slot); "
              f"warnings logged {sum(row['warnings'].values())}")
        if row["accounts"] > 1:
            hourly = per_hour(row, row["minutes"])
            share = {name: f"{calls} calls (~{hourly * calls / max(len(row['calls']), 1):.1f}/h)"
                     for name, calls in sorted(row["by_account"].items())}
            print(f"         {row['accounts']} accounts of {row['n'] // row['accounts']:,} instances: window calls by "
                  f"account {share}; each account's registration done after "
                  + ", ".join(f"{name} {_duration(sec)}" for name, sec in sorted(row["reg_finished"].items())))
    if rotation:
        print()
        print(f"Password rotation: {args.rotate_pct:g} % of the instances get a new password at random moments of a "
              f"{args.rotation_minutes:g}-minute window (reads with the old URL fail with 'auth')")
        head = (f"{'N':>6} | {'rotated':>7} {'auth errors':>11} {'refresh calls':>13} {'per rotation':>12} {'failed samples':>14} "
                f"{'still stale':>11} | {f'calls/h if {args.rotate_pct:g} %/h rotate':>23} {'per 100 inst-h':>14} | {'wall s':>7}")
        print(head)
        print("-" * len(head))
        for row in rotation:
            s, p = row["stats"], row["phase_calls"]
            refresh = p["collect"] + p["checks"] + p["dispatch"]
            per_rotation = refresh / max(row["rotated"], 1)
            steady_row = next((r for r in steady if r["n"] == row["n"]), None)
            base = per_hour(steady_row, steady_row["minutes"]) if steady_row else p["reconcile"]
            hourly = base + row["n"] * args.rotate_pct / 100 * per_rotation
            print(f"{row['n']:>6} | {row['rotated']:>7} {s['auth errors']:>11} {refresh:>13} {per_rotation:>12.2f} {s['failed']:>14} "
                  f"{s['still stale']:>11} | {hourly:>23.1f} {100 * hourly / row['n']:>14.3f} | {row['wall']:>7.1f}")
            routes = collections.Counter(classify(c) for c in row["calls"])
            print(f"         calls by route {dict(routes)}; {s['stored']:,} samples stored; "
                  f"warnings logged {row['warnings']}")
    print()
    if steady:
        worst = max(steady, key=lambda r: per_hour(r, r["minutes"]) / r["n"])
        biggest = max(steady, key=lambda r: r["n"])
        worst_rate = 100 * per_hour(worst, worst["minutes"]) / worst["n"]
        verdict = "within" if worst_rate <= 1 else "OVER"
        hourly = per_hour(biggest, biggest["minutes"])
        print(f"summary: steady state costs at most {worst_rate:.3f} Heroku calls per 100 instance-hours (N={worst['n']}; "
              f"{verdict} the 1-per-100 target); {biggest['n']:,} instances at 1-minute checks spend {hourly:.0f} of "
              f"4,500 calls/h where the original product would spend {60 * biggest['n']:,}/h; wall time {total_wall:.0f} s")


def _outcomes(stats):
    return ", ".join(f"{k[6:]} {v:,}" for k, v in sorted(stats.items()) if k.startswith("check ") and k != "checks run")


def _duration(seconds):
    if seconds <= 0:
        return "at once"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


if __name__ == "__main__":
    sys.exit(main())
