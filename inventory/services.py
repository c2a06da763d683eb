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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from events import outbox
from events.base import Envelope, Event, Line
from events.bulk import bulk_insert, bulk_set

from .events import StockLevelChanged, StockReceived, StockReleased, StockReservationRejected, StockReserved
from .models import Reservation, StockItem

RESERVATION_COLUMNS = ("order_id", "status", "lines", "created_at", "updated_at")


class UnknownSku(LookupError):
    """No stock item exists for this SKU."""


def merge_lines(lines: Iterable[Line]) -> dict[str, int]:
    """Sum quantities per SKU, sorted by SKU (the order in which rows are locked)."""
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        # Decoding checks the shape of a line, not its values: a quantity that is no number fails
        # here, in the handler, and is retried, then dead-lettered (tests/test_faults.py).
        totals[line.sku] += int(line.quantity)
    return dict(sorted(totals.items()))


def _held_lines(reservation: Reservation) -> list[Line]:
    """Return the lines a reservation holds (stored as ``[{"sku", "quantity"}]``)."""
    return [Line(str(line["sku"]), int(line["quantity"])) for line in reservation.lines]


# The reads of every consumer batch, as plain SQL: the ORM spent more CPU building these than PostgreSQL
# spent running them (make bench-batch). Rows are locked in SKU order, so two batches never wait in a cycle.
STOCK_FIELDS = ["sku", "on_hand", "reserved", "version", "updated_at"]
STOCK_ITEMS = f"SELECT {', '.join(STOCK_FIELDS)} FROM inventory_stockitem WHERE sku = ANY(%s) ORDER BY sku"
RESERVATION_FIELDS = ["order_id", "status", "lines"]
RESERVATIONS = f"""
    SELECT {", ".join(RESERVATION_FIELDS)} FROM inventory_reservation WHERE order_id = ANY(%s::uuid[]) FOR UPDATE
"""


def _stock_items(skus: list[str], *, lock: bool = False) -> list[StockItem]:
    """Return the stock rows of ``skus`` in SKU order, locked FOR UPDATE if ``lock``."""
    with connection.cursor() as cursor:
        cursor.execute(STOCK_ITEMS + (" FOR UPDATE" if lock else ""), [list(skus)])
        return [StockItem.from_db("default", STOCK_FIELDS, row) for row in cursor.fetchall()]


def _locked_reservations(order_ids: list[str]) -> list[Reservation]:
    """Return the reservations already made for these orders, locked FOR UPDATE (other fields deferred)."""
    with connection.cursor() as cursor:
        cursor.execute(RESERVATIONS, [list(order_ids)])
        rows = cursor.fetchall()
    # Django's psycopg set-up hands jsonb over as text (JSONField decodes it itself, which from_db does not).
    return [
        Reservation.from_db(
            "default", RESERVATION_FIELDS, (order_id, status, json.loads(lines) if isinstance(lines, str) else lines)
        )
        for order_id, status, lines in rows
    ]


def _level(item: StockItem) -> StockLevelChanged:
    return StockLevelChanged(
        sku=item.sku, on_hand=item.on_hand, reserved=item.reserved, available=item.available, version=item.version
    )


@dataclass
class BatchLevels:
    """The SKUs a consumer batch changed, whose levels it announces once, at its end."""

    changed: set[str] = field(default_factory=set)


@contextmanager
def levels_once_per_batch() -> Iterator[BatchLevels]:
    """Announce each changed SKU's level once, at the end of a batch, instead of once per change.

    The services given the yielded ``BatchLevels`` note the SKUs they change in
    it instead of announcing them. The levels are read back from the rows at
    the end, so a message whose savepoint was rolled back announces nothing it
    did not do. A projection applies the newest version it sees, so skipped
    intermediate versions are harmless; this saves an outbox row, a publish and
    a projection update per order.
    """
    batch = BatchLevels()
    yield batch
    if batch.changed:
        outbox.record_many([_level(item) for item in _stock_items(sorted(batch.changed))])


def _apply(
    items: list[StockItem],
    fields: list[str],
    facts: list[Event],
    *,
    causes: list[Envelope | None] | None = None,
    changes: Counter | None = None,
    levels: BatchLevels | None = None,
) -> None:
    """Save changed stock rows and append the facts, with each SKU's new level unless ``levels`` collects it.

    ``changes`` counts the facts that touched each SKU (one by default): its
    version grows by that much, so it stays the number of facts in the log.
    """
    now = timezone.now()
    for item in items:
        item.version += changes[item.sku] if changes else 1
        item.updated_at = now
    bulk_set(items, [*fields, "version", "updated_at"])
    causes = causes if causes is not None else [None] * len(facts)
    if levels is None:
        announced = [_level(item) for item in items]
        outbox.record_many([*facts, *announced], causes=[*causes, *[None] * len(announced)])
    else:
        levels.changed.update(item.sku for item in items)
        outbox.record_many(facts, causes=causes)


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
    levels: BatchLevels | None = None,
) -> list[Reservation]:
    """Decide many orders at once, in the given order: each is held whole or rejected whole.

    Set-based: one statement locks every SKU of the batch (in SKU order, so two
    batches never wait on each other in a cycle), the decisions are made in
    memory one order after another, then one statement each writes the stock
    rows, the reservations and the facts. An order decided before (a
    redelivery, or cancelled before it arrived) keeps its decision.
    """
    causes = causes if causes is not None else [None] * len(orders)
    ids = [str(order_id) for order_id, _ in orders]
    decided = {str(r.order_id): r for r in _locked_reservations(ids)}
    wanted = {order_id: merge_lines(lines) for order_id, (_, lines) in zip(ids, orders, strict=True)}
    skus = sorted({sku for order_id, want in wanted.items() if order_id not in decided for sku in want})
    items = {item.sku: item for item in _stock_items(skus, lock=True)}
    facts: list[Event] = []
    fact_causes: list[Envelope | None] = []
    new: list[Reservation] = []
    changes: Counter = Counter()
    for order_id, cause in zip(ids, causes, strict=True):
        if order_id in decided:
            continue
        want = wanted[order_id]
        lines_out = [{"sku": sku, "quantity": qty} for sku, qty in want.items()]
        shortages = [
            {"sku": sku, "requested": qty, "available": items[sku].available if sku in items else 0}
            for sku, qty in want.items()
            if sku not in items or items[sku].available < qty
        ]
        if shortages:
            reason = "not enough stock for " + ", ".join(s["sku"] for s in shortages)
            facts.append(StockReservationRejected(order_id=order_id, shortages=shortages, reason=reason))
            status = Reservation.Status.REJECTED
        else:
            for sku, qty in want.items():
                items[sku].reserved += qty
                changes[sku] += 1
            facts.append(StockReserved(order_id=order_id, lines=[Line(sku, qty) for sku, qty in want.items()]))
            status = Reservation.Status.HELD
        fact_causes.append(cause)
        decided[order_id] = Reservation(order_id=order_id, status=status, lines=lines_out)
        new.append(decided[order_id])
    now = timezone.now()
    for r in new:
        r.created_at = r.updated_at = now
    bulk_insert(Reservation, RESERVATION_COLUMNS, [(r.order_id, r.status, json.dumps(r.lines), now, now) for r in new])
    _apply(
        [items[sku] for sku in sorted(changes)], ["reserved"], facts, causes=fact_causes, changes=changes, levels=levels
    )
    return [decided[order_id] for order_id in ids]


@transaction.atomic(savepoint=False)
def reservation_release(
    *, order_id: str, cause: Envelope | None = None, levels: BatchLevels | None = None
) -> Reservation:
    """Give back what an order holds; remember a cancellation that comes first."""
    reservation = Reservation.objects.select_for_update().filter(order_id=order_id).first()
    if reservation is None:
        return Reservation.objects.create(order_id=order_id, status=Reservation.Status.CANCELLED_BEFORE_PLACED)
    if reservation.status != Reservation.Status.HELD:
        return reservation
    wanted = merge_lines(_held_lines(reservation))
    items = list(StockItem.objects.select_for_update().filter(sku__in=wanted).order_by("sku"))
    for item in items:
        item.reserved -= wanted[item.sku]
    released = StockReleased(order_id=str(order_id), lines=_held_lines(reservation))
    _apply(items, ["reserved"], [released], causes=[cause], levels=levels)
    reservation.status = Reservation.Status.RELEASED
    reservation.save(update_fields=["status", "updated_at"])
    return reservation
