"""The shop's reactions to inventory's events: the order state machine moves on, the stock levels follow."""

from events.consumer import Consumer, Message, batch_handler

from .inbound import StockLevelChanged, StockReleased, StockReservationRejected, StockReserved
from .metrics import order_decided
from .projections import stock_levels_apply
from .services import Decision, order_note, orders_settle


@batch_handler
def settle_orders(decisions: list[Message[StockReserved | StockReservationRejected]]) -> None:
    """Stock held: a pending order becomes confirmed; stock short: rejected, with the reason."""
    moved = orders_settle(
        decisions=[
            Decision(m.event.order_id, True, m.envelope)
            if isinstance(m.event, StockReserved)
            else Decision(m.event.order_id, False, m.envelope, m.event.reason or "not enough stock")
            for m in decisions
        ]
    )
    for order in moved:
        order_decided(order)


def note_release(message: Message[StockReleased]) -> None:
    """The stock of a cancelled order went back: note it on the order's timeline."""
    order_note(order_id=message.event.order_id, cause=message.envelope)


SUBSCRIPTIONS = [
    (StockReserved, settle_orders),
    (StockReservationRejected, settle_orders),
    (StockReleased, note_release),
    (StockLevelChanged, stock_levels_apply),
]

CONSUMER = Consumer(
    name="shop",
    app="shop",
    stream="INVENTORY",
    # One durable for the whole stream: a reservation's outcome and the levels it moved are published
    # together, so one batch (one transaction, one receipts statement) applies both.
    subjects=("inventory.reservation.>", "inventory.stock.>"),
    subscriptions=tuple(SUBSCRIPTIONS),
)
