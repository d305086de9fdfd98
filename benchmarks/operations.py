"""Operating endpoints at scale: a /metrics scrape, /healthz, and the cost report.

    DJANGO_SETTINGS_MODULE=autoscaler.test_settings .venv/bin/python benchmarks/operations.py \
        [--instances 5000] [--days 7] [--metric-rate 300] [--runs 7]

Builds the same data as `benchmarks/load.py` in a scratch PostgreSQL database (instances,
--days of samples with 0.5 % failed reads, two scaling actions per instance; dropped at the
end), then times, through Django's test Client with DEBUG off (one warm-up, then --runs;
median and p95; statements counted without BEGIN/COMMIT):

- `GET /metrics` with the bearer token: the whole Prometheus text for every instance;
- `GET /healthz` (its broker check is the test settings' in-memory broker);
- `cost_report_build` for the month so far, and `GET /admin/cost/` as a superuser.

It prints the figures and the size of one scrape.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autoscaler.test_settings")
from _scratch_db import scratch_database  # noqa: E402

import load  # noqa: E402  (the 5,000-instance data builder and the measuring helper)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--metric-rate", type=int, default=300)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--load-workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    with scratch_database(prefix="autoscaler_ops"):
        from django.conf import settings
        from django.contrib.auth.models import User
        from django.test import Client
        from django.utils import timezone

        from operations.admin_views import month_to_date_costs
        from operations.cost import cost_report_build
        from operations.heartbeats import RateLimitRecorder, dispatcher_tick_record

        settings.DEBUG = False
        settings.ALLOWED_HOSTS = ["testserver"]
        settings.SECURE_SSL_REDIRECT = False
        settings.METRICS_TOKEN = "bench-token"
        print(f"data: {args.instances:,} instances, {args.days} days of samples every {args.metric_rate} s", flush=True)
        data = load.build_data(args, random.Random(args.seed))
        print(f"  {data['samples']:,} samples, {data['actions']:,} scaling actions; {data['server']}", flush=True)
        dispatcher_tick_record(now=timezone.now())
        RateLimitRecorder()(remaining=4321, now=timezone.now())

        client = Client()
        admin = User.objects.create_superuser("bench", password="x")
        admin_client = Client()
        admin_client.force_login(admin)
        sizes = {}

        def scrape():
            response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer bench-token")
            assert response.status_code == 200, response.status_code
            sizes["bytes"] = len(response.content)
            sizes["series"] = sum(1 for line in response.content.splitlines() if line and not line.startswith(b"#"))

        def health():
            response = client.get("/healthz")
            assert response.status_code in (200, 503)

        def cost_page():
            assert admin_client.get("/admin/cost/").status_code == 200

        print("measurements:", flush=True)
        load.measure("GET /metrics (every instance's series)", scrape, runs=args.runs)
        load.measure("GET /healthz", health, runs=args.runs)
        load.measure("cost_report_build, month so far", lambda: cost_report_build(since=timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0), until=timezone.now()), runs=args.runs)
        load.measure("month to date (admin overview line)", lambda: month_to_date_costs(now=timezone.now()), runs=args.runs)
        load.measure("GET /admin/cost/ (superuser)", cost_page, runs=args.runs)

        print(f"\none scrape: {sizes['series']:,} series, {sizes['bytes'] / 1024:,.0f} KiB")
        print("\n| what | queries | median | p95 |\n|---|---:|---:|---:|")
        for row in load.results:
            print(f"| {row['what']} | {row['queries']} | {row['median']:.0f} ms | {row['p95']:.0f} ms |")
        if load.slow_queries:
            print("\nslow statements:")
            for what, ms, sql in load.slow_queries:
                print(f"  {what}: {ms:.0f} ms  {sql[:200]}")


if __name__ == "__main__":
    main()
