"""The shop's reactions to inventory's events: the order state machine moves on."""

from events.base import Envelope
from events.consumer import Consumer, batch_handler
from events.outbox import current_cause

from .inbound import StockReleased, StockReservationRejected, StockReserved
from .metrics import order_decided
from .services import Decision, order_note, orders_settle


@batch_handler
def settle_orders(decisions: list[tuple[Envelope, StockReserved | StockReservationRejected]]) -> None:
    """Stock held: a pending order becomes confirmed; stock short: rejected, with the reason."""
    moved = orders_settle(
        decisions=[
            Decision(event.order_id, True, envelope)
            if isinstance(event, StockReserved)
            else Decision(event.order_id, False, envelope, event.reason or "not enough stock")
            for envelope, event in decisions
        ]
    )
    for order in moved:
        order_decided(order)


def note_release(event: StockReleased) -> None:
    """The stock of a cancelled order went back: note it on the order's timeline."""
    order_note(order_id=event.order_id, cause=current_cause())


SUBSCRIPTIONS = [
    (StockReserved, settle_orders),
    (StockReservationRejected, settle_orders),
    (StockReleased, note_release),
]

CONSUMER = Consumer(
    name="shop",
    app="shop",
    stream="INVENTORY",
    subjects=("inventory.reservation.>",),
    subscriptions=tuple(SUBSCRIPTIONS),
)
