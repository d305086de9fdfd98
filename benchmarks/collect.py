"""Samples per second one worker process sustains against real Redis servers 50 ms away.

    DJANGO_SETTINGS_MODULE=autoscaler.test_settings .venv/bin/python benchmarks/collect.py \
        [--sizes 50,200,500,1000,2000] [--servers 8] [--delay 0.025] [--rounds 2]

Setting
    --servers real ``redis-server`` processes (password set, like Heroku's), each reached
    through delay proxies (``benchmarks/collect_proxy.py``, ``DelayProxy``) that add
    --delay seconds each way (default 25 ms: a 50 ms round trip). The proxies run in a
    separate process (``--proxy-in-process`` to run them inside the measured one), at most
    --per-proxy connections each, so N instances spread over ceil(N / per-proxy) proxy
    ports. Every instance has its own URL and so its own connection in the reader: N
    instances = N connections.

    N instances are registered in a scratch PostgreSQL database (created and dropped by
    the script) as registration leaves them: add-on id set, Redis URL stored encrypted,
    metric rate 30 s. No Heroku call is needed (and none is allowed: the Heroku base URL
    is unreachable, a refresh would show up as failed samples).

What is measured
    One worker as deployed (``celery worker --pool threads --concurrency 8``): a
    ``ThreadPoolExecutor(8)`` runs ``samples_collect`` over batches of 25 (the
    dispatcher's COLLECT_BATCH), each batch reading through the process's shared read
    pool and reader (``scaling.services.collection``), storing MetricLog rows. A warm-up
    round opens every connection; then each measured round samples every instance once
    (a fresh slot) and its wall time gives samples/s. A 30 s metric rate needs N / 30
    samples/s: "on time" when a round takes at most 30 s. After each round the script
    checks that N MetricLog rows were stored for the slot and all are ok.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import resource
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch_db import reset_instances, scratch_database  # noqa: E402
from collect_proxy import DelayProxy  # noqa: E402

PLAN = "heroku-redis:premium-0"
MAX_PLAN = "heroku-redis:premium-5"


def raise_open_file_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        print(f"warning: open-file limit {soft} < {needed} needed; raise `ulimit -n`", flush=True)
    return soft


# --- proxies (in a child process by default) ------------------------------------------


def _proxy_host(targets, delay, max_connections, conn):
    """Child process: one DelayProxy per target port; sends the ports, waits for 'stop'."""
    raise_open_file_limit(0)
    proxies = []
    try:
        for target in targets:
            proxy = DelayProxy(target, delay, max_connections=max_connections)
            proxy.start()
            proxies.append(proxy)
        conn.send([proxy.port for proxy in proxies])
        conn.recv()  # anything (or EOF) means stop
    except EOFError:
        pass
    finally:
        for proxy in proxies:
            proxy.stop()


@contextlib.contextmanager
def delay_proxies(targets, delay, max_connections, in_process):
    if in_process:
        proxies = [DelayProxy(t, delay, max_connections=max_connections) for t in targets]
        try:
            yield [proxy.start() for proxy in proxies]
        finally:
            for proxy in proxies:
                proxy.stop()
        return
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_proxy_host, args=(targets, delay, max_connections, child), daemon=True)
    process.start()
    try:
        if not parent.poll(30):
            raise RuntimeError("the proxy process did not start")
        yield parent.recv()
    finally:
        with contextlib.suppress(Exception):
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join(5)


# --- measuring ----------------------------------------------------------------------------


class TimedReader:
    """Delegates to the worker's reader and records how long each read took."""

    def __init__(self, reader):
        self.reader = reader
        self.durations = []
        self._lock = threading.Lock()

    def read(self, key, url):
        started = time.perf_counter()
        try:
            return self.reader.read(key, url)
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self.durations.append(elapsed)


def register(n, urls, plans):
    from django.utils import timezone

    from scaling.models import RedisInstance

    now = timezone.now()
    rows = []
    for i in range(n):
        instance = RedisInstance(
            name=f"bench-{i:05d}", app_name=f"bench-{i:05d}-app", config_var="REDIS_URL",
            current_plan=plans[PLAN], min_plan=plans[PLAN], max_plan=plans[MAX_PLAN],
            metric_rate=30, scaling_rate=60, addon_id=uuid.uuid4(), addon_name=f"redis-bench-{i:05d}",
            resolved_at=now,
        )
        instance.redis_url = urls[i % len(urls)]
        rows.append(instance)
    RedisInstance.objects.bulk_create(rows, batch_size=1000)
    return list(RedisInstance.objects.order_by("pk").values_list("pk", flat=True))


def one_round(*, pks, pool, reader, batch_size):
    """Every instance sampled once, as the worker's threads would; returns (slot, seconds, results)."""
    from django.utils import timezone

    from scaling.services.collection import samples_collect

    slot = timezone.now()
    due = [(pk, slot) for pk in pks]
    batches = [due[start:start + batch_size] for start in range(0, len(due), batch_size)]
    reader.durations.clear()
    started = time.perf_counter()
    results = list(pool.map(lambda batch: samples_collect(due=batch, reader=reader), batches))
    return slot, time.perf_counter() - started, results


def verify(slot, n):
    from logs.models import MetricLog

    rows = MetricLog.objects.filter(slot=slot)
    stored = rows.count()
    failed = rows.exclude(error="").count()
    without_data = rows.filter(error="", used_memory__isnull=True).count()
    problems = []
    if stored != n:
        problems.append(f"{stored} rows stored, expected {n}")
    if failed:
        sample = rows.exclude(error="").values_list("error_kind", "error").first()
        problems.append(f"{failed} failed (e.g. {sample[0]}: {sample[1][:120]})")
    if without_data:
        problems.append(f"{without_data} ok rows without used_memory")
    return stored, failed, problems


def close_thread_connections(pool, threads):
    from django.db import connection

    barrier = threading.Barrier(threads)

    def close(_):
        barrier.wait(10)  # one task per pool thread
        connection.close()

    with contextlib.suppress(Exception):
        list(pool.map(close, range(threads)))


def run_size(*, n, args, urls, plans):
    from scaling.services.collection import metrics_reader

    reset_instances()
    pks = register(n, urls, plans)
    worker_reader = metrics_reader()  # the process's reader, as in the worker
    worker_reader.close_all()
    reader = TimedReader(worker_reader)
    rounds = []
    with ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="worker") as pool:
        slot, warmup_seconds, _ = one_round(pks=pks, pool=pool, reader=reader, batch_size=args.batch)
        stored, failed, problems = verify(slot, n)
        if problems:
            print(f"  N={n} warm-up round: " + "; ".join(problems), flush=True)
        for _ in range(args.rounds):
            time.sleep(args.pause)
            slot, seconds, _ = one_round(pks=pks, pool=pool, reader=reader, batch_size=args.batch)
            stored, failed, problems = verify(slot, n)
            durations = sorted(reader.durations)
            rounds.append(dict(
                seconds=seconds, stored=stored, failed=failed, problems=problems,
                read_median=statistics.median(durations) if durations else float("nan"),
                read_p95=durations[int(0.95 * (len(durations) - 1))] if durations else float("nan"),
            ))
            print(f"  N={n}: round {seconds:.2f} s, {stored} stored, {failed} failed"
                  + (f" -- {'; '.join(problems)}" if problems else ""), flush=True)
        close_thread_connections(pool, args.threads)
    connections = len(worker_reader._entries)
    worker_reader.close_all()
    return dict(n=n, warmup=warmup_seconds, rounds=rounds, connections=connections)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,200,500,1000,2000", help="instance counts (default 50,200,500,1000,2000)")
    parser.add_argument("--servers", type=int, default=8, help="redis-server processes (default 8)")
    parser.add_argument("--delay", type=float, default=0.025, help="one-way delay in seconds (default 0.025: 50 ms RTT)")
    parser.add_argument("--per-proxy", type=int, default=250, help="connections per proxy port (default 250)")
    parser.add_argument("--threads", type=int, default=8, help="worker threads (celery --concurrency, default 8)")
    parser.add_argument("--batch", type=int, default=None, help="instances per collection task (default COLLECT_BATCH)")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds after the warm-up (default 2)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between rounds (default 1)")
    parser.add_argument("--rate", type=int, default=30, help="metric rate to keep, seconds (default 30)")
    parser.add_argument("--proxy-in-process", action="store_true",
                        help="run the delay proxies inside the measured process (they then compete for its GIL)")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    biggest = max(args.sizes)
    limit = raise_open_file_limit(3 * biggest + 500)
    from standins.redis_servers import start_redis

    servers, results = [], []
    started = time.perf_counter()
    try:
        for i in range(args.servers):
            servers.append(start_redis(password=f"bench-pass-{i}-{uuid.uuid4().hex[:8]}"))
        proxies_needed = max(args.servers, math.ceil(biggest / args.per_proxy))
        targets = [servers[i % len(servers)].port for i in range(proxies_needed)]
        with delay_proxies(targets, args.delay, args.per_proxy + 16, args.proxy_in_process) as ports:
            # The URL of proxy i reaches server i % servers with that server's password.
            urls = [servers[i % len(servers)].url.replace(f":{servers[i % len(servers)].port}", f":{port}")
                    for i, port in enumerate(ports)]
            with scratch_database():
                from django.conf import settings

                from scaling.models import RedisPlan
                from scaling.services.dispatch import COLLECT_BATCH

                args.batch = args.batch or COLLECT_BATCH
                settings.HEROKU_API_URL = "http://127.0.0.1:9"  # no Heroku here: a refresh would fail loudly
                plans = {plan.plan_name: plan for plan in RedisPlan.objects.all()}
                print(f"{len(servers)} redis-servers, {len(ports)} delay proxies ({args.delay * 2000:.0f} ms round trip, "
                      f"{'in this process' if args.proxy_in_process else 'in a child process'}), open-file limit {limit}",
                      flush=True)
                for n in args.sizes:
                    results.append(run_size(n=n, args=args, urls=urls, plans=plans))
    finally:
        for server in servers:
            server.close()
    report(results, args, time.perf_counter() - started)
    return 0 if all(not r["problems"] for res in results for r in res["rounds"]) else 1


def report(results, args, total_wall):
    print()
    print(f"One worker: ThreadPoolExecutor({args.threads}) x samples_collect over batches of {args.batch}; "
          f"{args.servers} real redis-servers behind a {args.delay * 2000:.0f} ms round-trip delay; "
          f"worst of {args.rounds} round(s) after a warm-up round")
    head = (f"{'N':>6} | {'warm-up s':>9} {'round s':>8} {'samples/s':>9} | {'needed/s':>8} {'headroom':>8} "
            f"{'verdict':>7} | {'read ms p50':>11} {'p95':>6} | {'stored':>6} {'ok':>6} {'conns':>6}")
    print(head)
    print("-" * len(head))
    verdicts = []
    for result in results:
        n = result["n"]
        worst = max(result["rounds"], key=lambda r: r["seconds"])
        rate = n / worst["seconds"]
        needed = n / args.rate
        on_time = worst["seconds"] <= args.rate and not worst["problems"]
        verdicts.append((n, on_time, rate))
        print(f"{n:>6} | {result['warmup']:>9.2f} {worst['seconds']:>8.2f} {rate:>9.1f} | {needed:>8.1f} "
              f"{rate / needed:>7.1f}x {'on time' if on_time else 'behind':>7} | {worst['read_median'] * 1000:>11.1f} "
              f"{worst['read_p95'] * 1000:>6.1f} | {worst['stored']:>6} {worst['stored'] - worst['failed']:>6} "
              f"{result['connections']:>6}")
    print()
    if verdicts:
        from scaling.services.collection import READ_THREADS

        n, on_time, rate = verdicts[-1]
        worst = max(results[-1]["rounds"], key=lambda r: r["seconds"])
        ceiling = READ_THREADS / worst["read_median"] if worst["read_median"] > 0 else float("nan")
        late = [str(v[0]) for v in verdicts if not v[1]]
        print(f"summary: at N={n} one worker sustains {rate:.0f} samples/s where a {args.rate} s metric rate needs "
              f"{n / args.rate:.0f}/s: {'on time' if on_time else 'behind'}"
              f"{' (behind at N=' + ', '.join(late) + ')' if late else ''}; the shared read pool "
              f"({READ_THREADS} threads / {worst['read_median'] * 1000:.0f} ms per read) caps it near {ceiling:.0f}/s, "
              f"i.e. about {int(ceiling * args.rate):,} instances per worker at {args.rate} s (extrapolated); "
              f"wall time {total_wall:.0f} s")

if __name__ == "__main__":
    sys.exit(main())
