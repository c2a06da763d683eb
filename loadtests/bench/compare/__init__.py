"""The lab measures any server side by side: the project and whatever else speaks its HTTP contract.

``make bench BENCH_ARGS="--compare-only --devstack --against sync=http://127.0.0.1:8310"``
runs two steps against each system, through the contract alone (DESIGN §7):

- ``steps.closed_step``: the lab's closed-loop saturation run (``--orders`` orders
  of 1–2 lines, ``--concurrency`` clients), confirmed orders/s;
- ``steps.open_step``: a fixed-rate open loop (``--open-rate`` orders/s for
  ``--open-seconds``), each order's latency from its *scheduled* send to the
  ``at`` of its final timeline entry, read back with ``GET /api/orders/{id}``.

The systems: the project on the lab's own stack, the project under ``manage.py
devstack`` as ``make demo`` runs it (``--devstack``, ``devstack.py``), and each
``--against NAME=URL``. ``report.py`` writes one table with ratios to the lab
stack, ``compare.png`` and the ``compare`` block of docs/benchmarks.md.
"""
