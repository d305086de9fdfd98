"""Generate the example load traces in this folder (deterministic: fixed seeds).

    python examples/traces/make_traces.py            # writes the CSVs next to this file
    python examples/traces/make_traces.py OUT_DIR

Each generator takes its ``seed`` (``flap_bait`` also its ``period_min``, ``sudden_spike``
its ``level_mib``), so
``benchmarks/trace_variants.py`` can judge the same loads with other noise and periods.

Each trace is ``timestamp,used_memory,connected_clients`` (ISO 8601 UTC, bytes, count),
the format ``manage.py simulate`` reads. Memory figures are in MiB (1,048,576 bytes), as
Heroku Key-Value Store plans are sized.

daily_queue_cycle.csv  24 h, 1-min points: a job queue that fills by day to about 70 % of
                       a premium-2 (175 MiB, 60 clients) around 14:00 and drains by
                       night (about 14 MiB, 8 clients), with bursty queue noise.
sudden_spike.csv       24 h, 15-s points: steady 28 MiB and 22 clients, then at 02:00 a
                       nightly bulk import fills 300 MiB within a minute, holds 30 min,
                       drains over 15 min.
slow_leak.csv          12 h, 1-min points: memory leaks 0.6 MiB a minute from 20 MiB to
                       about 380 MiB, a deploy at 10:00 restarts it, then leaks again;
                       20 clients.
connection_storm.csv   24 h, 15-s points: steady 28 MiB and 18 clients, with three
                       connection storms (web dynos scaled out for a traffic surge, each
                       opening its pool: to 140, 240 and 150 clients within 1 to 2 min)
                       lasting 30, 60 and 45 min.
scheduled_batch.csv    48 h (Monday and Tuesday), 1-min points: steady 20 MiB and 20
                       clients (a mini at its connection limit: premium-0); every
                       weekday at 06:00 UTC a batch job starts at once: 180 MiB
                       and 120 clients (72 % and 60 % of a premium-2) for 45 min,
                       drained by 07:00. Known in advance, so a schedule
                       (`--schedule "mon-fri 06:00-07:00 UTC premium-2"`) has the plan up
                       before it; no trend can see a step like this coming.
flap_bait.csv          24 h, 1-min points: memory oscillating around premium-0's 80 %
                       threshold (40 MiB): 26 to 50 MiB and back every 5 hours, with
                       noise (2 MiB), so the load lingers near the boundary at each
                       crossing; 20 clients. The original rule steps up and down
                       several times at every crossing.
weekly_sawtooth.csv    7 days (Monday to Sunday), 5-min points, recorded on Redis Cloud
                       (rediscloud plans): a backlog that grows through each day from
                       40 MiB (starting 06:00) to about 330 MiB on weekdays (150 MiB at
                       the weekend) and is purged at 01:00; 30 to 90 clients.
"""

from __future__ import annotations

import math
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

MIB = 1_048_576
START = datetime(2024, 3, 4, tzinfo=timezone.utc)


def write(path: Path, rows) -> None:
    with open(path, "w", newline="") as fh:
        fh.write("timestamp,used_memory,connected_clients\n")
        for at, mem_mib, clients in rows:
            stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            fh.write(f"{stamp},{max(0, int(round(mem_mib * MIB)))},{max(0, int(round(clients)))}\n")


def daily_queue_cycle(seed: int = 20240304):
    rng = random.Random(seed)
    for minute in range(24 * 60 + 1):
        hour = minute / 60
        bump = math.sin(math.pi * (hour - 6) / 16) ** 2 if 6 <= hour <= 22 else 0.0
        # Producers enqueue in bursts that workers drain: a 7-minute sawtooth that grows
        # with the load, plus jitter.
        saw = ((minute % 7) / 7 - 0.5) * 6 * (0.3 + bump)
        mem = 14 + 161 * bump + saw + rng.gauss(0, 1.5)
        clients = 8 + 52 * bump + rng.gauss(0, 2)
        yield START + timedelta(minutes=minute), mem, clients


def sudden_spike(seed: int = 20240305, level_mib: float = 300.0):
    rng = random.Random(seed)
    spike, hold, drain = 2 * 3600, 30 * 60, 15 * 60
    for step in range(24 * 240 + 1):
        second = step * 15
        if second < spike:
            level, extra_clients = 28.0, 0.0
        elif second < spike + 60:
            frac = (second - spike) / 60
            level, extra_clients = 28 + (level_mib - 28) * frac, 35 * frac
        elif second < spike + hold:
            level, extra_clients = level_mib, 35.0
        elif second < spike + hold + drain:
            frac = 1 - (second - spike - hold) / drain
            level, extra_clients = 28 + (level_mib - 28) * frac, 35 * frac
        else:
            level, extra_clients = 28.0, 0.0
        mem = level + rng.gauss(0, 1 if level < 50 else 5)
        clients = 22 + extra_clients + rng.gauss(0, 2)
        yield START + timedelta(seconds=second), mem, clients


def slow_leak(seed: int = 20240306):
    rng = random.Random(seed)
    restart = 10 * 60
    for minute in range(12 * 60 + 1):
        since = minute if minute < restart else minute - restart
        mem = 20 + 0.6 * since + rng.gauss(0, 1.5)
        clients = 20 + rng.gauss(0, 2)
        yield START + timedelta(minutes=minute), mem, clients


def connection_storm(seed: int = 20240307):
    rng = random.Random(seed)
    storms = [  # (start s, ramp s, hold s, decay s, peak clients)
        (9 * 3600, 60, 1800, 120, 140),
        (13 * 3600, 90, 3600, 180, 240),
        (19 * 3600, 60, 2700, 120, 150),
    ]
    for step in range(24 * 240 + 1):
        second = step * 15
        clients = 18.0
        for start, ramp, hold, decay, peak in storms:
            t = second - start
            if 0 <= t < ramp:
                clients = 18 + (peak - 18) * t / ramp
            elif ramp <= t < ramp + hold:
                clients = peak
            elif ramp + hold <= t < ramp + hold + decay:
                clients = peak - (peak - 18) * (t - ramp - hold) / decay
        clients += rng.gauss(0, 2)
        mem = 28 + rng.gauss(0, 1) + (clients - 18) * 0.02  # a little memory per client
        yield START + timedelta(seconds=second), mem, clients


def scheduled_batch(seed: int = 20240308):
    rng = random.Random(seed)
    for minute in range(48 * 60 + 1):
        of_day = minute % (24 * 60)
        batch = 6 * 60 <= of_day < 7 * 60
        if batch and of_day < 6 * 60 + 45:
            mem, clients = 180.0, 120.0
        elif batch:  # draining over the last 15 minutes
            frac = 1 - (of_day - 6 * 60 - 45) / 15
            mem, clients = 20 + 160 * frac, 20 + 100 * frac
        else:
            mem, clients = 20.0, 20.0
        yield START + timedelta(minutes=minute), mem + rng.gauss(0, 1), clients + rng.gauss(0, 1.5)


def flap_bait(seed: int = 20240309, period_min: int = 300):
    rng = random.Random(seed)
    for minute in range(24 * 60 + 1):
        mem = 38 + 12 * math.sin(2 * math.pi * minute / period_min) + rng.gauss(0, 2)
        clients = 20 + rng.gauss(0, 2)
        yield START + timedelta(minutes=minute), mem, clients


def weekly_sawtooth(seed: int = 20240311):
    rng = random.Random(seed)
    for step in range(7 * 24 * 12 + 1):
        minute = step * 5
        day, of_day = divmod(minute, 24 * 60)
        peak = 330 if day < 5 else 150
        # The backlog grows from 06:00 until it is purged at 01:00 the next night.
        since = (of_day - 6 * 60) % (24 * 60)
        growing = since < 19 * 60 and not (day == 0 and of_day < 6 * 60)  # the week starts purged
        mem = 40 + (peak - 40) * since / (19 * 60) if growing else 40
        busy = 6 * 60 <= of_day < 22 * 60
        clients = (90 if busy and day < 5 else 50 if busy else 30) + rng.gauss(0, 3)
        yield START + timedelta(minutes=minute), mem + rng.gauss(0, 2), clients


TRACES = {
    "daily_queue_cycle.csv": daily_queue_cycle,
    "sudden_spike.csv": sudden_spike,
    "slow_leak.csv": slow_leak,
    "connection_storm.csv": connection_storm,
    "scheduled_batch.csv": scheduled_batch,
    "flap_bait.csv": flap_bait,
    "weekly_sawtooth.csv": weekly_sawtooth,
}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    for name, make in TRACES.items():
        write(out / name, make())
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
