"""Inventory slices: given stock and events, when a handler runs, then rows and events."""

import json
import uuid

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from events.base import Line, new_envelope
from events.consumer import Message
from events.models import StoredEvent
from inventory.handlers import release_stock as release_one
from inventory.handlers import reserve_stock as reserve_run
from inventory.inbound import OrderCancelled, OrderPlaced
from inventory.models import Reservation, StockItem
from inventory.projections import differences, rebuild
from inventory.services import stock_receive

pytestmark = pytest.mark.django_db


def given_stock(**levels: int) -> None:
    for sku, quantity in levels.items():
        stock_receive(sku=sku, quantity=quantity, create=True)


def placed(*lines: tuple[str, int], order_id: str | None = None) -> OrderPlaced:
    return OrderPlaced(order_id=order_id or str(uuid.uuid4()), lines=[Line(s, q) for s, q in lines])


def message(event: OrderPlaced | OrderCancelled) -> Message:
    return Message(new_envelope(event, correlation_id=event.order_id, causation_id=None), event)


def reserve_stock(*events: OrderPlaced) -> None:
    """Deliver a run of OrderPlaced to the batch handler, as the consumer runner does."""
    reserve_run([message(e) for e in events])


def release_stock(event: OrderCancelled) -> None:
    """Deliver one OrderCancelled to its handler."""
    release_one(message(event))


def stock() -> dict[str, tuple[int, int]]:
    return {i.sku: (i.on_hand, i.reserved) for i in StockItem.objects.order_by("sku")}


def types_since(seq: int) -> list[str]:
    return list(StoredEvent.objects.filter(seq__gt=seq).order_by("seq").values_list("type", flat=True))


def last_seq() -> int:
    return StoredEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_an_order_that_fits_is_held_whole():
    given_stock(A=5, B=5)
    before = last_seq()

    reserve_stock(placed(("A", 2), ("B", 5)))

    assert stock() == {"A": (5, 2), "B": (5, 5)}
    assert types_since(before) == ["StockReserved", "StockLevelChanged", "StockLevelChanged"]


def test_one_short_line_rejects_the_order_and_holds_nothing():
    given_stock(A=5, B=1)
    before = last_seq()
    event = placed(("A", 2), ("B", 2))

    reserve_stock(event)

    assert stock() == {"A": (5, 0), "B": (1, 0)}
    assert Reservation.objects.get(order_id=event.order_id).status == Reservation.Status.REJECTED
    assert types_since(before) == ["StockReservationRejected"]
    rejected = StoredEvent.objects.get(type="StockReservationRejected")
    assert b'"sku":"B","requested":2,"available":1' in bytes(rejected.payload)


def test_an_unknown_sku_rejects_the_order():
    given_stock(A=5)
    event = placed(("A", 1), ("NOPE", 1))

    reserve_stock(event)

    assert Reservation.objects.get(order_id=event.order_id).status == Reservation.Status.REJECTED
    assert stock() == {"A": (5, 0)}


def test_lines_of_one_sku_are_summed_before_checking():
    given_stock(A=3)
    event = placed(("A", 2), ("A", 2))

    reserve_stock(event)

    assert Reservation.objects.get(order_id=event.order_id).status == Reservation.Status.REJECTED
    assert stock() == {"A": (3, 0)}


def test_the_same_order_twice_is_held_once():
    given_stock(A=5)
    event = placed(("A", 2))

    reserve_stock(event)
    reserve_stock(event)

    assert stock() == {"A": (5, 2)}
    assert StoredEvent.objects.filter(type="StockReserved").count() == 1


def test_cancel_gives_the_stock_back_once():
    given_stock(A=5)
    event = placed(("A", 2))
    reserve_stock(event)

    release_stock(OrderCancelled(order_id=event.order_id))
    release_stock(OrderCancelled(order_id=event.order_id))

    assert stock() == {"A": (5, 0)}
    assert StoredEvent.objects.filter(type="StockReleased").count() == 1


def test_a_cancel_that_arrives_first_is_remembered_and_the_order_never_held():
    given_stock(A=5)
    event = placed(("A", 2))

    release_stock(OrderCancelled(order_id=event.order_id))
    reserve_stock(event)

    assert stock() == {"A": (5, 0)}
    assert Reservation.objects.get(order_id=event.order_id).status == Reservation.Status.CANCELLED_BEFORE_PLACED
    assert not StoredEvent.objects.filter(type__in=["StockReserved", "StockReleased"]).exists()


def test_the_database_refuses_an_oversell_whatever_the_code_does():
    given_stock(A=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        StockItem.objects.filter(sku="A").update(reserved=2)


def test_stock_is_the_fold_of_its_events():
    given_stock(A=10, B=4)
    first = placed(("A", 3), ("B", 4))
    reserve_stock(first)
    reserve_stock(placed(("B", 1)))  # rejected
    release_stock(OrderCancelled(order_id=first.order_id))
    reserve_stock(placed(("A", 6)))
    stock_receive(sku="B", quantity=2)
    live = stock()

    assert differences() == []
    StockItem.objects.filter(sku="A").update(reserved=0)  # a corrupted read model...
    assert differences() != []
    rebuild()  # ...rebuilt from the log alone

    assert stock() == live == {"A": (10, 6), "B": (6, 0)}
    assert differences() == []
    assert StockItem.objects.get(sku="A").version == 4  # received, reserved, released, reserved


def test_a_run_announces_each_changed_sku_once_with_its_final_level():
    given_stock(A=10, B=10)
    before = last_seq()

    with transaction.atomic():
        reserve_stock(placed(("A", 1)), placed(("A", 2), ("B", 1)), placed(("B", 20)))
        with pytest.raises(RuntimeError), transaction.atomic():  # a message whose savepoint rolls back
            reserve_stock(placed(("B", 5)))
            raise RuntimeError

    assert types_since(before) == [
        "StockReserved",
        "StockReserved",
        "StockReservationRejected",
        "StockLevelChanged",
        "StockLevelChanged",
    ]
    levels = {
        e.aggregate_id: bytes(e.payload) for e in StoredEvent.objects.filter(type="StockLevelChanged", seq__gt=before)
    }
    assert b'"reserved":3,"available":7,"version":3' in levels["A"]
    assert b'"reserved":1,"available":9,"version":2' in levels["B"]
    assert differences() == []


def test_a_run_of_orders_is_decided_in_order_each_whole_or_not_at_all():
    given_stock(A=5, B=2)
    first, short, last, again = placed(("A", 3)), placed(("A", 1), ("B", 3)), placed(("A", 2), ("B", 2)), None
    before = last_seq()

    reserve_stock(first, short, last, first)  # `first` again: a redelivery inside the run
    again = placed(("A", 1))
    reserve_stock(again)  # nothing left of A

    status = {str(r.order_id): r.status for r in Reservation.objects.all()}
    assert status == {
        first.order_id: Reservation.Status.HELD,
        short.order_id: Reservation.Status.REJECTED,  # B short: A untouched for it
        last.order_id: Reservation.Status.HELD,
        again.order_id: Reservation.Status.REJECTED,
    }
    assert stock() == {"A": (5, 5), "B": (2, 2)}
    assert types_since(before)[:3] == ["StockReserved", "StockReservationRejected", "StockReserved"]
    assert StockItem.objects.get(sku="A").version == 3  # received + two reservations: one version per fact
    assert differences() == []


def test_each_fact_of_a_run_is_caused_by_its_own_order_event():
    given_stock(A=5)
    one, two = placed(("A", 1)), placed(("A", 1))

    reserve_stock(one, two)

    reserved = StoredEvent.objects.filter(type="StockReserved").order_by("seq")
    assert [e.correlation_id for e in reserved] == [one.order_id, two.order_id]
    assert len({e.causation_id for e in reserved}) == 2


def test_a_reservation_holds_typed_lines_summed_per_sku():
    given_stock(A=5, B=5)
    event = placed(("B", 1), ("A", 2), ("B", 2))

    reserve_stock(event)

    assert Reservation.objects.get(order_id=event.order_id).lines == [Line("A", 2), Line("B", 3)]
    with connection.cursor() as cursor:  # stored as it always was
        cursor.execute("SELECT lines FROM inventory_reservation WHERE order_id = %s", [event.order_id])
        assert json.loads(cursor.fetchone()[0]) == [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 3}]


def test_a_reservation_row_written_before_the_typed_lines_is_released():
    given_stock(A=5)
    order_id = str(uuid.uuid4())
    StockItem.objects.filter(sku="A").update(reserved=2)  # what the old code held for it
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO inventory_reservation (order_id, status, lines, created_at, updated_at)"
            " VALUES (%s, 'held', %s, now(), now())",
            [order_id, '[{"sku": "A", "quantity": 2}]'],
        )

    release_stock(OrderCancelled(order_id=order_id))

    assert stock() == {"A": (5, 0)}
    released = json.loads(bytes(StoredEvent.objects.get(type="StockReleased").payload))
    assert released["data"]["lines"] == [{"sku": "A", "quantity": 2}]


def test_typed_reservation_lines_need_no_migration():
    call_command("makemigrations", "inventory", "--check", "--dry-run", verbosity=0)  # exits 1 on a change
