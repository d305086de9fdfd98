"""Plan ladders for the pure engine and simulation tests."""

from scaling.engine import Plan

# Heroku Key-Value Store (name, MiB, connections, $/month).
HEROKU_KVS = [
    Plan.from_limits(*row)
    for row in [
        ("mini", 25, 20, 3),
        ("premium-0", 50, 40, 15),
        ("premium-1", 100, 80, 30),
        ("premium-2", 250, 200, 60),
        ("premium-3", 500, 400, 120),
        ("premium-4", 750, 700, 200),
        ("premium-5", 1024, 1000, 400),
        ("premium-7", 7168, 10000, 750),
        ("premium-9", 10240, 25000, 1450),
    ]
]
