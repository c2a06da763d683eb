"""The first benchmark: how many orders per second the whole pipeline takes, and where the time goes.

Run it with ``make bench`` (or ``make bench BENCH_ARGS="--orders 300 --concurrency 16"``):
the Makefile starts fresh embedded PostgreSQL and NATS and runs
``python -m loadtests.bench`` with ``DATABASE_URL`` and ``NATS_URL`` pointing at them.

The bench migrates, creates a catalog with plenty of stock, then starts the
real processes as the devstack does (granian WSGI web server, ``run_relay``,
``run_workers``) and places one-line orders in five scenarios:

- ``main``: HTTP ``POST /api/orders`` through web, relay and workers;
- ``service``: ``shop.services.order_place`` called in-process from threads (no HTTP);
- ``acceptance-only``: the HTTP load with relay and workers stopped (the web path alone);
- ``batch-1``: like main, with workers fetching and committing one event at a time;
- ``half-rate``: paced HTTP load at half of main's end-to-end rate (latency below saturation).

It prints a table (accepted orders/s, end-to-end orders/s, place-to-final
latency percentiles, errors, each with its ratio to main), a second one of
CPU milliseconds per order by process (where the time goes), and writes the
figures to ``bench-results/<timestamp>.json``. It asserts nothing about timing.
Each child's output is kept under ``.data/bench/<timestamp>/``. See docs/benchmarks.md.
"""
