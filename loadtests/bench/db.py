"""What the bench reads and writes in the database: its catalog, probes, and the figures of a run.

Latency is computed from rows the system writes anyway, so measuring adds no
load: an order's ``created_at`` (set by the web process when it inserts the
order) to the ``at`` of its ``OrderConfirmed`` / ``OrderRejected`` timeline
entry (set by the shop worker that decided it). Both are wall-clock times of
the same machine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import nats
from django.db import connection
from django.db.models import Max, Min

from events import bus
from events.base import Line
from events.consumer import configured_consumers
from events.models import Unpublished
from inventory.services import stock_receive
from shop.models import Category, Order, Product, TimelineEntry
from shop.services import order_place

from ..stats import percentile
from .stack import BenchError

FINAL_TYPES = ("OrderConfirmed", "OrderRejected")
PRODUCTS = 16
STOCK_PER_RUN = 1_000_000  # per product and run: far more than any run orders, so every order confirms


def catalog_create(products: int = PRODUCTS) -> list[str]:
    """Create (or top up) the bench's products, each with plenty of stock; return their SKUs."""
    category, _ = Category.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    skus = [f"BENCH-{i:02d}" for i in range(1, products + 1)]
    for i, sku in enumerate(skus):
        Product.objects.get_or_create(
            sku=sku, defaults={"name": f"Bench item {i + 1}", "price": Decimal("9.90") + i, "category": category}
        )
        stock_receive(sku=sku, quantity=STOCK_PER_RUN, create=True)
    return skus


def place(email: str, sku: str) -> None:
    """Place a one-line order in this process, then give the connection back as a request's end does."""
    try:
        order_place(email=email, lines=[Line(sku=sku, quantity=1)])
    finally:
        connection.close()


def pending_count(email: str) -> int:
    """Return how many orders of ``email`` are not final yet."""
    return Order.objects.filter(email=email, status=Order.Status.PENDING).count()


def wait_final(email: str, timeout: float) -> int:
    """Wait until every order of ``email`` is final, at most ``timeout`` s; return how many are still pending."""
    deadline = time.monotonic() + timeout
    while (left := pending_count(email)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


def probe(email: str, sku: str, timeout: float = 90) -> None:
    """Place one order and wait for its end: proves that relay and workers are up."""
    place(email, sku)
    if wait_final(email, timeout):
        raise BenchError(f"a probe order was not decided within {timeout:.0f}s: are the relay and workers up?")


def quiesce(timeout: float) -> bool:
    """Wait until the outbox is empty and every durable consumer is idle; return whether it got there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Unpublished.objects.exists() and asyncio.run(_consumers_idle()):
            return True
        time.sleep(0.25)
    return False


async def _consumers_idle() -> bool:
    # nats.connect, not bus.connect: bus logs every close as a warning ("nats disconnected").
    nc = await nats.connect(bus.nats_url().split(","), name="bench", allow_reconnect=False)
    try:
        js = nc.jetstream()
        for consumer in configured_consumers():
            if any(await bus.consumer_pending(js, consumer.stream, consumer.name)):
                return False
        return True
    finally:
        await nc.close()


@dataclass(frozen=True)
class Outcome:
    """What the database says about the orders of one scenario."""

    orders: int
    final: int
    rejected: int
    first_created: datetime | None
    first_final: datetime | None
    last_final: datetime | None
    latencies: list[float]  # seconds, place -> final, one per final order


def outcome(email: str) -> Outcome:
    """Read the figures of the orders of ``email`` from the database."""
    orders = Order.objects.filter(email=email)
    finals = TimelineEntry.objects.filter(order__email=email, type__in=FINAL_TYPES)
    pairs = list(finals.values_list("order__created_at", "at"))
    span = finals.aggregate(first=Min("at"), last=Max("at"))
    return Outcome(
        orders=orders.count(),
        final=len(pairs),
        rejected=orders.filter(status=Order.Status.REJECTED).count(),
        first_created=orders.aggregate(first=Min("created_at"))["first"],
        first_final=span["first"],
        last_final=span["last"],
        latencies=[(at - created).total_seconds() for created, at in pairs],
    )


def hop_quantiles(orders: int) -> dict[str, tuple[float, float]]:
    """Return {hop: (p50 ms, p99 ms)} over the last ``orders`` orders decided (the ops page's hops)."""
    from ops.selectors import HOPS, recent_order_hops

    decided = recent_order_hops(orders)
    out = {}
    for hop in HOPS:
        values = [o["hops"][hop] * 1000 for o in decided]
        out[hop] = (round(percentile(values, 0.5), 2), round(percentile(values, 0.99), 2)) if values else (0.0, 0.0)
    return out
