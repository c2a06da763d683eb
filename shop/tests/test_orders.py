"""Shop slices: given an order and inventory's events, when the handlers run, then the order."""

import pytest

from events.base import Line, new_envelope
from events.consumer import Message, takes_batch
from events.models import StoredEvent, Unpublished
from events.outbox import OutsideTransaction, record
from shop.events import OrderPlaced
from shop.handlers import note_release, settle_orders
from shop.inbound import StockReleased, StockReservationRejected, StockReserved
from shop.models import Order
from shop.services import CannotCancel, UnknownProducts, order_cancel, order_place

pytestmark = pytest.mark.django_db


def deliver(handler, event) -> None:
    """Run a handler as the consumer runner does: the event in its envelope."""
    message = Message(new_envelope(event, correlation_id=event.order_id, causation_id=None), event)
    handler([message] if takes_batch(handler) else message)


def place(make_product, quantity: int = 1) -> Order:
    make_product("SKU-1", stock=0, price="4.25")
    order = order_place(email="c@example.org", lines=[Line("SKU-1", quantity)])
    return order


def test_an_order_is_placed_at_catalog_prices_with_its_event(make_product):
    order = place(make_product, quantity=3)

    assert str(order.total) == "12.75"
    event = StoredEvent.objects.get(type="OrderPlaced")
    assert event.correlation_id == str(order.id) and Unpublished.objects.filter(event_id=event.event_id).exists()
    assert b'"lines":[{"sku":"SKU-1","quantity":3}]' in bytes(event.payload)


def test_unknown_products_place_nothing(make_product):
    make_product("SKU-1", stock=0)
    with pytest.raises(UnknownProducts):
        order_place(email="c@example.org", lines=[Line("SKU-1", 1), Line("NOPE", 1)])
    assert not Order.objects.exists() and not StoredEvent.objects.filter(type="OrderPlaced").exists()


def test_reserved_stock_confirms_a_pending_order_once(make_product):
    order = place(make_product)

    deliver(settle_orders, StockReserved(order_id=str(order.id)))
    deliver(settle_orders, StockReserved(order_id=str(order.id)))

    order.refresh_from_db()
    assert order.status == Order.Status.CONFIRMED
    assert StoredEvent.objects.filter(type="OrderConfirmed").count() == 1
    confirmed = StoredEvent.objects.get(type="OrderConfirmed")
    assert confirmed.correlation_id == str(order.id) and confirmed.causation_id is not None


def test_a_rejection_rejects_a_pending_order_with_the_reason(make_product):
    order = place(make_product)

    deliver(settle_orders, StockReservationRejected(order_id=str(order.id), reason="not enough stock for SKU-1"))

    order.refresh_from_db()
    assert (order.status, order.reason) == (Order.Status.REJECTED, "not enough stock for SKU-1")
    assert [t.type for t in order.timeline.all()] == ["OrderPlaced", "StockReservationRejected", "OrderRejected"]


def test_a_cancelled_order_stays_cancelled_when_its_reservation_arrives_late(make_product):
    order = place(make_product)
    order_cancel(order_id=order.id)

    deliver(settle_orders, StockReserved(order_id=str(order.id)))
    deliver(note_release, StockReleased(order_id=str(order.id)))

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert not StoredEvent.objects.filter(type="OrderConfirmed").exists()
    assert StoredEvent.objects.filter(type="OrderCancelled").count() == 1


@pytest.mark.parametrize("status", [Order.Status.REJECTED, Order.Status.CANCELLED])
def test_a_final_order_cannot_be_cancelled(make_product, status):
    order = place(make_product)
    Order.objects.filter(id=order.id).update(status=status)

    with pytest.raises(CannotCancel):
        order_cancel(order_id=order.id)


@pytest.mark.django_db(transaction=True)
def test_an_event_cannot_be_recorded_outside_a_transaction():
    with pytest.raises(OutsideTransaction):
        record(OrderPlaced(order_id="x", lines=[]))


def test_a_run_of_decisions_settles_each_order_with_its_own_cause(make_product):
    make_product("SKU-1", stock=0, price="1.00")
    orders = [order_place(email="c@example.org", lines=[Line("SKU-1", 1)]) for _ in range(3)]
    order_cancel(order_id=orders[2].id)
    events = [
        StockReserved(order_id=str(orders[0].id)),
        StockReservationRejected(order_id=str(orders[1].id), reason="not enough stock for SKU-1"),
        StockReserved(order_id=str(orders[2].id)),
    ]
    run = [Message(new_envelope(e, correlation_id=e.order_id, causation_id=None), e) for e in events]

    settle_orders(run)

    for order in orders:
        order.refresh_from_db()
    assert [o.status for o in orders] == [Order.Status.CONFIRMED, Order.Status.REJECTED, Order.Status.CANCELLED]
    assert orders[1].reason == "not enough stock for SKU-1"
    confirmed = StoredEvent.objects.get(type="OrderConfirmed")
    assert (confirmed.correlation_id, confirmed.causation_id) == (str(orders[0].id), run[0].envelope.event_id)
    assert [t.type for t in orders[2].timeline.all()] == ["OrderPlaced", "OrderCancelled", "StockReserved"]


def test_an_order_pages_first_frame_holds_its_events_the_shop_has_not_noted_yet(make_product):
    # Given an order, and inventory's StockReleased for it committed (in the log) but not yet applied by the shop:
    # a live process may see it pass before the page's socket watches the order
    from django.db import transaction

    from shop.consumers import order_snapshot

    order = place(make_product)
    with transaction.atomic():
        released = record(StockReleased(order_id=str(order.id)), correlation_id=str(order.id))
    # When the page's socket connects
    snapshot = order_snapshot(str(order.id))
    # Then its first frame has the event, once, after the order's own entry
    types = [entry["type"] for entry in snapshot["timeline"]]
    assert types == ["OrderPlaced", "StockReleased"]
    assert snapshot["timeline"][1]["event_id"] == released.event_id
    # and once the shop notes that very event on the timeline, it is still there once
    note_release(Message(released, StockReleased(order_id=str(order.id))))
    assert [e["type"] for e in order_snapshot(str(order.id))["timeline"]] == ["OrderPlaced", "StockReleased"]
