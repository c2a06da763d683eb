"""The shop's events as the inventory reads them (a tolerant reader).

Inventory never imports ``shop``: it declares the fields it needs of each
event it consumes. Unknown fields are ignored, so the shop may add fields
freely; ``tests/test_contracts.py`` checks these against the shop's own events.
"""

from dataclasses import dataclass

from events.base import Event, Line


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(Event):
    """An order asks for stock: ``lines`` is ``[{"sku", "quantity"}]``."""

    TYPE = "OrderPlaced"
    order_id: str
    lines: list[Line]

    def subject(self) -> str:
        return "shop.order.placed"

    def aggregate_id(self) -> str:
        return self.order_id


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(Event):
    """An order will not be fulfilled; whatever it holds goes back."""

    TYPE = "OrderCancelled"
    order_id: str

    def subject(self) -> str:
        return "shop.order.cancelled"

    def aggregate_id(self) -> str:
        return self.order_id
