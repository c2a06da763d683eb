"""Reads of the inventory."""

from .models import StockItem


def stock_get(*, sku: str) -> StockItem | None:
    """Return the stock of one SKU, or None."""
    return StockItem.objects.filter(sku=sku).first()


def stock_all() -> list[StockItem]:
    """Return every stock item, in SKU order."""
    return list(StockItem.objects.order_by("sku"))


def stock_violations() -> list[str]:
    """Return every SKU whose stock breaks an invariant (negative, or oversold)."""
    bad = []
    for item in StockItem.objects.order_by("sku"):
        if item.on_hand < 0 or item.reserved < 0 or item.available < 0:
            bad.append(f"{item.sku}: on_hand={item.on_hand} reserved={item.reserved} available={item.available}")
    return bad
