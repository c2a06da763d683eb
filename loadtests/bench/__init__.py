"""The performance lab: what the pipeline does, what each lever changes, and how far it is from its ceilings.

Run it with ``make bench`` (or ``make bench BENCH_ARGS="--quick"``): the
Makefile starts fresh embedded PostgreSQL and NATS and runs ``python -m
loadtests.bench`` with ``DATABASE_URL`` and ``NATS_URL`` pointing at them.

The lab migrates, creates a catalog with plenty of stock, starts the real
processes as the devstack does (granian WSGI web server, ``run_relay``,
``run_workers``), then in one invocation:

- ``scenarios.py``: the baseline and one lever changed at a time (batch size,
  worker processes, ...), closed-loop HTTP load, each figure with its ratio to
  the baseline; a lever is one line in ``SCENARIOS``;
- ``ladder.py``: the saturation ladder (open-loop load, step by step, until
  the pipeline stops keeping up), its knee and the latency at half of it;
- ``ceilings.py``: ``pgbench`` doing one order placement's writes, and a raw
  JetStream publish/consume loop;
- ``report.py`` and ``plots.py``: text tables, ``bench-results/<timestamp>.json``,
  PNG plots and the generated section of docs/benchmarks.md.

It asserts nothing about timing. Each child's output is kept under
``.data/bench/<timestamp>/``. See docs/benchmarks.md.
"""
