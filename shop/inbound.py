"""The inventory's events as the shop reads them (a tolerant reader).

The shop never imports ``inventory``: it declares the fields it needs of each
event it consumes; unknown fields are ignored. ``tests/test_contracts.py``
checks these against the inventory's own events.
"""

from dataclasses import dataclass

from events.base import Event


@dataclass(frozen=True, kw_only=True)
class _OrderFact(Event):
    order_id: str

    def aggregate_id(self) -> str:
        return self.order_id


@dataclass(frozen=True, kw_only=True)
class StockReserved(_OrderFact):
    """Inventory holds every line of the order."""

    TYPE = "StockReserved"

    def subject(self) -> str:
        return "inventory.reservation.reserved"


@dataclass(frozen=True, kw_only=True)
class StockReservationRejected(_OrderFact):
    """Inventory could not hold the order whole."""

    TYPE = "StockReservationRejected"
    reason: str = ""

    def subject(self) -> str:
        return "inventory.reservation.rejected"


@dataclass(frozen=True, kw_only=True)
class StockReleased(_OrderFact):
    """Inventory gave back what the order held."""

    TYPE = "StockReleased"

    def subject(self) -> str:
        return "inventory.reservation.released"


@dataclass(frozen=True, kw_only=True)
class StockLevelChanged(Event):
    """The state of one SKU after a change."""

    TYPE = "StockLevelChanged"
    sku: str
    on_hand: int
    reserved: int
    available: int
    version: int

    def subject(self) -> str:
        return f"inventory.stock.{self.sku}"

    def aggregate_id(self) -> str:
        return self.sku
