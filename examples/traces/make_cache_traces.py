"""Generate the example cache traces in this folder (deterministic: fixed seeds).

    python examples/traces/make_cache_traces.py            # writes the CSVs next to this file
    python examples/traces/make_cache_traces.py OUT_DIR

Each trace is ``timestamp,used_memory,connected_clients,evicted_keys,keyspace_hits,
keyspace_misses`` (ISO 8601 UTC, bytes, count, cumulative counters as ``INFO`` gives them),
recorded on a Heroku Key-Value Store premium-0 (50 MiB) set to ``allkeys-lru``; replay them
with ``simulate --workload cache``.

cache_good_hit_rate.csv  12 h, 1-min points: an application cache warming up in 30 min,
                         then full (49-50 MiB) and evicting 150-250 keys a minute by
                         design, with 97-98 % of 4,000-9,000 lookups a minute hitting
                         (request rate following the day); 12-18 clients.
cache_outgrown.csv       12 h, 1-min points: the same cache until 03:00, when a release
                         widens what is cached: evictions climb to about 1,500 a minute and
                         the hit rate sinks from 97 % to about 72 % over the next hour and
                         stays there.
"""

from __future__ import annotations

import math
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

MIB = 1_048_576
START = datetime(2024, 3, 4, tzinfo=timezone.utc)
HEADER = "timestamp,used_memory,connected_clients,evicted_keys,keyspace_hits,keyspace_misses\n"


def write(path: Path, rows) -> None:
    with open(path, "w", newline="") as fh:
        fh.write(HEADER)
        for at, mem_mib, clients, evicted, hits, misses in rows:
            stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            fh.write(f"{stamp},{int(round(mem_mib * MIB))},{max(0, int(round(clients)))},{evicted},{hits},{misses}\n")


def cache(seed: int, outgrown_at_minute: int | None):
    rng = random.Random(seed)
    evicted, hits, misses = 0, 0, 0
    for minute in range(12 * 60 + 1):
        hour = minute / 60
        lookups = 4000 + 5000 * math.sin(math.pi * hour / 24) ** 2 + rng.gauss(0, 200)
        if minute < 30:  # warming up: filling, no evictions, mostly misses at first
            mem = 5 + 44 * minute / 30
            hit_pct, evictions = 50 + 47 * minute / 30, 0
        else:
            mem = min(50.0, 49.4 + rng.uniform(0, 0.6))
            hit_pct, evictions = 97.5 + rng.gauss(0, 0.4), 200 + rng.gauss(0, 25)
            if outgrown_at_minute is not None and minute >= outgrown_at_minute:
                progress = min(1.0, (minute - outgrown_at_minute) / 60)
                hit_pct -= 25 * progress
                evictions += 1300 * progress
        if minute:
            hits += int(lookups * hit_pct / 100)
            misses += int(lookups * (100 - hit_pct) / 100)
            evicted += max(0, int(evictions))
        clients = 15 + rng.gauss(0, 1.5)
        yield START + timedelta(minutes=minute), mem, clients, evicted, hits, misses


TRACES = {
    "cache_good_hit_rate": lambda: cache(20240310, None),
    "cache_outgrown": lambda: cache(20240310, 3 * 60),
}


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    for name, make in TRACES.items():
        write(out / f"{name}.csv", make())
        print(f"wrote {out / (name + '.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
