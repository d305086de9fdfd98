"""Stand-ins for the outside world, shared by the tests and the benchmarks; never imported by
the product (a test under ``tests/standins/`` checks both directions).

- ``standins.heroku``: the fake Heroku Platform API at the HTTP level, in-process (through
  ``responses``) or served on a real socket, checking every request and answer against
  ``standins/heroku_contract.json`` (cut from Heroku's official schema by
  ``scripts/heroku_contract.py``).
- ``standins.redis_servers``: throwaway real ``redis-server`` processes on free ports
  (password, ``maxmemory``, TLS, stop and start again).

They live outside ``tests/`` so that a benchmark is a script over the product and these
stand-ins, not over the test suite; the pytest fixtures built on them stay in
``tests/conftest.py``.
"""
