"""The shop's reactions to inventory's events: the order state machine moves on."""

from events.consumer import Consumer
from events.outbox import current_cause

from .inbound import StockReleased, StockReservationRejected, StockReserved
from .metrics import order_decided
from .services import order_confirm, order_note, order_reject


def confirm_order(event: StockReserved) -> None:
    """The stock is held: a pending order becomes confirmed."""
    order_decided(order_confirm(order_id=event.order_id, cause=current_cause()))


def reject_order(event: StockReservationRejected) -> None:
    """The stock is short: a pending order becomes rejected, with the reason."""
    order_decided(
        order_reject(order_id=event.order_id, reason=event.reason or "not enough stock", cause=current_cause())
    )


def note_release(event: StockReleased) -> None:
    """The stock of a cancelled order went back: note it on the order's timeline."""
    order_note(order_id=event.order_id, cause=current_cause())


SUBSCRIPTIONS = [
    (StockReserved, confirm_order),
    (StockReservationRejected, reject_order),
    (StockReleased, note_release),
]

CONSUMER = Consumer(
    name="shop",
    app="shop",
    stream="INVENTORY",
    subjects=("inventory.reservation.>",),
    subscriptions=tuple(SUBSCRIPTIONS),
)
