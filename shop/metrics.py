"""The shop's own metrics: order latency, the near cache of stock levels, websockets.

How long an order waits for its answer and for each step to reach its page;
how often the near cache answers and how stale it is; how many sockets are open.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from prometheus_client import Counter, Gauge, Histogram

from events.metrics import LATENCY_BUCKETS

from .models import Order

ORDER_LATENCY = Histogram(
    "shop_order_latency_seconds",
    "Seconds from placing an order to its confirmation or rejection.",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)


# The last hop of an order's flow (event → web push), measured where the frame goes out: one
# observation per frame pushed on an order's websocket. Spans every hop before it (relay, NATS).
ORDER_PUSH_LAG = Histogram(
    "shop_order_push_lag_seconds",
    "Seconds from an order event's commit to its push on the order's websockets.",
    ["type"],
    buckets=LATENCY_BUCKETS,
)
# The events an order socket is sent; the type comes off the wire, so any other counts as "other".
ORDER_EVENT_TYPES = frozenset(
    {
        "OrderPlaced",
        "StockReserved",
        "StockReservationRejected",
        "StockReleased",
        "OrderConfirmed",
        "OrderRejected",
        "OrderCancelled",
    }
)

# The storefront's near cache of stock levels (shop/live.py) and its websockets (shop/consumers.py).
CACHE_HITS = Counter("stock_cache_hits_total", "Stock level reads answered by the near cache.")
CACHE_MISSES = Counter("stock_cache_misses_total", "Stock level reads the near cache could not answer.")
CACHE_STALENESS = Histogram(
    "stock_cache_staleness_seconds",
    "Seconds from a stock change (event time) to its near-cache update.",
    buckets=LATENCY_BUCKETS,
)
# "livesum": the open sockets of the processes alive now (https://prometheus.github.io/client_python/multiprocess/).
WEBSOCKETS = Gauge("websocket_connections", "Open websocket connections.", multiprocess_mode="livesum")


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


def cache_hit(count: int = 1) -> None:
    """Count stock level reads the near cache answered."""
    CACHE_HITS.inc(count)


def cache_miss(count: int = 1) -> None:
    """Count stock level reads the near cache could not answer."""
    CACHE_MISSES.inc(count)


def cache_updated(staleness_seconds: float) -> None:
    """Record how old a stock change was when the near cache took it."""
    CACHE_STALENESS.observe(max(0.0, staleness_seconds))


def websocket_opened() -> None:
    """Count an open websocket."""
    WEBSOCKETS.inc()


def websocket_closed() -> None:
    """Count a closed websocket."""
    WEBSOCKETS.dec()
