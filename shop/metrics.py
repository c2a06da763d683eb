"""The shop's own metric: how long an order waits for its answer (place → confirmed / rejected)."""

from __future__ import annotations

from django.db import transaction
from prometheus_client import Histogram

from events.metrics import LATENCY_BUCKETS

from .models import Order

ORDER_LATENCY = Histogram(
    "shop_order_latency_seconds", "Seconds from placing an order to its confirmation or rejection.",
    ["outcome"], buckets=LATENCY_BUCKETS,
)  # fmt: skip


def order_decided(order: Order) -> None:
    """Observe an order that just became confirmed or rejected, once its transaction commits."""
    if order.status not in (Order.Status.CONFIRMED, Order.Status.REJECTED):
        return
    outcome, seconds = str(order.status), (order.updated_at - order.created_at).total_seconds()
    transaction.on_commit(lambda: ORDER_LATENCY.labels(outcome).observe(max(0.0, seconds)))
