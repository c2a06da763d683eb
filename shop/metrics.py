"""The shop's own metrics: how long an order waits for its answer, and for each step to reach its page."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from prometheus_client import Histogram

from events.metrics import LATENCY_BUCKETS

from .models import Order

ORDER_LATENCY = Histogram(
    "shop_order_latency_seconds", "Seconds from placing an order to its confirmation or rejection.",
    ["outcome"], buckets=LATENCY_BUCKETS,
)  # fmt: skip


# The last hop of an order's flow (event → web push), measured where the frame goes out: one
# observation per frame pushed on an order's websocket. Spans every hop before it (relay, NATS).
ORDER_PUSH_LAG = Histogram(
    "shop_order_push_lag_seconds", "Seconds from an order event's commit to its push on the order's websockets.",
    ["type"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
# The events an order socket is sent; the type comes off the wire, so any other counts as "other".
ORDER_EVENT_TYPES = frozenset({"OrderPlaced", "StockReserved", "StockReservationRejected", "StockReleased",
                               "OrderConfirmed", "OrderRejected", "OrderCancelled"})  # fmt: skip


def order_decided(order: Order) -> None:
    """Observe an order that just became confirmed or rejected, once its transaction commits."""
    if order.status not in (Order.Status.CONFIRMED, Order.Status.REJECTED):
        return
    outcome, seconds = str(order.status), (order.updated_at - order.created_at).total_seconds()
    transaction.on_commit(lambda: ORDER_LATENCY.labels(outcome).observe(max(0.0, seconds)))


def order_event_pushed(event_type: str, occurred_at: str) -> None:
    """Observe how old an order event (its ISO ``occurred_at``) was when a websocket was sent it."""
    try:
        seconds = (datetime.now(UTC) - datetime.fromisoformat(occurred_at)).total_seconds()
    except (TypeError, ValueError):
        return
    ORDER_PUSH_LAG.labels(event_type if event_type in ORDER_EVENT_TYPES else "other").observe(max(0.0, seconds))
