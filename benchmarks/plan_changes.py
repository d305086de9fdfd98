"""Samples stay on time while many plan changes are in flight.

    .venv/bin/python benchmarks/plan_changes.py [--instances 1000] [--changing 200]
        [--provision-seconds 60] [--seconds 240] [--threads 8] [--follow-seconds N]

Setting
    N instances (default 1,000) in a scratch PostgreSQL database (created and dropped by the
    script), sampled every 30 s and checked every minute, as registration leaves them
    (add-on id, encrypted URL). Their Redis is a stand-in INFO server on 127.0.0.1 (one
    connection per instance): `--changing` of them (default 200) report 90 % of premium-0
    and have three minutes of such samples behind them, with their checks all due at the
    start, so they all decide to scale up at once; the others report 20 %. Heroku is a
    stand-in HTTP server on 127.0.0.1 that answers the PATCH, the add-on and config-var
    reads the way the Platform API does and takes `--provision-seconds` (default 60) to
    provision a new plan.

    One worker as deployed (`celery worker --pool threads --concurrency 8`): one FIFO queue
    and 8 threads running the app's own Celery task functions (scaling.tasks); beat puts
    `dispatch` on that queue every 10 s; tasks sent with `countdown` are put on the queue
    when due, and tasks past their `expires` are dropped as Celery drops them.

What is measured, over `--seconds` of wall time (default 240)
    - sample delay: for every slot of every instance due in the run (up to 40 s before its
      end), the time from the slot to the sample being read; slots not sampled by the end
      are counted apart;
    - plan-change latency: for each changing instance, from the start (when its check was
      due) to the moment the database shows the new plan (observed by polling every 0.5 s,
      from outside the app);
    - the PATCHes sent (one per instance is right) and how many changes are done, pending,
      failed at the end.
    PLAN_FOLLOW_SECONDS is the code's production default (60 s before the follow task, when
    it was how long a check followed its change; 20 s with it) unless `--follow-seconds`.

Compare two versions of the code by running this script from each checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import re
import resource
import sys
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch_db import scratch_database  # noqa: E402

MIB = 1024 * 1024
PLAN, UP, MAX_PLAN = "heroku-redis:premium-0", "heroku-redis:premium-1", "heroku-redis:premium-3"
API_KEY = "bench-api-key-0123456789"
DISPATCH_EVERY = 10  # seconds, as the beat schedule has it


# --- Redis stand-in: INFO as told, one port per load ----------------------------------------


def info_reply(used_memory):
    fields = {"used_memory": used_memory, "maxmemory": 50 * MIB, "connected_clients": 5, "maxclients": 40,
              "evicted_keys": 0, "rejected_connections": 0, "instantaneous_ops_per_sec": 100}
    body = "".join(f"{name}:{value}\r\n" for name, value in fields.items()).encode()
    return b"$%d\r\n%s\r\n" % (len(body), body)


class InfoServers:
    """Asyncio RESP servers in a thread: INFO answers the port's memory, anything else +OK."""

    def __init__(self, memories):
        self.memories, self.ports = memories, []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="info-servers")

    async def _serve(self, memory):
        reply = info_reply(memory)

        async def handle(reader, writer):
            try:
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    args = []
                    if line.startswith(b"*"):
                        for _ in range(int(line[1:])):
                            size = int((await reader.readline())[1:])
                            args.append((await reader.readexactly(size + 2))[:-2])
                    command = args[0].upper() if args else b""
                    writer.write(reply if command == b"INFO" else b"+PONG\r\n" if command == b"PING" else b"+OK\r\n")
                    await writer.drain()
            except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=2048)
        return server.sockets[0].getsockname()[1]

    def start(self):
        self.thread.start()
        self.ports = [asyncio.run_coroutine_threadsafe(self._serve(m), self.loop).result(10) for m in self.memories]
        return self.ports

    def stop(self):
        async def close_connections():
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close_connections(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


# --- Heroku stand-in ------------------------------------------------------------------------


class HerokuStandIn:
    """The Platform API calls a plan change makes: PATCH and GET of an app's add-on, GET of
    its config vars. A new plan is `provisioning` for `provision_seconds`."""

    def __init__(self, provision_seconds):
        self.provision_seconds = provision_seconds
        self.addons, self.urls = {}, {}  # id -> add-on; app -> Redis URL
        self.calls = {"PATCH": 0, "GET": 0}
        self.lock = threading.Lock()

    def add(self, *, app, addon_id, name, url):
        self.addons[addon_id] = {"id": addon_id, "name": name, "app": app, "plan": PLAN, "ready_at": 0.0}
        self.urls[app] = url

    def _json(self, addon):
        state = "provisioned" if time.monotonic() >= addon["ready_at"] else "provisioning"
        return {"id": addon["id"], "name": addon["name"], "app": {"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, addon["app"])),
                "name": addon["app"]}, "addon_service": {"name": "heroku-redis"}, "plan": {"name": addon["plan"]},
                "state": state, "config_vars": ["REDIS_URL"]}

    def answer(self, method, path, body):
        with self.lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            match = re.fullmatch(r"/apps/([^/]+)/addons/([^/]+)", path)
            if match and match.group(2) in self.addons:
                addon = self.addons[match.group(2)]
                if method == "PATCH":
                    if body["plan"] != addon["plan"]:
                        addon.update(plan=body["plan"], ready_at=time.monotonic() + self.provision_seconds)
                    return 200, self._json(addon)
                if method == "GET":
                    return 200, self._json(addon)
            match = re.fullmatch(r"/apps/([^/]+)/config-vars", path)
            if match and method == "GET" and match.group(1) in self.urls:
                return 200, {"REDIS_URL": self.urls[match.group(1)]}
            return 404, {"id": "not_found", "message": f"{method} {path} is not part of this stand-in"}

    def serve(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if self.headers.get("Authorization") != f"Bearer {API_KEY}":
                    status, data = 401, {"id": "unauthorized", "message": "Invalid credentials provided."}
                else:
                    status, data = stand_in.answer(self.command, self.path.split("?")[0], body)
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("RateLimit-Remaining", "4000")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PATCH = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- One worker: a FIFO queue, N threads, Celery's countdown and expires -------------------


class Worker:
    def __init__(self, threads):
        self.queue = queue.Queue()
        self.expired = self.errors = 0
        self.stopping = False
        self.timers = []
        self.threads = [threading.Thread(target=self._run, daemon=True, name=f"task-{n}") for n in range(threads)]

    def put(self, function, args, *, expires=None):
        self.queue.put((function, args, time.monotonic(), expires))

    def put_later(self, countdown, function, args):
        timer = threading.Timer(countdown, self.put, args=(function, args))
        timer.daemon = True
        timer.start()
        self.timers.append(timer)

    def _run(self):
        from django.db import connection

        while not self.stopping:
            try:
                function, args, sent, expires = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if expires is not None and time.monotonic() - sent > expires:
                self.expired += 1
                continue
            try:
                function(*args)
            except Exception as error:  # noqa: BLE001 - counted, as the worker logs and goes on
                self.errors += 1
                print(f"  task {getattr(function, 'name', function)} failed: {error!r}"[:300], flush=True)
        connection.close()

    def start(self):
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.stopping = True
        for timer in self.timers:
            timer.cancel()
        for thread in self.threads:
            thread.join(60)


# --- Setting up the fleet ------------------------------------------------------------------


def register(*, n, changing, hot_url, calm_url, heroku, start):
    from django.utils import timezone

    from logs.models import MetricLog
    from scaling.models import RedisInstance, RedisPlan
    from scaling.services.dispatch import next_slot

    plans = {p.plan_name: p for p in RedisPlan.objects.filter(plan_name__in=[PLAN, MAX_PLAN])}
    rows = []
    for index in range(n):
        hot = index < changing
        addon_id = str(uuid.uuid4())
        instance = RedisInstance(
            name=f"bench-{index}", app_name=f"bench-{index}-app", config_var="REDIS_URL", metric_rate=30,
            scaling_rate=60, current_plan=plans[PLAN], min_plan=plans[PLAN], max_plan=plans[MAX_PLAN],
            addon_id=addon_id, addon_name=f"redis-bench-{index}", resolved_at=timezone.now(),
        )
        instance.redis_url = f"{hot_url if hot else calm_url}/{index % 16}"
        heroku.add(app=instance.app_name, addon_id=addon_id, name=instance.addon_name, url=instance.redis_url)
        rows.append(instance)
    RedisInstance.objects.bulk_create(rows, batch_size=500)
    instances = list(RedisInstance.objects.order_by("pk"))
    history = []
    for index, instance in enumerate(instances):
        hot = index < changing
        used = 45 * MIB if hot else 10 * MIB
        for step in range(1, 7):  # three minutes of samples behind every instance
            at = start - timedelta(seconds=30 * step)
            history.append(MetricLog(instance=instance, slot=at, collected_at=at, plan=plans[PLAN], used_memory=used,
                                     maxmemory=50 * MIB, connected_clients=5, maxclients=40, evicted_keys=0,
                                     rejected_connections=0, memory_pct=100 * used / (50 * MIB), connection_pct=12.5))
        instance.next_sample_at = next_slot(instance_id=instance.pk, rate_seconds=30, after=start)
        instance.next_check_at = start if hot else next_slot(instance_id=instance.pk, rate_seconds=60, after=start)
    MetricLog.objects.bulk_create(history, batch_size=2000)
    RedisInstance.objects.bulk_update(instances, ["next_sample_at", "next_check_at"], batch_size=500)
    return instances


def expected_slots(instances, *, start, end):
    from scaling.services.dispatch import next_slot

    slots = set()
    for instance in instances:
        slot = next_slot(instance_id=instance.pk, rate_seconds=30, after=start - timedelta(microseconds=1))
        while slot <= end:
            slots.add((instance.pk, slot))
            slot += timedelta(seconds=30)
    return slots


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--changing", type=int, default=200)
    parser.add_argument("--provision-seconds", type=float, default=60.0)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--follow-seconds", type=int, default=None)
    args = parser.parse_args(argv)
    if not 0 < args.changing <= args.instances or args.seconds < 60 or args.threads < 1:
        parser.error("need 0 < --changing <= --instances, --seconds >= 60, --threads >= 1")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    heroku = HerokuStandIn(args.provision_seconds)
    os.environ["HEROKU_API_URL"] = heroku.serve()
    redis = InfoServers([45 * MIB, 10 * MIB])
    hot_port, calm_port = redis.start()
    try:
        with scratch_database(synchronous_commit=False):
            run(args, heroku, f"redis://127.0.0.1:{hot_port}", f"redis://127.0.0.1:{calm_port}")
    finally:
        heroku.stop()
        redis.stop()


def run(args, heroku, hot_url, calm_url):
    from django.conf import settings
    from django.utils import timezone

    from logs.models import MetricLog, ScalingAction
    from scaling import tasks
    from scaling.models import RedisInstance
    from scaling.services import heroku_access

    follow_task = hasattr(tasks, "follow_plan_change")
    settings.HEROKU_API_KEY = API_KEY
    settings.ENABLE_EMAILS = False
    settings.PLAN_FOLLOW_SECONDS = args.follow_seconds if args.follow_seconds is not None else (20 if follow_task else 60)
    if hasattr(heroku_access, "heroku_client_reset"):
        heroku_access.heroku_client_reset()

    start = timezone.now() + timedelta(seconds=5)
    instances = register(n=args.instances, changing=args.changing, hot_url=hot_url, calm_url=calm_url,
                         heroku=heroku, start=start)
    hot_ids = [i.pk for i in instances[: args.changing]]
    print(f"{args.instances} instances sampled every 30 s, {args.changing} of them deciding to scale up at once; "
          f"Heroku provisions in {args.provision_seconds:.0f} s; one worker of {args.threads} threads; "
          f"{'follow task' if follow_task else 'the check follows its change'}, "
          f"PLAN_FOLLOW_SECONDS={settings.PLAN_FOLLOW_SECONDS}; {args.seconds:.0f} s run", flush=True)

    worker = Worker(args.threads)
    tasks.collect_samples.apply_async = lambda args, expires: worker.put(tasks.collect_samples, args, expires=expires)
    tasks.check_instance.apply_async = lambda args, expires: worker.put(tasks.check_instance, args, expires=expires)
    if follow_task:
        tasks.follow_plan_change.apply_async = lambda args, countdown: worker.put_later(
            countdown, tasks.follow_plan_change, args)
    worker.start()

    time.sleep(max((start - timezone.now()).total_seconds(), 0))
    began = time.monotonic()
    changed_at = {}  # instance id -> seconds after the start when the database showed the new plan
    next_dispatch = began
    while time.monotonic() - began < args.seconds:
        if time.monotonic() >= next_dispatch:
            worker.put(tasks.dispatch, ())  # beat: the dispatcher is a task on the same queue
            next_dispatch += DISPATCH_EVERY
        up = RedisInstance.objects.filter(pk__in=hot_ids, current_plan__plan_name=UP).values_list("pk", flat=True)
        for pk in up:
            changed_at.setdefault(pk, time.monotonic() - began)
        time.sleep(0.5)
    end = timezone.now()
    backlog = worker.queue.qsize()
    worker.stop()

    measured_until = end - timedelta(seconds=40)
    due = expected_slots(instances, start=start, end=measured_until)
    stored = {(pk, slot): (collected - slot).total_seconds() for pk, slot, collected in MetricLog.objects.filter(
        slot__gte=start, slot__lte=measured_until).values_list("instance_id", "slot", "collected_at")}
    delays = [stored[key] for key in due if key in stored]
    missing = len([key for key in due if key not in stored])
    statuses = dict.fromkeys(["succeeded", "pending", "failed"], 0)
    for status in ScalingAction.objects.filter(instance_id__in=hot_ids).values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    latencies = list(changed_at.values())

    print()
    print(f"sample delay (slot -> read), {len(due)} slots due in the first {args.seconds - 40:.0f} s:")
    print(f"  p50 {percentile(delays, 0.5):.1f} s, p99 {percentile(delays, 0.99):.1f} s, max "
          f"{max(delays, default=float('nan')):.1f} s; {missing} slots not sampled by the end "
          f"({missing / max(len(due), 1):.1%})")
    print(f"plan-change latency (due -> new plan in the database), {len(latencies)} of {args.changing} done "
          f"in {args.seconds:.0f} s:")
    if latencies:
        print(f"  p50 {percentile(latencies, 0.5):.1f} s, p99 {percentile(latencies, 0.99):.1f} s, "
              f"max {max(latencies):.1f} s")
    print(f"actions of the changing instances: {statuses}; PATCHes sent: {heroku.calls.get('PATCH', 0)}, "
          f"GETs: {heroku.calls.get('GET', 0)}")
    print(f"worker: {backlog} tasks still queued at the end, {worker.expired} dropped as expired, "
          f"{worker.errors} failed")


if __name__ == "__main__":
    main()
