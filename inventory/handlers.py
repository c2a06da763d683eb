"""Inventory's reactions to the shop's events, and what it subscribes to."""

from events.consumer import Consumer

from .inbound import OrderCancelled, OrderPlaced
from .services import levels_once_per_batch, reservation_create, reservation_release


def reserve_stock(event: OrderPlaced) -> None:
    """Hold stock for every line of the order, or reject it whole."""
    reservation_create(order_id=event.order_id, lines=event.lines)


def release_stock(event: OrderCancelled) -> None:
    """Give back what the order holds (or remember the cancel if it came first)."""
    reservation_release(order_id=event.order_id)


SUBSCRIPTIONS = [
    (OrderPlaced, reserve_stock),
    (OrderCancelled, release_stock),
]

CONSUMER = Consumer(
    name="inventory",
    app="inventory",
    stream="SHOP",
    subjects=("shop.order.placed", "shop.order.cancelled"),
    subscriptions=tuple(SUBSCRIPTIONS),
    batch_scope=levels_once_per_batch,
)
