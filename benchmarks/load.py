"""Load: N registered instances with days of samples in PostgreSQL; the hot paths' cost.

    DJANGO_SETTINGS_MODULE=autoscaler.test_settings .venv/bin/python benchmarks/load.py \
        [--instances 5000] [--days 7] [--metric-rate 300] [--runs 7] [--baseline-seconds 5]

In a scratch PostgreSQL database (created, migrated, plans loaded, and dropped at the end
even after an error or Ctrl-C; see `_scratch_db.py`):

1. Data. --instances RedisInstance rows (bulk_create; heroku-redis plans, current between
   the min and max plan; metric rates 30 s / 1 min / 5 min in 40/40/20 %, scaling rates
   1/5/10 min; 90 % auto, 5 % dry run, 5 % scaling off; 1 % unreachable). Then --days of
   MetricLog history for every instance, one sample per --metric-rate seconds (the history
   is thinner than most instances' own rate, to keep the row count tractable), generated in
   SQL (`INSERT ... SELECT` over `generate_series`, in chunks of instances), with memory
   and connections following a daily wave per instance and 0.5 % failed reads. One instance
   ("heavy") gets its history at 30 s (20,160 samples a week): the worst case for its chart
   and its check. Two ScalingAction rows per instance. To load fast the table's secondary
   indexes and unique constraint are dropped during the load and rebuilt after it (the same
   definitions, read from the catalog), and foreign-key triggers are skipped in the loading
   session (`session_replication_role = replica`; the rows are generated from the instance
   table, so they are consistent by construction). Then VACUUM ANALYZE.
2. Measurements (each: one warm-up run, then --runs runs; queries counted with
   `CaptureQueriesContext`; median and p95 = nearest rank, i.e. the worst run for fewer
   than 20 runs):
   - the dispatcher's tick `due_work_dispatch`: "steady" = every instance's next sample and
     check put on its own grid (as the dispatcher leaves them) just after T, the tick at
     T + 10 s claims what falls due in those 10 s (about 1/3 of the 30 s instances, 1/6 of
     the 1 min, 1/30 of the 5 min ones, and likewise for checks); then a tick claiming N
     due samples and N due checks (only scaling-enabled instances' checks are claimed) for
     N in 100, 1,000 and every instance. The state is reset (and the small instance table
     vacuumed, as autovacuum would) before every run, untimed;
   - admin pages fetched with Django's test Client as a logged-in superuser (DEBUG off, as
     in production; the count includes the session and user lookups): the overview (default
     order, and sorted by memory), and the chart page of a typical and of the heavy
     instance at ?period=24h and ?period=7d;
   - the engine's decision `instance_decide` for the typical and the heavy instance;
   - the retention prune `metric_logs_prune(now=T, retention_days=days - 1)`, which removes
     the oldest day, while another thread inserts one MetricLog row per transaction (as
     collection stores a batch: `bulk_create(..., ignore_conflicts=True)` in `atomic()`),
     back to back, for --baseline-seconds before the prune, during it and a moment after:
     insert latency before vs during shows whether inserts are slowed; a third thread
     looks at the inserting backend in pg_stat_activity every 20 ms and counts what it waits
     on (a `Lock` wait would mean blocked by the prune), and every inserted row is checked
     to be stored.
3. Every statement slower than --slow-ms inside a measured run is listed with its SQL.

The dispatcher's runs VACUUM the instance table before each run because the server here
runs with autovacuum off (printed); in production autovacuum keeps that hot table clean.

Timings are wall-clock on this machine, PostgreSQL on the same host (no network). The
inserting thread shares the process (and Python's GIL) with the prune.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import random
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch_db import scratch_database  # noqa: E402

METRIC_RATES = ((30, 0.4), (60, 0.4), (300, 0.2))
SCALING_RATES = ((60, 0.5), (300, 0.3), (600, 0.2))
CURRENT_PLANS = ("heroku-redis:premium-0", "heroku-redis:premium-1", "heroku-redis:premium-2", "heroku-redis:premium-3")
MIN_PLANS = ("heroku-redis:mini", "heroku-redis:premium-0")
MAX_PLANS = ("heroku-redis:premium-5", "heroku-redis:premium-7")
HEAVY_RATE = 30
TICK = timedelta(seconds=10)
LOAD_BUDGET_SECONDS = 240  # loading beyond this is reported (the flags choose the size)
LOAD_CHUNK_ROWS = 1_000_000  # rows per INSERT ... SELECT (progress is printed per chunk)

results = []  # rows of the table: dict(what, queries, times, note)
slow_queries = []  # (what, ms, sql)


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def weighted(rng, choices):
    values, weights = zip(*choices)
    return rng.choices(values, weights=weights)[0]


def create_instances(*, n, now, rng):
    from scaling.models import RedisInstance, RedisPlan

    plans = {plan.plan_name: plan for plan in RedisPlan.objects.filter(service_name="heroku-redis")}
    rows = []
    for i in range(n):
        current = plans[CURRENT_PLANS[i % len(CURRENT_PLANS)]]
        low = plans[MIN_PLANS[i % 2]]
        if low.mem_limit > current.mem_limit:
            low = plans["heroku-redis:mini"]
        roll = rng.random()
        instance = RedisInstance(
            name=f"load-{i:05d}", app_name=f"load-{i:05d}-app", config_var="REDIS_URL",
            metric_rate=HEAVY_RATE if i == 0 else weighted(rng, METRIC_RATES),
            scaling_rate=weighted(rng, SCALING_RATES),
            scaling_enabled=roll >= 0.05, dry_run=0.05 <= roll < 0.10,
            current_plan=current, min_plan=low, max_plan=plans[MAX_PLANS[(i // 2) % 2]],
            addon_id=uuid.UUID(int=rng.getrandbits(128)), addon_name=f"redis-load-{i:05d}",
            resolved_at=now - timedelta(hours=rng.randint(1, 48)),
            plan_changed_at=now - timedelta(days=2, seconds=rng.randint(0, 86400)),
            consecutive_failures=3 if rng.random() < 0.01 else 0,
            notify_breach=False, notify_success=False,
        )
        instance.redis_url = f"redis://default:p{uuid.UUID(int=rng.getrandbits(128)).hex}@redis-{i}.load.test:6379"
        rows.append(instance)
    created = RedisInstance.objects.bulk_create(rows, batch_size=1000)
    return [instance.pk for instance in created]


# One sample per `rate` seconds per instance from `start` to `end` (each instance shifted by
# its phase), memory and connections on a daily wave, 0.5 % failed reads. `%%` is a literal %.
_HISTORY_SQL = """
INSERT INTO logs_metriclog (instance_id, slot, collected_at, plan_id, used_memory, maxmemory, connected_clients,
                            maxclients, memory_pct, connection_pct, evicted_keys, rejected_connections, ops_per_sec,
                            error_kind, error, warnings)
SELECT i.id, g.slot, g.slot + interval '150 milliseconds', i.current_plan_id,
       CASE WHEN w.failed THEN NULL ELSE (w.mem / 100.0 * p.mem_limit * 1048576)::bigint END,
       CASE WHEN w.failed THEN NULL ELSE p.mem_limit::bigint * 1048576 END,
       CASE WHEN w.failed THEN NULL ELSE w.clients END,
       CASE WHEN w.failed THEN NULL ELSE greatest(p.conn_limit, 10000) END,
       CASE WHEN w.failed THEN NULL ELSE round(w.mem::numeric, 3)::float8 END,
       CASE WHEN w.failed OR p.conn_limit <= 0 THEN NULL ELSE round(100.0 * w.clients / p.conn_limit, 3)::float8 END,
       CASE WHEN w.failed THEN NULL ELSE 0 END,
       CASE WHEN w.failed THEN NULL ELSE 0 END,
       CASE WHEN w.failed THEN NULL ELSE 100 + (i.id * 13) %% 900 END,
       CASE WHEN w.failed THEN 'timeout' ELSE '' END,
       CASE WHEN w.failed THEN 'timeout: the server did not answer INFO within 5 s' ELSE '' END,
       ''
FROM scaling_redisinstance i
JOIN scaling_redisplan p ON p.id = i.current_plan_id
CROSS JOIN LATERAL (
    SELECT CASE WHEN i.id = %(heavy)s THEN %(heavy_rate)s ELSE %(rate)s END AS rate
) r
CROSS JOIN LATERAL generate_series(
    %(start)s::timestamptz + make_interval(secs => (i.id * 7919) %% r.rate),
    %(end)s::timestamptz, make_interval(secs => r.rate)) AS g(slot)
CROSS JOIN LATERAL (
    SELECT greatest(1.0, least(99.0, 12 + (i.id * 37) %% 60
                    + 12 * sin(extract(epoch FROM g.slot) / 86400.0 * 2 * pi() + i.id))) AS mem,
           greatest(0, round(greatest(p.conn_limit, 1) * (10 + (i.id * 53) %% 55
                    + 10 * sin(extract(epoch FROM g.slot) / 86400.0 * 2 * pi() + i.id + 1)) / 100.0))::int AS clients,
           random() < 0.005 AS failed
) w
WHERE i.id BETWEEN %(lo)s AND %(hi)s
"""

# Two plan changes per instance, two and four days ago (the current plan came from the
# min or the max plan); every tenth second one failed.
_ACTIONS_SQL = """
INSERT INTO logs_scalingaction (instance_id, instance_name, created_at, patch_sent_at, finished_at, from_plan_id,
                                to_plan_id, direction, reason, status, error, retry_not_before)
SELECT i.id, i.name, t.at, t.at + interval '1 second', t.at + interval '3 minutes',
       CASE WHEN i.current_plan_id <> i.min_plan_id THEN i.min_plan_id ELSE i.max_plan_id END,
       i.current_plan_id,
       CASE WHEN i.current_plan_id <> i.min_plan_id THEN 'up' ELSE 'down' END,
       'memory at 84.2 %% of the plan (threshold 80 %%) for 5 minutes: scale up',
       CASE WHEN k = 2 AND i.id %% 10 = 0 THEN 'failed' WHEN i.dry_run THEN 'dry-run' ELSE 'succeeded' END,
       CASE WHEN k = 2 AND i.id %% 10 = 0 THEN 'Heroku answered 422: plan change not allowed' ELSE '' END,
       NULL
FROM scaling_redisinstance i
CROSS JOIN generate_series(1, 2) AS k
CROSS JOIN LATERAL (SELECT %(now)s::timestamptz - k * interval '2 days' - (i.id %% 3600) * interval '1 second' AS at) t
"""


def _load_chunks(chunks, *, heavy, start, end, rate, progress, stop):
    """Run in a thread (its own database connection): insert the history of each chunk of ids."""
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")  # no FK triggers while loading
            for part in chunks:
                if stop.is_set():
                    return
                cursor.execute(_HISTORY_SQL, dict(heavy=heavy, heavy_rate=HEAVY_RATE, rate=rate, start=start, end=end,
                                                  lo=part[0], hi=part[-1]))
                progress(len(part), cursor.rowcount)
    finally:
        connection.close()


def load_history(*, ids, heavy, start, end, rate, workers):
    """The samples of every instance, in chunks of about LOAD_CHUNK_ROWS rows, on `workers`
    connections at once (the insert is CPU-bound in PostgreSQL: one backend per core)."""
    per_instance = math.ceil((end - start).total_seconds() / rate)
    size = max(1, LOAD_CHUNK_ROWS // per_instance)
    ids = sorted(ids)
    chunks = [ids[first : first + size] for first in range(0, len(ids), size)]
    done = {"instances": 0, "rows": 0}
    lock = threading.Lock()
    started = time.perf_counter()

    def progress(instances, rows):
        with lock:
            done["instances"] += instances
            done["rows"] += rows
            elapsed = time.perf_counter() - started
            print(f"  samples: {done['rows']:>12,} rows ({done['instances']:,}/{len(ids):,} instances) in {elapsed:5.0f} s "
                  f"({done['rows'] / max(elapsed, 1e-9):,.0f} rows/s)", flush=True)

    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_load_chunks, chunks[w::workers], heavy=heavy, start=start, end=end, rate=rate,
                               progress=progress, stop=stop) for w in range(workers)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            stop.set()  # an error or Ctrl-C: the other connections finish their current chunk only
            raise
    return done["rows"]


def build_data(args, rng):
    from django.db import connection
    from django.utils import timezone

    from logs.models import MetricLog, ScalingAction

    timings = {}
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(days=args.days)
    t0 = time.perf_counter()
    ids = create_instances(n=args.instances, now=now, rng=rng)
    timings["instances"] = time.perf_counter() - t0
    heavy = ids[0]
    print(f"  {len(ids):,} instances in {timings['instances']:.1f} s", flush=True)

    table = MetricLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("""SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
                          WHERE conrelid = %s::regclass AND contype = 'u'""", [table])
        uniques = cursor.fetchall()
        cursor.execute("""SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
                          WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
                            AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""", [table])
        indexes = cursor.fetchall()
        t0 = time.perf_counter()
        for name, _ in uniques:
            cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        samples = load_history(ids=ids, heavy=heavy, start=start, end=now, rate=args.metric_rate,
                               workers=args.load_workers)
        timings["samples"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in uniques:
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
        cursor.execute("RESET maintenance_work_mem")
        timings["indexes"] = time.perf_counter() - t0
        print(f"  {len(indexes)} indexes and {len(uniques)} unique constraint rebuilt in {timings['indexes']:.1f} s",
              flush=True)
        t0 = time.perf_counter()
        cursor.execute(_ACTIONS_SQL, dict(now=now))
        actions = cursor.rowcount
        timings["actions"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        timings["vacuum"] = time.perf_counter() - t0
        # Write the load's dirty pages out now, so that no checkpoint runs under the measurements.
        t0 = time.perf_counter()
        cursor.execute("CHECKPOINT")
        timings["checkpoint"] = time.perf_counter() - t0
        print(f"  {actions:,} scaling actions in {timings['actions']:.1f} s; VACUUM ANALYZE in {timings['vacuum']:.1f} s",
              flush=True)
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size(%s::regclass)), "
                       "pg_size_pretty(pg_database_size(current_database()))", [table])
        table_size, db_size = cursor.fetchone()
        cursor.execute("SELECT current_setting('server_version'), current_setting('shared_buffers'), "
                       "current_setting('autovacuum'), current_setting('synchronous_commit')")
        server = "PostgreSQL {} (shared_buffers {}, autovacuum {}, synchronous_commit {})".format(*cursor.fetchone())
    assert MetricLog.objects.filter(instance_id=heavy).count() >= args.days * 86400 // HEAVY_RATE
    assert ScalingAction.objects.count() == actions
    return dict(now=now, start=start, ids=ids, heavy=heavy, samples=samples, actions=actions, timings=timings,
                table_size=table_size, db_size=db_size, server=server)


# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------


_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def statements(captured):
    """The SQL statements of a CaptureQueriesContext, without transaction control (BEGIN, COMMIT, ...)."""
    return [q for q in captured.captured_queries if not q["sql"].strip().upper().startswith(_CONTROL)]


def p95(values):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def measure(what, fn, *, runs, setup=None, slow_ms=100.0, note=""):
    """One warm-up run, then `runs` runs of fn() (setup() before each, untimed)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, sql_times, top_times, counts, last = [], [], [], [], None
    for run in range(runs + 1):
        if setup:
            setup()
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            last = fn()
            elapsed = time.perf_counter() - t0
        if run == 0:
            continue  # warm-up
        times.append(elapsed * 1000)
        counts.append(len(statements(captured)))
        sql_times.append(sum(float(q["time"]) for q in statements(captured)) * 1000)
        top_times.append(max((float(q["time"]) for q in statements(captured)), default=0) * 1000)
        for query in statements(captured):
            ms = float(query["time"]) * 1000
            if ms >= slow_ms:
                slow_queries.append((what, ms, query["sql"]))
    queries = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
    results.append(dict(what=what, queries=queries, median=statistics.median(times), p95=p95(times),
                        sql=statistics.median(sql_times), top=statistics.median(top_times), note=note))
    print(f"  {what}: {queries} queries, median {statistics.median(times):.1f} ms (SQL {statistics.median(sql_times):.1f}), "
          f"p95 {p95(times):.1f} ms"
          + (f"  [{note}]" if note else ""), flush=True)
    return last


# Every instance's next slot (sample and check) on its own grid, first after %(after)s: the
# dispatcher's own formula (scaling.services.dispatch._CLAIM_SQL).
_GRID_SQL = """
UPDATE scaling_redisinstance SET
  next_sample_at = to_timestamp(sb + (floor((EXTRACT(EPOCH FROM %(after)s::timestamptz) - sb) / metric_rate) + 1) * metric_rate),
  next_check_at = to_timestamp(cb + (floor((EXTRACT(EPOCH FROM %(after)s::timestamptz) - cb) / scaling_rate) + 1) * scaling_rate),
  check_claimed_until = NULL
FROM (SELECT id AS iid,
             EXTRACT(EPOCH FROM %(epoch)s::timestamptz) + (id * %(prime)s) %% metric_rate AS sb,
             EXTRACT(EPOCH FROM %(epoch)s::timestamptz) + (id * %(prime)s) %% scaling_rate AS cb
      FROM scaling_redisinstance) AS b
WHERE id = b.iid
"""


def bench_dispatch(data, args, rng):
    from django.db import connection

    from scaling.services.dispatch import EPOCH, PHASE_PRIME, due_work_dispatch

    base = data["now"]
    claimed = {}

    def vacuum():
        with connection.cursor() as cursor:
            cursor.execute("VACUUM scaling_redisinstance")

    def grid():
        with connection.cursor() as cursor:
            cursor.execute(_GRID_SQL, dict(after=base, epoch=EPOCH, prime=PHASE_PRIME))
        vacuum()

    def tick():
        batches, checks = [], []
        result = due_work_dispatch(now=base + TICK, enqueue_samples=batches.append,
                                   enqueue_check=lambda pk, slot: checks.append(pk))
        assert result.samples == sum(len(b) for b in batches) and result.checks == len(checks)
        claimed["samples"], claimed["checks"], claimed["batches"] = result.samples, result.checks, len(batches)
        return result

    result = measure("dispatcher tick, steady", tick, runs=args.runs, setup=grid, slow_ms=args.slow_ms)
    results[-1]["note"] = f"claims {result.samples:,} samples ({claimed['batches']} batches) + {result.checks:,} checks"
    print(f"    {results[-1]['note']}")
    steady = result

    ids = data["ids"]
    for n in sorted({min(100, len(ids)), min(1000, len(ids)), len(ids)}):
        due = rng.sample(ids, n)

        def make_due(due=due):
            with connection.cursor() as cursor:
                cursor.execute("UPDATE scaling_redisinstance SET next_sample_at = %(later)s, next_check_at = %(later)s, "
                               "check_claimed_until = NULL", dict(later=base + timedelta(hours=1)))
                cursor.execute("UPDATE scaling_redisinstance SET next_sample_at = %(due)s, next_check_at = %(due)s "
                               "WHERE id = ANY(%(ids)s)", dict(due=base, ids=due))
            vacuum()

        result = measure(f"dispatcher tick, {n:,} due", tick, runs=args.runs, setup=make_due, slow_ms=args.slow_ms)
        results[-1]["note"] = f"claims {result.samples:,} samples + {result.checks:,} checks"
    return steady


def bench_pages(data, args):
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user = get_user_model().objects.create_superuser(username="bench-admin", email="bench@example.com", password=None)
    client = Client()
    client.force_login(user)

    def page(url):
        def get():
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return response
        return get

    from logs.models import MetricLog

    heavy, typical = data["heavy"], data["ids"][len(data["ids"]) // 2]
    counts = {pk: MetricLog.objects.filter(instance_id=pk).count() for pk in (heavy, typical)}
    pages = [
        ("admin overview (100 rows, by state)", "/admin/scaling/redisinstance/overview/", ""),
        ("admin overview ?o=memory", "/admin/scaling/redisinstance/overview/?o=memory", ""),
        ("chart ?period=24h, typical", f"/admin/scaling/redisinstance/{typical}/chart/?period=24h", f"{counts[typical]:,} samples/week"),
        ("chart ?period=7d, typical", f"/admin/scaling/redisinstance/{typical}/chart/?period=7d", f"{counts[typical]:,} samples/week"),
        ("chart ?period=24h, heavy", f"/admin/scaling/redisinstance/{heavy}/chart/?period=24h", f"{counts[heavy]:,} samples/week"),
        ("chart ?period=7d, heavy", f"/admin/scaling/redisinstance/{heavy}/chart/?period=7d", f"{counts[heavy]:,} samples/week"),
    ]
    sizes = {}
    for what, url, note in pages:
        response = measure(what, page(url), runs=args.runs, slow_ms=args.slow_ms, note=note)
        sizes[what] = len(response.content)

    from django.utils import timezone

    from logs import selectors

    totals = selectors.overview_totals(selectors.instances_ranked(now=timezone.now()))
    print(f"    overview states: {totals.by_state}; modes: {totals.by_mode}")
    print("    page sizes: " + ", ".join(f"{what} {size / 1024:.0f} KiB" for what, size in sizes.items()))
    return totals


def bench_checks(data, args):
    from scaling.models import RedisInstance
    from scaling.services.checks import instance_decide

    decisions = {}
    for label, pk in (("typical", data["ids"][len(data["ids"]) // 2]), ("heavy", data["heavy"])):
        instance = RedisInstance.objects.with_plans().get(pk=pk)

        def decide(instance=instance):
            return instance_decide(instance=instance, now=data["now"])

        decision = measure(f"engine check (instance_decide), {label}", decide, runs=args.runs, slow_ms=args.slow_ms,
                           note=f"metric rate history {HEAVY_RATE if pk == data['heavy'] else args.metric_rate} s")
        decisions[label] = decision
        print(f"    decision: {decision.action} ({decision.reason[:110]})")
    return decisions


class Inserter(threading.Thread):
    """Inserts one MetricLog row per transaction, back to back, timing each insert."""

    def __init__(self, *, instance_ids, slot_base, seed):
        super().__init__(name="inserter", daemon=True)
        self.instance_ids = instance_ids
        self.slot_base = slot_base
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.phase = "before"
        self.latencies = {"before": [], "during": [], "after": []}
        self.error = None
        self.pid = None
        self.ready = threading.Event()

    def run(self):
        from django.db import connection, transaction
        from django.utils import timezone

        from logs.models import MetricLog
        from scaling.models import RedisInstance

        try:
            instances = list(RedisInstance.objects.with_plans().filter(pk__in=self.instance_ids))
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.ready.set()
            n = 0
            while not self.stop.is_set():
                instance = self.rng.choice(instances)
                n += 1
                plan = instance.current_plan
                used = int(plan.mem_limit_bytes * 0.4)
                log = MetricLog(instance=instance, slot=self.slot_base + timedelta(seconds=n), collected_at=timezone.now(),
                                plan=plan, used_memory=used, maxmemory=plan.mem_limit_bytes, connected_clients=5,
                                maxclients=10000, memory_pct=40.0, connection_pct=100.0 * 5 / max(plan.conn_limit, 1),
                                evicted_keys=0, rejected_connections=0, ops_per_sec=100)
                phase = self.phase
                t0 = time.perf_counter()
                with transaction.atomic():
                    MetricLog.objects.bulk_create([log], ignore_conflicts=True)
                self.latencies[phase].append((time.perf_counter() - t0) * 1000)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self.error = error
        finally:
            self.inserted = n
            self.ready.set()
            connection.close()


class Watcher(threading.Thread):
    """Samples what the inserting backend is doing (pg_stat_activity) every `interval` s:
    running, or waiting and on what (a wait_event_type of 'Lock' would mean blocked by a lock)."""

    def __init__(self, *, inserter, interval=0.02):
        super().__init__(name="watcher", daemon=True)
        self.inserter = inserter
        self.interval = interval
        self.stop = threading.Event()
        self.seen = {"before": collections.Counter(), "during": collections.Counter(), "after": collections.Counter()}
        self.error = None

    def run(self):
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                while not self.stop.is_set():
                    phase = self.inserter.phase
                    cursor.execute("SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE pid = %s",
                                   [self.inserter.pid])
                    row = cursor.fetchone()
                    if row:
                        state, kind, event = row
                        label = (f"{kind}:{event}" if kind else "on CPU") if state == "active" else "between statements"
                        self.seen[phase][label] += 1
                    time.sleep(self.interval)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self.error = error
        finally:
            connection.close()


def bench_prune(data, args):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from logs.models import MetricLog
    from logs.services import metric_logs_prune

    retention = args.days - 1
    cutoff = data["now"] - timedelta(days=retention)
    expected = MetricLog.objects.filter(collected_at__lt=cutoff).count()
    inserter = Inserter(instance_ids=data["ids"][:500], slot_base=data["now"] + timedelta(days=1), seed=args.seed)
    inserter.start()
    inserter.ready.wait(timeout=30)
    watcher = Watcher(inserter=inserter)
    watcher.start()
    try:
        time.sleep(args.baseline_seconds)
        inserter.phase = "during"
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            result = metric_logs_prune(now=data["now"], retention_days=retention)
            elapsed = time.perf_counter() - t0
        inserter.phase = "after"
        time.sleep(1)
    finally:
        watcher.stop.set()
        inserter.stop.set()
        inserter.join(timeout=30)
        watcher.join(timeout=30)
    for thread in (inserter, watcher):
        if thread.error:
            raise RuntimeError(f"the {thread.name} thread failed: {thread.error!r}") from thread.error
    stored = MetricLog.objects.filter(slot__gte=inserter.slot_base).count()
    assert stored == inserter.inserted, (stored, inserter.inserted)
    query_ms = [float(q["time"]) * 1000 for q in statements(captured)]
    selects = [float(q["time"]) * 1000 for q in statements(captured) if q["sql"].lstrip().upper().startswith("SELECT")]
    deletes = [float(q["time"]) * 1000 for q in statements(captured) if q["sql"].lstrip().upper().startswith("DELETE")]
    for query in statements(captured):
        if float(query["time"]) * 1000 >= args.slow_ms * 5:
            slow_queries.append(("retention prune", float(query["time"]) * 1000, query["sql"]))
    results.append(dict(what=f"retention prune of 1 day ({result.deleted:,} rows)", queries=f"{len(query_ms)}",
                        median=elapsed * 1000, p95=elapsed * 1000, sql=sum(query_ms), top=max(query_ms or [0]),
                        note=f"{result.batches} batches, 1 run"))
    assert result.deleted == expected, (result.deleted, expected)
    stats = {}
    for phase in ("before", "during"):
        values = inserter.latencies[phase]
        seconds = args.baseline_seconds if phase == "before" else elapsed
        stats[phase] = dict(count=len(values), rate=len(values) / max(seconds, 1e-9),
                            median=statistics.median(values) if values else float("nan"),
                            p95=p95(values) if values else float("nan"), max=max(values) if values else float("nan"))
    tenth = max(1, len(selects) // 10)
    return dict(result=result, elapsed=elapsed, expected=expected, inserts=stats, queries=len(query_ms),
                max_query=max(query_ms or [0]), sql=sum(query_ms), selects=selects, deletes=deletes, tenth=tenth,
                seen=watcher.seen, stored=stored)


# ---------------------------------------------------------------------------------------


def report(data, prune, args, total_wall):
    print()
    print(f"Data: {args.instances:,} instances, {data['samples']:,} MetricLog rows ({args.days} days at one sample per "
          f"{args.metric_rate} s; the heavy instance at {HEAVY_RATE} s), {data['actions']:,} ScalingAction rows; "
          f"metric log table {data['table_size']}, database {data['db_size']}")
    print(f"Server: {data['server']}; this machine: {os.cpu_count()} cores")
    t = data["timings"]
    load = t["samples"] + t["indexes"]
    print(f"Load: instances {t['instances']:.1f} s, samples {t['samples']:.1f} s "
          f"({data['samples'] / max(t['samples'], 1e-9):,.0f} rows/s on {args.load_workers} connections), index rebuild "
          f"{t['indexes']:.1f} s, actions {t['actions']:.1f} s, VACUUM ANALYZE {t['vacuum']:.1f} s, CHECKPOINT "
          f"{t['checkpoint']:.1f} s")
    if load > LOAD_BUDGET_SECONDS:
        print(f"NOTE: loading the samples took {load:.0f} s, over the {LOAD_BUDGET_SECONDS} s budget: choose fewer rows "
              f"(--instances, --days or a longer --metric-rate) for a quicker run")
    else:
        print(f"The requested size was loaded whole ({load:.0f} s for samples and indexes, within the "
              f"{LOAD_BUDGET_SECONDS} s budget; nothing was scaled down)")
    print()
    width = max(len(r["what"]) for r in results)
    head = f"{'what':<{width}} | {'queries':>7} | {'median ms':>9} | {'of it SQL':>9} | {'top stmt':>8} | {'p95 ms':>8} | note"
    print(head)
    print("-" * (len(head) + 40))
    for row in results:
        print(f"{row['what']:<{width}} | {row['queries']:>7} | {row['median']:>9.1f} | {row['sql']:>9.1f} | {row['top']:>8.1f} | {row['p95']:>8.1f} "
              f"| {row['note']}")
    print(f"(queries = SQL statements sent, BEGIN/COMMIT not counted, the pages' including the session and user lookups; "
          f"'of it SQL' = the median run's time in those statements as Django measures it (1 ms resolution), the rest is "
          f"Python: ORM, templates; 'top stmt' = the slowest statement's time (median over runs); median and p95 over {args.runs} runs after one warm-up, p95 = nearest rank; the prune is a single run)")
    print()
    ins = prune["inserts"]
    print(f"Retention prune: {prune['result'].deleted:,} rows deleted (expected {prune['expected']:,}) in "
          f"{prune['elapsed']:.1f} s, {prune['result'].batches} batches of up to 5,000, {prune['queries']} queries, "
          f"{prune['sql'] / 1000:.1f} s of it in SQL, longest statement {prune['max_query']:.0f} ms")
    sel, dele, k = prune["selects"], prune["deletes"], prune["tenth"]
    if sel and dele:
        print(f"  per batch: SELECT of the next ids median {statistics.median(sel):.0f} ms (first {k} batches "
              f"{statistics.median(sel[:k]):.0f} ms, last {k} {statistics.median(sel[-k:]):.0f} ms), DELETE median "
              f"{statistics.median(dele):.0f} ms (first {k} {statistics.median(dele[:k]):.0f} ms, last {k} "
              f"{statistics.median(dele[-k:]):.0f} ms), max {max(dele):.0f} ms")
    print(f"{'single-row inserts (own thread)':<34} | {'count':>6} | {'per s':>6} | {'median ms':>9} | {'p95 ms':>7} | {'max ms':>7}")
    for phase, label in (("before", f"before the prune ({args.baseline_seconds:g} s)"), ("during", "during the prune")):
        s = ins[phase]
        print(f"{label:<34} | {s['count']:>6,} | {s['rate']:>6.0f} | {s['median']:>9.2f} | {s['p95']:>7.2f} | {s['max']:>7.1f}")
    print(f"  all {prune['stored']:,} rows inserted by the thread are stored")
    for phase in ("before", "during"):
        seen = prune["seen"][phase]
        total = sum(seen.values()) or 1
        locks = sum(n for label, n in seen.items() if label.startswith("Lock:"))
        print(f"  inserting backend {phase} the prune, {sum(seen.values())} looks at pg_stat_activity every 20 ms: "
              f"waiting on a lock {locks} times; " + ", ".join(f"{label} {100 * n / total:.0f} %" for label, n in seen.most_common(6)))
    if slow_queries:
        print()
        print(f"Statements slower than {args.slow_ms:g} ms in measured runs (prune: {5 * args.slow_ms:g} ms), slowest first, one per page/step:")
        seen = set()
        for what, ms, sql in sorted(slow_queries, key=lambda q: -q[1]):
            if what in seen:
                continue
            seen.add(what)
            print(f"  {what}: {ms:.0f} ms: {' '.join(sql.split())[:600]}")
    print()
    by = {r["what"]: r for r in results}
    worst_page = max((r for r in results if r["what"].startswith(("admin", "chart"))), key=lambda r: r["p95"])
    steady = by["dispatcher tick, steady"]
    blocked = ins["during"]["max"]
    print(f"summary: {args.instances:,} instances, {data['samples'] / 1e6:.2f} M samples ({args.days} d at {args.metric_rate} s); "
          f"steady tick p95 {steady['p95']:.0f} ms in {steady['queries']} queries ({steady['note']}); "
          f"tick of all {args.instances:,} due p95 {by[f'dispatcher tick, {args.instances:,} due']['p95']:.0f} ms; "
          f"slowest admin page p95 {worst_page['p95']:.0f} ms ({worst_page['what']}, {worst_page['queries']} queries); "
          f"prune {prune['result'].deleted:,} rows in {prune['elapsed']:.0f} s while {ins['during']['count']:,} single-row inserts "
          f"ran (p95 {ins['during']['p95']:.1f} ms vs {ins['before']['p95']:.1f} ms before, max {blocked:.0f} ms); "
          f"wall {total_wall:.0f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=5000, help="registered instances (default 5000)")
    parser.add_argument("--days", type=int, default=7, help="days of sample history (default 7; at least 2)")
    parser.add_argument("--metric-rate", type=int, default=300,
                        help="seconds between generated history samples per instance (default 300: 2,016 a week)")
    parser.add_argument("--runs", type=int, default=7, help="measured runs per item, after one warm-up (default 7)")
    parser.add_argument("--baseline-seconds", type=float, default=5,
                        help="seconds of inserts measured before the prune starts (default 5)")
    parser.add_argument("--slow-ms", type=float, default=50, help="list statements slower than this (default 50)")
    parser.add_argument("--load-workers", type=int, default=2,
                        help="connections inserting the history at once (default 2: one per core here)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.days < 2 or args.instances < 1 or args.metric_rate < 1:
        parser.error("--days must be at least 2, --instances and --metric-rate at least 1")

    from django.conf import settings

    settings.DEBUG = False  # as in production: no query log, no template debug
    rng = random.Random(args.seed)
    started = time.perf_counter()
    expected = args.instances * math.ceil(args.days * 86400 / args.metric_rate)
    print(f"load benchmark: {args.instances:,} instances, {args.days} days of samples at {args.metric_rate} s "
          f"(~{expected / 1e6:.1f} M rows)", flush=True)
    with scratch_database(prefix="autoscaler_load"):
        import logging

        logging.disable(logging.WARNING)  # the services' log lines are not the point here
        print("loading ...", flush=True)
        data = build_data(args, rng)
        print("measuring ...", flush=True)
        bench_pages(data, args)
        bench_checks(data, args)
        bench_dispatch(data, args, rng)
        print("  retention prune with concurrent inserts ...", flush=True)
        prune = bench_prune(data, args)
        report(data, prune, args, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
