"""Inventory's reactions to the shop's events, and what it subscribes to."""

from events.consumer import Consumer, Message, batch_handler

from .inbound import OrderCancelled, OrderPlaced
from .services import reservation_release, reservations_create


@batch_handler
def reserve_stock(placed: list[Message[OrderPlaced]]) -> None:
    """Hold stock for every line of each order, or reject it whole; a run of orders at once."""
    reservations_create(orders=[(m.event.order_id, m.event.lines) for m in placed], causes=[m.envelope for m in placed])


def release_stock(message: Message[OrderCancelled]) -> None:
    """Give back what the order holds (or remember the cancel if it came first)."""
    reservation_release(order_id=message.event.order_id, cause=message.envelope)


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
)
