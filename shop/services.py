"""Every write of the shop. Each records its events in the same transaction.

The services that handlers call run with ``atomic(savepoint=False)``: inside
the consumer runner's transaction, a savepoint of their own would cost two
round trips per message, and the runner already holds one where it needs it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from events import outbox
from events.base import Envelope, Line
from events.bulk import insert_statement
from events.models import StoredEvent

from .events import OrderCancelled, OrderConfirmed, OrderPlaced, OrderRejected
from .models import IdempotencyKey, Order, OrderLine, TimelineEntry


class UnknownProducts(LookupError):
    """Some SKUs of an order are not in the catalog."""

    def __init__(self, skus: list[str]):
        super().__init__(", ".join(skus))
        self.skus = skus


class IdempotencyConflict(Exception):
    """An ``Idempotency-Key`` was reused with another request."""


class CannotCancel(Exception):
    """The order is past the point where it can be cancelled."""


def request_fingerprint(email: str, lines: list[Line]) -> str:
    """Return a hash of what an order request asks for (to compare idempotent retries)."""
    canonical = json.dumps([email, [[line.sku, line.quantity] for line in lines]])
    return hashlib.sha256(canonical.encode()).hexdigest()


def order_place(*, email: str, lines: list[Line], idempotency_key: str | None = None) -> Order:
    """Place an order at catalog prices and record OrderPlaced; return the order.

    With an ``idempotency_key``, the same request again returns the first order;
    the same key with another request raises IdempotencyConflict.
    """
    fingerprint = request_fingerprint(email, lines)
    if idempotency_key:
        existing = _order_for_key(idempotency_key, fingerprint)
        if existing is not None:
            return existing
    try:
        return _order_create(email=email, lines=lines, key=idempotency_key, fingerprint=fingerprint)
    except IntegrityError:
        # Another request with the same key committed first.
        existing = _order_for_key(idempotency_key, fingerprint) if idempotency_key else None
        if existing is None:
            raise
        return existing


def _order_for_key(key: str, fingerprint: str) -> Order | None:
    row = IdempotencyKey.objects.select_related("order").filter(key=key).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(key)
    return row.order


# An order is one statement, its catalog prices read in it: the order, its lines, its key, its first
# timeline entry and its OrderPlaced (the outbox's INSERT, last) are written together or not at all, in one
# round trip, with no BEGIN or COMMIT of their own (a statement is a transaction). Every write is on
# condition that each line's product exists (``ok``); when one does not, nothing is written and the
# statement says which SKUs it found.
PLACE = """
    WITH v AS (
        SELECT * FROM unnest(%s::varchar[], %s::integer[]) WITH ORDINALITY AS v(sku, quantity, n)
    ), p AS (
        SELECT v.n, v.sku, v.quantity, pr.name, pr.price, pr.currency
        FROM v JOIN shop_product AS pr ON pr.sku = v.sku
    ), ok AS (
        SELECT count(*) = %s AS ok FROM p
    ), o AS (
        INSERT INTO shop_order (id, email, status, reason, total, currency, created_at, updated_at)
        SELECT %s, %s, 'pending', '', (SELECT sum(price * quantity) FROM p),
            (SELECT currency FROM p ORDER BY n LIMIT 1), %s, %s
        WHERE (SELECT ok FROM ok)
    ), l AS (
        INSERT INTO shop_orderline (order_id, sku, name, unit_price, quantity)
        SELECT %s, sku, name, price, quantity FROM p WHERE (SELECT ok FROM ok) ORDER BY n
        RETURNING id
    ), t AS (
        INSERT INTO shop_timelineentry (order_id, type, at, event_id, detail)
        SELECT %s, %s, %s, %s, '' WHERE (SELECT ok FROM ok)
        RETURNING id
    ){key}, e AS ({outbox})
    SELECT (SELECT ok FROM ok), (SELECT array_agg(id ORDER BY id) FROM l), (SELECT id FROM t),
        array_agg(p.sku ORDER BY p.n), array_agg(p.name ORDER BY p.n), array_agg(p.price ORDER BY p.n),
        array_agg(p.currency ORDER BY p.n)
    FROM p
"""
KEY = """, k AS (
        INSERT INTO shop_idempotencykey (key, request_hash, order_id, created_at)
        SELECT %s, %s, %s, %s WHERE (SELECT ok FROM ok)
    )"""
ONLY_IF_OK = "(SELECT ok FROM ok)"


def _order_create(*, email: str, lines: list[Line], key: str | None, fingerprint: str) -> Order:
    order_id, now = uuid.uuid4(), timezone.now()
    pending = outbox.prepare([OrderPlaced(order_id=str(order_id), lines=lines)])
    envelope = pending.envelopes[0]
    insert_events, event_params = insert_statement(StoredEvent, outbox.COLUMNS, pending.rows, where=ONLY_IF_OK)
    params = [[ln.sku for ln in lines], [ln.quantity for ln in lines], len(lines)]
    params += [order_id, email, now, now, order_id]
    params += [order_id, OrderPlaced.TYPE, envelope.occurred_at, envelope.event_id]
    params += [key, fingerprint, order_id, now] if key else []
    sql = PLACE.format(key=KEY if key else "", outbox=insert_events)
    # Nested in a caller's transaction, a savepoint keeps a duplicate key's error from breaking it.
    with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
        cursor.execute(sql, params + event_params)
        ok, line_ids, entry_id, skus, names, prices, currencies = cursor.fetchone()
    if not ok:
        raise UnknownProducts(sorted({ln.sku for ln in lines} - set(skus or [])))
    outbox.written(pending)
    total = sum((price * ln.quantity for price, ln in zip(prices, lines, strict=True)), Decimal("0"))
    currency = currencies[0]
    order = Order(id=order_id, email=email, total=total, currency=currency, created_at=now, updated_at=now)
    order_lines = [
        OrderLine(
            id=i,
            order=order,
            sku=ln.sku,
            name=name,
            unit_price=price,
            quantity=ln.quantity,
        )
        for i, ln, name, price in zip(line_ids, lines, names, prices, strict=True)
    ]
    placed = TimelineEntry(
        id=entry_id, order=order, type=OrderPlaced.TYPE, at=envelope.occurred_at, event_id=envelope.event_id
    )
    for obj in (order, *order_lines, placed):
        obj._state.adding, obj._state.db = False, "default"
    # What the caller renders is what was just written: no need to read it back.
    order._prefetched_objects_cache = {"lines": order_lines, "timeline": [placed]}
    return order


def _timeline_add(order: Order, type_: str, at: datetime, event_id: str, detail: str = "") -> None:
    TimelineEntry.objects.create(order=order, type=type_, at=at, event_id=event_id, detail=detail[:300])


def _record_own(order: Order, event) -> None:
    envelope = outbox.record(event)
    _timeline_add(order, envelope.type, envelope.occurred_at, envelope.event_id)


TIMELINE_COLUMNS = ("order_id", "type", "at", "event_id", "detail")

# A consumer batch's decisions in one statement, no lock taken beforehand: the UPDATE moves only orders still
# pending (row by row, under its own row locks, so a cancel committed meanwhile wins), and the events and
# timeline entries of the orders it moved are written beside it, read from its RETURNING.
SETTLE = """
    WITH d AS (
        SELECT * FROM unnest(%s::uuid[], %s::varchar[], %s::varchar[]) AS d(id, status, reason)
    ), known AS (
        SELECT id FROM shop_order WHERE id = ANY(%s::uuid[])
    ), moved AS (
        UPDATE shop_order AS o SET status = d.status, reason = d.reason, updated_at = %s
        FROM d WHERE o.id = d.id AND o.status = %s
        RETURNING o.id, o.created_at
    ), noted AS ({noted}), own AS ({own}), e AS ({events})
    SELECT (SELECT array_agg(id) FROM known), array_agg(m.id ORDER BY m.id), array_agg(m.created_at ORDER BY m.id)
    FROM moved AS m
"""
MOVED = "v.{column} IN (SELECT id{cast} FROM moved)"


@dataclass(frozen=True)
class Decision:
    """Inventory's answer for one order, and the event that carried it."""

    order_id: str
    reserved: bool
    cause: Envelope
    reason: str = ""


@transaction.atomic(savepoint=False)
def orders_settle(*, decisions: list[Decision]) -> list[Order]:
    """Move pending orders to confirmed or rejected, many at once; note each decision on the timeline.

    Return the orders that moved (those still pending when their decision came).

    Set-based, one statement whatever the number of orders: it moves the
    orders still pending, appends every decision to its order's timeline, and
    records the events (and timeline entries) of the orders it moved. An order
    that is no longer pending (cancelled meanwhile, or decided before) only
    gets the note; of two decisions for one order, the first counts.
    """
    first: dict[str, Decision] = {}
    for d in decisions:
        first.setdefault(d.order_id, d)
    own = [
        OrderConfirmed(order_id=d.order_id) if d.reserved else OrderRejected(order_id=d.order_id, reason=d.reason)
        for d in first.values()
    ]
    pending = outbox.prepare(own, causes=[d.cause for d in first.values()])
    noted = [(d.order_id, d.cause.type, d.cause.occurred_at, d.cause.event_id, d.reason[:300]) for d in decisions]
    entries = [(e.aggregate_id, e.type, e.occurred_at, e.event_id, "") for e in pending.envelopes]
    noted_sql, noted_params = insert_statement(TimelineEntry, TIMELINE_COLUMNS, noted)
    own_sql, own_params = insert_statement(
        TimelineEntry, TIMELINE_COLUMNS, entries, where=MOVED.format(column="order_id", cast="")
    )
    events_sql, events_params = insert_statement(
        StoredEvent, outbox.COLUMNS, pending.rows, where=MOVED.format(column="aggregate_id", cast="::text")
    )
    now = timezone.now()
    params = [
        list(first),
        [Order.Status.CONFIRMED if d.reserved else Order.Status.REJECTED for d in first.values()],
        ["" if d.reserved else d.reason[:300] for d in first.values()],
        list(first),
        now,
        Order.Status.PENDING,
        *noted_params,
        *own_params,
        *events_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(SETTLE.format(noted=noted_sql, own=own_sql, events=events_sql), params)
        known, moved_ids, created = cursor.fetchone()
    missing = sorted(set(first) - {str(i) for i in known or []})
    if missing:
        raise Order.DoesNotExist(f"no order {', '.join(missing)}")
    moved_at = {str(i): at for i, at in zip(moved_ids or [], created or [], strict=True)}
    outbox.written(pending.only(lambda envelope: envelope.aggregate_id in moved_at))
    moved = []
    for order_id, d in first.items():
        if order_id in moved_at:
            status = Order.Status.CONFIRMED if d.reserved else Order.Status.REJECTED
            order = Order(id=order_id, status=status, reason="" if d.reserved else d.reason[:300])
            order.created_at, order.updated_at = moved_at[order_id], now
            order._state.adding, order._state.db = False, "default"
            moved.append(order)
    return moved


@transaction.atomic(savepoint=False)
def order_note(*, order_id: str, cause: Envelope, detail: str = "") -> None:
    """Add an event about the order to its timeline."""
    order = Order.objects.get(id=order_id)
    _timeline_add(order, cause.type, cause.occurred_at, cause.event_id, detail)


@transaction.atomic
def order_cancel(*, order_id: str) -> Order:
    """Cancel a pending or confirmed order and record OrderCancelled."""
    order = Order.objects.select_for_update().get(id=order_id)
    if order.status not in (Order.Status.PENDING, Order.Status.CONFIRMED):
        raise CannotCancel(f"order is {order.status}")
    order.status = Order.Status.CANCELLED
    order.save(update_fields=["status", "updated_at"])
    _record_own(order, OrderCancelled(order_id=str(order.id)))
    return order


def order_claim(*, order: Order, user_id: int) -> None:
    """Record that the user of an API token placed ``order``, unless another did first (shop/owners.py)."""
    if Order.objects.filter(id=order.id, placed_by_user_id__isnull=True).update(placed_by_user_id=user_id):
        order.placed_by_user_id = user_id
