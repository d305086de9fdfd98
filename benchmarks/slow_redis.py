"""What slow and hostile Redis servers cost one worker: a deadline, not a worker.

    DJANGO_SETTINGS_MODULE=autoscaler.test_settings .venv/bin/python benchmarks/slow_redis.py \
        [--healthy 200] [--slow 0,1,8,40] [--read-timeout 2] [--connect-timeout 5]

Setting: one real ``redis-server`` behind every healthy instance (one server, one connection
per instance), and stand-in servers (standins/fake_redis.py) that trickle their INFO reply a
byte a second (what kept a batch 181 s with REDIS_READ_TIMEOUT=2 before the deadline), all
on 127.0.0.1. Instances are registered in a scratch PostgreSQL database, sampled as one
worker does (8 task threads, batches of 25, the shared read pool), the slow ones spread
over the batches for the first slot in which they are slow (the worst case) and as the
dispatcher batches them afterwards (apart from the healthy ones). Printed per number of slow instances: the round's wall time, when the
healthy samples were stored (after the round started: median and worst), how long the
slow reads took and what they were stored as, and whether every slot was stored.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch_db import scratch_database  # noqa: E402

PLAN = "heroku-redis:premium-0"


def _round(label, batches, slow_pks, reader):
    """One worker (8 task threads) samples these batches once; the figures of that slot."""
    from django.utils import timezone

    from logs.models import MetricLog
    from scaling.services.collection import samples_collect

    slot = timezone.now()
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda batch: samples_collect(due=[(pk, slot) for pk in batch], reader=reader), batches))
    wall = time.perf_counter() - started
    logs = list(MetricLog.objects.filter(slot=slot).values_list("instance_id", "collected_at", "error_kind"))
    healthy_at = sorted((at - slot).total_seconds() for pk, at, kind in logs if pk not in slow_pks)
    slow_at = sorted((at - slot).total_seconds() for pk, at, kind in logs if pk in slow_pks)
    kinds = ",".join(sorted({kind for pk, at, kind in logs if pk in slow_pks})) or "-"
    ok = sum(1 for pk, at, kind in logs if pk not in slow_pks and not kind)
    total = sum(len(batch) for batch in batches)
    return (len(slow_pks), label, wall, statistics.median(healthy_at), healthy_at[-1], slow_at[-1] if slow_at else 0.0,
            kinds, len(logs), total, ok)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--healthy", type=int, default=200)
    parser.add_argument("--slow", default="0,1,8,40", help="numbers of trickling instances to try")
    parser.add_argument("--read-timeout", type=float, default=2.0)
    parser.add_argument("--connect-timeout", type=float, default=5.0)
    args = parser.parse_args()

    from standins.fake_redis import FakeServer, bulk
    from standins.redis_servers import start_redis

    info = bulk("# Memory\r\nused_memory:1048576\r\nmaxmemory:0\r\n# Clients\r\nconnected_clients:3\r\n")
    server = start_redis()
    rows = []
    try:
        with scratch_database():
            from django.utils import timezone

            from scaling.metrics import RedisMetricsReader
            from scaling.models import RedisInstance, RedisPlan
            from scaling.services.collection import samples_collect
            from scaling.services.dispatch import COLLECT_BATCH, due_work_dispatch

            plan = RedisPlan.objects.get(plan_name=PLAN)
            for slow_count in [int(x) for x in args.slow.split(",")]:
                RedisInstance.objects.all().delete()
                tricklers = [FakeServer(lambda a: info, trickle=1.0) for _ in range(slow_count)]
                try:
                    urls = [server.url] * args.healthy + [t.url for t in tricklers]
                    instances = []
                    for i, url in enumerate(urls):
                        instance = RedisInstance(name=f"b-{i:05d}", app_name=f"b-{i:05d}", config_var="REDIS_URL",
                                                 current_plan=plan, min_plan=plan, max_plan=plan, metric_rate=30,
                                                 addon_id=uuid.uuid4(), resolved_at=timezone.now())
                        instance.redis_url = url
                        instances.append(instance)
                    RedisInstance.objects.bulk_create(instances)
                    pks = list(RedisInstance.objects.order_by("pk").values_list("pk", flat=True))
                    slow_pks = set(pks[args.healthy:])
                    with RedisMetricsReader(connect_timeout=args.connect_timeout, read_timeout=args.read_timeout) as reader:
                        warm = timezone.now()
                        samples_collect(due=[(pk, warm) for pk in pks if pk not in slow_pks], reader=reader)
                        # First slot after they turned slow: at worst one in every batch.
                        healthy_pks = [pk for pk in pks if pk not in slow_pks]
                        batch_count = max(1, -(-len(pks) // COLLECT_BATCH))
                        spread = [[] for _ in range(batch_count)]
                        for index, pk in enumerate(sorted(slow_pks)):
                            spread[index % batch_count].append(pk)
                        for index, pk in enumerate(healthy_pks):
                            spread[min(index // (COLLECT_BATCH - 1), batch_count - 1)].append(pk)
                        rows.append(_round("first slow slot, spread", spread, slow_pks, reader))
                        # Later slots: the dispatcher batches the failing instances apart.
                        RedisInstance.objects.update(next_sample_at=timezone.now())
                        batches = []
                        due_work_dispatch(now=timezone.now(), enqueue_samples=batches.append, enqueue_check=lambda *a: None)
                        rows.append(_round("later slots, dispatcher", [[pk for pk, _ in b] for b in batches], slow_pks, reader))
                finally:
                    for trickler in tricklers:
                        trickler.close()
    finally:
        server.close()

    deadline = args.connect_timeout + args.read_timeout
    print(f"\n{args.healthy} healthy instances + N trickling a byte a second; one worker (8 threads, batches of 25);"
          f" deadline {deadline:g} s (connect {args.connect_timeout:g} + read {args.read_timeout:g})")
    print(f"{'N slow':>6} | {'slot':<24} | {'round s':>7} | {'healthy stored at s (p50 / max)':>31} | {'slow stored at s':>16} | {'slow kind':>9} | {'stored':>11} | healthy ok")
    for slow_count, label, wall, h50, hmax, smax, kinds, stored, total, ok in rows:
        print(f"{slow_count:>6} | {label:<24} | {wall:>7.2f} | {h50:>14.2f} / {hmax:<14.2f} | {smax:>16.2f} | {kinds:>9} | {stored:>5}/{total:<5} | {ok}")


if __name__ == "__main__":
    main()
