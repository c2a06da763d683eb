"""Inventory's reactions to the shop's events, and what it subscribes to."""

from events.base import Envelope
from events.consumer import Consumer, batch_handler

from .inbound import OrderCancelled, OrderPlaced
from .services import levels_once_per_batch, reservation_release, reservations_create


@batch_handler
def reserve_stock(placed: list[tuple[Envelope, OrderPlaced]]) -> None:
    """Hold stock for every line of each order, or reject it whole; a run of orders at once."""
    reservations_create(
        orders=[(event.order_id, event.lines) for _, event in placed], causes=[envelope for envelope, _ in placed]
    )


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
