"""Stock per SKU as a fold of the inventory events: the proof that inventory is event-sourced.

``replay`` computes every SKU's stock from the log alone; ``rebuild_projections``
replaces the ``StockItem`` rows with it, and ``--check`` reports any difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from events import log
from events.base import index
from events.projections import Projection

from .events import StockReceived, StockReleased, StockReserved
from .models import StockItem

FACTS = index([StockReceived, StockReserved, StockReleased])


@dataclass
class Level:
    on_hand: int = 0
    reserved: int = 0
    version: int = 0


def replay() -> dict[str, Level]:
    """Fold the inventory facts of the log into the stock of every SKU."""
    levels: dict[str, Level] = {}
    for _, event in log.read(FACTS):
        if isinstance(event, StockReceived):
            changes = {event.sku: (event.quantity, 0)}
        else:
            sign = 1 if isinstance(event, StockReserved) else -1
            changes = {}
            for line in event.lines:
                held = changes.get(line.sku, (0, 0))[1]
                changes[line.sku] = (0, held + sign * line.quantity)
        for sku, (on_hand, reserved) in changes.items():
            level = levels.setdefault(sku, Level())
            level.on_hand += on_hand
            level.reserved += reserved
            level.version += 1
    return levels


def current() -> dict[str, Level]:
    """Return the live stock rows in the same shape."""
    return {i.sku: Level(i.on_hand, i.reserved, i.version) for i in StockItem.objects.all()}


@transaction.atomic
def rebuild() -> int:
    """Replace every stock row with the fold of the log; return the number of SKUs."""
    # Lock the table: no reservation may slip in between the fold and the write.
    StockItem.objects.select_for_update().count()
    levels = replay()
    StockItem.objects.all().delete()
    StockItem.objects.bulk_create(
        StockItem(sku=sku, on_hand=lv.on_hand, reserved=lv.reserved, version=lv.version) for sku, lv in levels.items()
    )
    return len(levels)


def differences() -> list[str]:
    """Return every SKU whose live stock differs from the fold of the log."""
    with transaction.atomic():
        live, folded = current(), replay()
    return [
        f"stock {sku}: live {live.get(sku)} != from events {folded.get(sku)}"
        for sku in sorted(set(live) | set(folded))
        if live.get(sku) != folded.get(sku)
    ]


STOCK = Projection(name="inventory.stock", rebuild=rebuild, differences=differences)
