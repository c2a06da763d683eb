"""Events the inventory publishes. Wire names and fields are a contract: add, never change."""

from dataclasses import dataclass

from events.base import Event, Line


@dataclass(frozen=True, kw_only=True)
class StockReceived(Event):
    """Units of a SKU arrived (a restock, or the opening stock)."""

    TYPE = "StockReceived"
    sku: str
    quantity: int

    def subject(self) -> str:
        return "inventory.restock.received"

    def aggregate_id(self) -> str:
        return self.sku


@dataclass(frozen=True, kw_only=True)
class StockReserved(Event):
    """Every line of an order is held (``lines``: one per SKU, summed)."""

    TYPE = "StockReserved"
    order_id: str
    lines: list[Line]

    def subject(self) -> str:
        return "inventory.reservation.reserved"

    def aggregate_id(self) -> str:
        return self.order_id


@dataclass(frozen=True)
class Shortage:
    """What one SKU of a rejected order lacked: ``{"sku", "requested", "available"}`` on the wire."""

    sku: str
    requested: int
    available: int


@dataclass(frozen=True, kw_only=True)
class StockReservationRejected(Event):
    """An order could not be held whole; nothing of it was held."""

    TYPE = "StockReservationRejected"
    order_id: str
    shortages: list[Shortage]
    reason: str

    def subject(self) -> str:
        return "inventory.reservation.rejected"

    def aggregate_id(self) -> str:
        return self.order_id


@dataclass(frozen=True, kw_only=True)
class StockReleased(Event):
    """The units held for an order went back to available stock."""

    TYPE = "StockReleased"
    order_id: str
    lines: list[Line]

    def subject(self) -> str:
        return "inventory.reservation.released"

    def aggregate_id(self) -> str:
        return self.order_id


@dataclass(frozen=True, kw_only=True)
class StockLevelChanged(Event):
    """The state of one SKU after a change; ``version`` grows by one per change."""

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
