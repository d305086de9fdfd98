"""The alert relay: what deciding an alert costs a check, how fast one worker delivers, and
what a hanging receiver costs the worker.

    DJANGO_SETTINGS_MODULE=autoscaler.test_settings .venv/bin/python benchmarks/alert_relay.py \
        [--alerts 500] [--threads 8]

In a scratch PostgreSQL database, with one webhook channel (signed) to a real HTTP receiver on
localhost (standins/alert_receivers.py) and the mail channel switched off:

- decide: --alerts alerts through `notification_send`, each in its own transaction as a check
  writes it (the alert row, the repeat check under the instance's row lock, one delivery per
  channel): milliseconds per alert, the cost an alert adds to a check;
- deliver: one `delivery_attempt`, as the first task would, drains every due delivery of the
  channel (a signed POST, the compare-and-set claim, the attempt row each): deliveries a second;
- hanging: the receiver answers after the client's timeout (0.5 s here); --threads worker
  threads each take one of --threads fresh deliveries at the same moment, as the worker's
  threads would: the requests sent, the thread-seconds spent, the longest and the median a
  thread was held.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autoscaler.test_settings")
from _scratch_db import scratch_database  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)

    with scratch_database(prefix="autoscaler_alerts"):
        from django.db import connection
        from django.utils import timezone

        from notifications import channels
        from notifications.models import AlertChannel, Delivery
        from notifications.relay import delivery_attempt
        from notifications.services import notification_send
        from scaling.models import RedisInstance, RedisPlan
        from standins.alert_receivers import HTTPReceiver

        channels.HTTP_TIMEOUT = (0.5, 0.5)
        receiver = HTTPReceiver(secret="bench-secret").start()
        AlertChannel.objects.filter(kind="mail").update(enabled=False)
        channel = AlertChannel(name="bench", kind="webhook")
        channel.url, channel.secret = receiver.url, "bench-secret"
        channel.save()
        plan = RedisPlan.objects.get(plan_name="heroku-redis:premium-0")
        instance = RedisInstance.objects.create(name="bench", app_name="bench-app", config_var="REDIS_URL",
                                                current_plan=plan, min_plan=plan, max_plan=plan)
        instance = RedisInstance.objects.with_plans().get(pk=instance.pk)
        now = timezone.now()

        def decide(count, tag):
            started = time.perf_counter()
            for n in range(count):
                notification_send(instance=instance, kind="breach", fingerprint=f"{tag}:{n}", now=now,
                                  subject="bench: memory over threshold", lines=["Memory average: 91.0%"],
                                  facts={"reason": "memory average 91.0% over 80%"})
            return time.perf_counter() - started

        seconds = decide(args.alerts, "decide")
        print(f"decide: {args.alerts} alerts in {seconds:.2f} s, {seconds / args.alerts * 1000:.2f} ms an alert "
              "(row, repeat check, one delivery)", flush=True)

        first = Delivery.objects.order_by("created_at").values_list("pk", flat=True).first()
        started = time.perf_counter()
        delivery_attempt(delivery_id=first, now=timezone.now())
        seconds = time.perf_counter() - started
        delivered = Delivery.objects.filter(status="delivered").count()
        print(f"deliver: {delivered} of {args.alerts} delivered by one worker thread in {seconds:.2f} s, "
              f"{delivered / seconds:.0f} a second; bad signatures at the receiver: {receiver.bad_signatures}",
              flush=True)

        receiver.default = "timeout"
        receiver.requests.clear()
        decide(args.threads, "hanging")
        due = list(Delivery.objects.filter(status="pending").values_list("pk", flat=True))
        held, barrier = [], threading.Barrier(len(due))
        at = timezone.now()

        def worker(delivery_id):
            barrier.wait()
            started = time.perf_counter()
            delivery_attempt(delivery_id=delivery_id, now=at)
            held.append(time.perf_counter() - started)
            connection.close()

        threads = [threading.Thread(target=worker, args=(pk,)) for pk in due]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"hanging: {len(due)} threads at once sent {len(receiver.requests)} request(s); thread-seconds "
              f"{sum(held):.2f}, longest {max(held):.2f} s, median {statistics.median(held) * 1000:.0f} ms "
              f"(client timeout {channels.HTTP_TIMEOUT[1]} s)", flush=True)
        receiver.stop()


if __name__ == "__main__":
    main()
