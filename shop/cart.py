"""The session cart: SKUs and quantities, priced from the catalog whenever it is shown."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from .models import Product

SESSION_KEY = "cart"
MAX_LINES = 50


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def subtotal(self) -> Decimal:
        return self.product.price * self.quantity


class Cart:
    """A cart kept in the session as ``{sku: quantity}``; prices are never stored, only read."""

    def __init__(self, session):
        self.session = session

    @property
    def items(self) -> dict[str, int]:
        raw = self.session.get(SESSION_KEY)
        return dict(raw) if isinstance(raw, dict) else {}

    @property
    def count(self) -> int:
        return sum(self.items.values())

    def set(self, sku: str, quantity: int) -> None:
        """Set a line's quantity (0 removes it), within the order limits."""
        items = self.items
        if quantity <= 0:
            items.pop(sku, None)
        elif sku in items or len(items) < MAX_LINES:
            items[sku] = min(quantity, settings.ORDER_MAX_QUANTITY)
        self.session[SESSION_KEY] = items

    def add(self, sku: str, quantity: int) -> None:
        self.set(sku, self.items.get(sku, 0) + quantity)

    def clear(self) -> None:
        self.session.pop(SESSION_KEY, None)

    def lines(self) -> list[CartLine]:
        """Return the lines with their products (one query); SKUs gone from the catalog are dropped."""
        items = self.items
        products = Product.objects.select_related("category").filter(sku__in=items).order_by("name")
        return [CartLine(p, items[p.sku]) for p in products]
