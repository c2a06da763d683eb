"""The shop's stock-level read model, built from ``StockLevelChanged``.

Each event carries the SKU's state *after* the change and its version; a row is
written only when the event is newer than it, so duplicates and reordering are
harmless and the projection can be rebuilt from the log at any time. The shop's
consumer of the ``INVENTORY`` stream (``shop.handlers``) applies the levels in the
same batches as the reservations' outcomes.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from events import log
from events.base import index
from events.consumer import Message, batch_handler
from events.projections import Projection

from .inbound import StockLevelChanged
from .models import StockLevel

UPSERT = """
    INSERT INTO shop_stocklevel (sku, on_hand, reserved, available, version, changed_at, updated_at)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (sku) DO UPDATE SET
        on_hand = EXCLUDED.on_hand, reserved = EXCLUDED.reserved, available = EXCLUDED.available,
        version = EXCLUDED.version, changed_at = EXCLUDED.changed_at, updated_at = EXCLUDED.updated_at
    WHERE shop_stocklevel.version < EXCLUDED.version
"""


def stock_level_apply(event: StockLevelChanged, changed_at: datetime) -> bool:
    """Apply one level changed at ``changed_at`` if it is newer than what the projection holds; say whether it was."""
    with connection.cursor() as cursor:
        cursor.execute(
            UPSERT,
            [event.sku, event.on_hand, event.reserved, event.available, event.version, changed_at, timezone.now()],
        )
        return cursor.rowcount == 1


UPSERT_MANY = """
    INSERT INTO shop_stocklevel (sku, on_hand, reserved, available, version, changed_at, updated_at)
    SELECT *, now() FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[], %s::int[], %s::timestamptz[])
    ON CONFLICT (sku) DO UPDATE SET
        on_hand = EXCLUDED.on_hand, reserved = EXCLUDED.reserved, available = EXCLUDED.available,
        version = EXCLUDED.version, changed_at = EXCLUDED.changed_at, updated_at = EXCLUDED.updated_at
    WHERE shop_stocklevel.version < EXCLUDED.version
"""


@batch_handler(last=True)  # levels commute with the orders' events: one run a batch, its SKUs locked in order
def stock_levels_apply(levels: list[Message[StockLevelChanged]]) -> None:
    """Apply a run of levels in one statement: per SKU the newest of the run, if newer than the table's."""
    newest: dict[str, Message[StockLevelChanged]] = {}
    for m in levels:
        if m.event.sku not in newest or newest[m.event.sku].event.version < m.event.version:
            newest[m.event.sku] = m
    # In SKU order: two workers upserting overlapping SKUs then lock the rows in the same order, never in a cycle.
    rows = [
        (m.event.sku, m.event.on_hand, m.event.reserved, m.event.available, m.event.version, m.envelope.occurred_at)
        for m in sorted(newest.values(), key=lambda m: m.event.sku)
    ]
    with connection.cursor() as cursor:
        cursor.execute(UPSERT_MANY, [list(column) for column in zip(*rows, strict=True)])


LEVELS = index([StockLevelChanged])


@transaction.atomic
def rebuild() -> int:
    """Drop the read model and replay every StockLevelChanged of the log into it."""
    StockLevel.objects.all().delete()
    for envelope, event in log.read(LEVELS):
        stock_level_apply(event, changed_at=envelope.occurred_at)
    return StockLevel.objects.count()


def differences() -> list[str]:
    """Return every SKU whose projected level differs from the newest level in the log."""
    newest: dict[str, tuple] = {}
    with transaction.atomic():
        for _, e in log.read(LEVELS):
            if e.sku not in newest or newest[e.sku][3] < e.version:
                newest[e.sku] = (e.on_hand, e.reserved, e.available, e.version)
        live = {s.sku: (s.on_hand, s.reserved, s.available, s.version) for s in StockLevel.objects.all()}
    return [
        f"stock level {sku}: projection {live.get(sku)} != log {newest.get(sku)}"
        for sku in sorted(set(live) | set(newest))
        if live.get(sku) != newest.get(sku)
    ]


STOCK_LEVELS = Projection(name="shop.stock_levels", rebuild=rebuild, differences=differences)
