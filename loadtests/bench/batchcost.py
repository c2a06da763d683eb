"""What one consumer batch costs, in-process: CPU per batch and per message of each durable consumer.

``make bench-batch`` (``python -m devstack.embedded -- python -m loadtests.bench.batchcost``)
calls ``events.consumer.process_batch`` directly, in this process, on
deliveries built like the real ones, for each consumer of
``settings.EVENT_CONSUMERS`` and batch sizes 1, 10 and 100, against a fresh
embedded PostgreSQL (no NATS, no relay: the events its handlers record stay in
the outbox). It reads this process's CPU time and that of its PostgreSQL
backend (from ``/proc``), and counts the SQL statements, so the fixed cost of a
batch (fetch and acks aside) can be told from the cost of each message in it.
It is a measuring tool, not a test, and asserts nothing about speed.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SIZES = (1, 10, 100)
MESSAGES = 1000  # per consumer and batch size (fewer batches for larger sizes)


@dataclass(frozen=True)
class Cost:
    """What batches of one size cost one consumer."""

    consumer: str
    size: int
    batches: int
    python_ms: float  # CPU of this process per batch
    postgres_ms: float  # CPU of its PostgreSQL backend per batch
    statements: float  # SQL statements per batch (the commit included)

    @property
    def per_message_ms(self) -> float:
        return (self.python_ms + self.postgres_ms) / self.size


def _backend_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _deliveries(consumer, events: list) -> list:
    """Return real-looking deliveries (the wire bytes, first delivery) of ``events``."""
    from events.base import encode, new_envelope
    from events.consumer import Delivery

    out = []
    for n, event in enumerate(events):
        envelope = new_envelope(event, correlation_id=None, causation_id=None)
        data = encode(envelope, event.to_data())
        out.append(Delivery(data=data, subject=event.subject(), headers={}, num_delivered=1, stream_seq=n))
    return out


def measure(consumer, label: str, make_events: Callable[[int], list], size: int) -> Cost:
    """Apply MESSAGES messages to ``consumer`` in batches of ``size``; return the cost per batch, as ``label``."""
    from django.db import connection

    from events.consumer import process_batch

    batches = [_deliveries(consumer, make_events(size)) for _ in range(max(1, MESSAGES // size))]
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    process_batch(consumer, batches[0][:1], 5)  # warm: the pool's connection, the handlers' first queries
    py0, pg0 = time.process_time(), _backend_seconds(backend)
    with connection.execute_wrapper(count):
        for batch in batches:
            process_batch(consumer, batch, 5)
    py, pg = time.process_time() - py0, _backend_seconds(backend) - pg0
    n = len(batches)
    # +1: the commit, which Django sends without a cursor.
    return Cost(label, size, n, py * 1000 / n, pg * 1000 / n, statements / n + 1)


def table(costs: list[Cost]) -> str:
    """Return the costs as a markdown table, with each consumer's fixed cost of a batch."""
    rows = [
        "| consumer | batch size | CPU ms per batch: python | postgres | statements per batch | CPU ms per message |",
        "|---|---|---|---|---|---|",
    ]
    for c in costs:
        rows.append(
            f"| {c.consumer} | {c.size} | {c.python_ms:.2f} | {c.postgres_ms:.2f} | {c.statements:.1f} | "
            f"{c.per_message_ms:.2f} |"
        )
    rows += ["", "| consumer | fixed CPU ms per batch (size 1 less one message of size 100) |", "|---|---|"]
    for name in dict.fromkeys(c.consumer for c in costs):
        one = next(c for c in costs if c.consumer == name and c.size == 1)
        big = max((c for c in costs if c.consumer == name), key=lambda c: c.size)
        rows.append(f"| {name} | {one.python_ms + one.postgres_ms - big.per_message_ms:.2f} |")
    return "\n".join(rows)


def _event_makers() -> list[tuple[str, str, Callable[[int], list]]]:
    """Return (label, consumer name, a function making ``n`` fresh events of one kind it handles)."""
    from events.base import Line
    from inventory.events import StockLevelChanged, StockReserved
    from shop.events import OrderPlaced
    from shop.models import Order

    from .db import catalog_create

    skus = catalog_create()
    versions = dict.fromkeys(skus, 10**6)

    def placed(n: int) -> list:
        return [OrderPlaced(order_id=str(uuid.uuid4()), lines=[Line(skus[i % len(skus)], 1)]) for i in range(n)]

    def reserved(n: int) -> list:
        orders = Order.objects.bulk_create(
            Order(email="batchcost@bench.example.org", total=1, currency="EUR") for _ in range(n)
        )
        return [StockReserved(order_id=str(o.id), lines=[Line(skus[0], 1)]) for o in orders]

    def levels(n: int) -> list:
        out = []
        for i in range(n):
            sku = skus[i % len(skus)]
            versions[sku] += 1
            out.append(
                StockLevelChanged(sku=sku, on_hand=10**6, reserved=i, available=10**6 - i, version=versions[sku])
            )
        return out

    return [("inventory", "inventory", placed), ("shop", "shop", reserved), ("shop: stock levels", "shop", levels)]


def main() -> int:
    if not os.environ.get("DATABASE_URL"):
        print(
            "run it with a database: make bench-batch (or python -m devstack.embedded -- python -m "
            "loadtests.bench.batchcost)",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from events.consumer import configured_consumers

    call_command("migrate", verbosity=0)
    consumers = {c.name: c for c in configured_consumers()}
    costs = [
        measure(consumers[name], label, make, size)
        for label, name, make in _event_makers()
        if name in consumers
        for size in SIZES
    ]
    print(table(costs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
