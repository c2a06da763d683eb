"""Every write of the inventory. Each change appends its events in the same transaction.

Inventory is event-sourced: ``StockReceived``, ``StockReserved`` and
``StockReleased`` are the facts; the ``StockItem`` rows are their running sum
(see ``projections.py``, which rebuilds them from the log). ``StockLevelChanged``
announces each SKU's new state to the rest of the system.

The services that handlers call run with ``atomic(savepoint=False)``: inside
the consumer runner's transaction, a savepoint of their own would cost two
round trips per message, and the runner already holds one where it needs it.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from events import outbox
from events.base import Envelope, Event, Line
from events.bulk import Statement, insert_statement, update_statement, write_together

from .events import Shortage, StockLevelChanged, StockReceived, StockReleased, StockReservationRejected, StockReserved
from .models import Reservation, StockItem, lines_from_stored, lines_to_stored

RESERVATION_COLUMNS = ("order_id", "status", "lines", "created_at", "updated_at")


class UnknownSku(LookupError):
    """No stock item exists for this SKU."""


def merge_lines(lines: Iterable[Line]) -> dict[str, int]:
    """Sum quantities per SKU, sorted by SKU (the order in which rows are locked)."""
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        totals[line.sku] += line.quantity
    return dict(sorted(totals.items()))


# The read of every consumer batch, as plain SQL: the ORM spent more CPU building it than PostgreSQL spent
# running it (make bench-batch). One statement locks the batch's reservations and stock rows, each set in key
# order (SKU order for the stock), so two batches never wait on each other in a cycle.
LOCK_BATCH = """
    WITH r AS (
        SELECT order_id, status, lines FROM inventory_reservation WHERE order_id = ANY(%s::uuid[])
        ORDER BY order_id FOR UPDATE
    ), s AS (
        SELECT sku, on_hand, reserved, version FROM inventory_stockitem WHERE sku = ANY(%s) ORDER BY sku FOR UPDATE
    )
    SELECT NULL, NULL, NULL, NULL, order_id, status, lines FROM r
    UNION ALL SELECT sku, on_hand, reserved, version, NULL, NULL, NULL FROM s
"""
STOCK_FIELDS = ["sku", "on_hand", "reserved", "version"]
RESERVATION_FIELDS = ["order_id", "status", "lines"]


def _lock_batch(order_ids: list[str], skus: list[str]) -> tuple[list[Reservation], dict[str, StockItem]]:
    """Lock and return the reservations already made for these orders and the stock rows of ``skus``."""
    with connection.cursor() as cursor:
        cursor.execute(LOCK_BATCH, [order_ids, skus])
        rows = cursor.fetchall()
    reservations, items = [], {}
    for sku, on_hand, reserved, version, order_id, status, lines in rows:
        if sku is None:
            # Django's psycopg set-up hands jsonb over as text (the field decodes it itself, which from_db does not).
            held = lines_from_stored(json.loads(lines) if isinstance(lines, str) else lines)
            reservations.append(Reservation.from_db("default", RESERVATION_FIELDS, (order_id, status, held)))
        else:
            items[sku] = StockItem.from_db("default", STOCK_FIELDS, (sku, on_hand, reserved, version))
    return reservations, items


def _level(item: StockItem) -> StockLevelChanged:
    return StockLevelChanged(
        sku=item.sku, on_hand=item.on_hand, reserved=item.reserved, available=item.available, version=item.version
    )


def _apply(
    items: list[StockItem],
    fields: list[str],
    facts: list[Event],
    *,
    causes: list[Envelope | None] | None = None,
    changes: Counter | None = None,
    also: Statement | None = None,
) -> None:
    """Save changed stock rows, append the facts and each changed SKU's new level: one statement (with ``also``).

    ``changes`` counts the facts that touched each SKU (one by default): its
    version grows by that much, so it stays the number of facts in the log.
    A level is announced once per SKU per call, however many facts changed it:
    a projection applies the newest version it sees, so the skipped
    intermediate ones are harmless, and a run of a hundred orders costs a
    level per SKU, not per order.
    """
    now = timezone.now()
    for item in items:
        item.version += changes[item.sku] if changes else 1
        item.updated_at = now
    causes = causes if causes is not None else [None] * len(facts)
    announced = [_level(item) for item in items]
    pending = outbox.prepare([*facts, *announced], causes=[*causes, *[None] * len(announced)])
    stock = update_statement(items, [*fields, "version", "updated_at"]) if items else None
    write_together(also, stock, pending.insert if pending.rows else None)
    outbox.written(pending)


@transaction.atomic
def stock_receive(*, sku: str, quantity: int, create: bool = False) -> StockItem:
    """Add ``quantity`` units of ``sku`` to stock on hand."""
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    if create:
        StockItem.objects.get_or_create(sku=sku)
    try:
        item = StockItem.objects.select_for_update().get(sku=sku)
    except StockItem.DoesNotExist:
        raise UnknownSku(sku) from None
    item.on_hand += quantity
    _apply([item], ["on_hand"], [StockReceived(sku=sku, quantity=quantity)])
    return item


@transaction.atomic(savepoint=False)
def reservations_create(
    *,
    orders: list[tuple[str, list[Line]]],
    causes: list[Envelope | None] | None = None,
) -> list[Reservation]:
    """Decide many orders at once, in the given order: each is held whole or rejected whole.

    Set-based, two statements whatever the number of orders: one locks the
    orders' reservations and every SKU of the batch (in SKU order, so two
    batches never wait on each other in a cycle), the decisions are made in
    memory one order after another, then one writes the reservations, the
    stock rows, the facts and the new levels. An order decided before (a
    redelivery, or cancelled before it arrived) keeps its decision.
    """
    causes = causes if causes is not None else [None] * len(orders)
    ids = [str(order_id) for order_id, _ in orders]
    wanted = {order_id: merge_lines(lines) for order_id, (_, lines) in zip(ids, orders, strict=True)}
    # Every SKU of the batch: a redelivered order's too (rare), so that one statement locks it all.
    locked, items = _lock_batch(sorted(set(ids)), sorted({sku for want in wanted.values() for sku in want}))
    decided = {str(r.order_id): r for r in locked}
    facts: list[Event] = []
    fact_causes: list[Envelope | None] = []
    new: list[Reservation] = []
    changes: Counter = Counter()
    for order_id, cause in zip(ids, causes, strict=True):
        if order_id in decided:
            continue
        want = wanted[order_id]
        lines_out = [Line(sku, qty) for sku, qty in want.items()]
        shortages = [
            Shortage(sku, qty, items[sku].available if sku in items else 0)
            for sku, qty in want.items()
            if sku not in items or items[sku].available < qty
        ]
        if shortages:
            reason = "not enough stock for " + ", ".join(s.sku for s in shortages)
            facts.append(StockReservationRejected(order_id=order_id, shortages=shortages, reason=reason))
            status = Reservation.Status.REJECTED
        else:
            for sku, qty in want.items():
                items[sku].reserved += qty
                changes[sku] += 1
            facts.append(StockReserved(order_id=order_id, lines=lines_out))
            status = Reservation.Status.HELD
        fact_causes.append(cause)
        decided[order_id] = Reservation(order_id=order_id, status=status, lines=lines_out)
        new.append(decided[order_id])
    now = timezone.now()
    for r in new:
        r.created_at = r.updated_at = now
    rows = [(r.order_id, r.status, json.dumps(lines_to_stored(r.lines)), now, now) for r in new]
    _apply(
        [items[sku] for sku in sorted(changes)],
        ["reserved"],
        facts,
        causes=fact_causes,
        changes=changes,
        also=insert_statement(Reservation, RESERVATION_COLUMNS, rows) if rows else None,
    )
    return [decided[order_id] for order_id in ids]


@transaction.atomic(savepoint=False)
def reservation_release(*, order_id: str, cause: Envelope | None = None) -> Reservation:
    """Give back what an order holds; remember a cancellation that comes first."""
    reservation = Reservation.objects.select_for_update().filter(order_id=order_id).first()
    if reservation is None:
        return Reservation.objects.create(order_id=order_id, status=Reservation.Status.CANCELLED_BEFORE_PLACED)
    if reservation.status != Reservation.Status.HELD:
        return reservation
    wanted = merge_lines(reservation.lines)
    items = list(StockItem.objects.select_for_update().filter(sku__in=wanted).order_by("sku"))
    for item in items:
        item.reserved -= wanted[item.sku]
    released = StockReleased(order_id=str(order_id), lines=reservation.lines)
    _apply(items, ["reserved"], [released], causes=[cause])
    reservation.status = Reservation.Status.RELEASED
    reservation.save(update_fields=["status", "updated_at"])
    return reservation
