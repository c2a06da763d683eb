"""Events the shop publishes. Wire names and fields are a contract: add, never change."""

from dataclasses import dataclass

from events.base import Event, Line


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(Event):
    """A customer placed an order: ``lines`` is ``[{"sku", "quantity"}]``."""

    TYPE = "OrderPlaced"
    order_id: str
    lines: list[Line]

    def subject(self) -> str:
        return "shop.order.placed"

    def aggregate_id(self) -> str:
        return self.order_id


@dataclass(frozen=True, kw_only=True)
class OrderCancelled(Event):
    """The customer cancelled an order that was pending or confirmed."""

    TYPE = "OrderCancelled"
    order_id: str

    def subject(self) -> str:
        return "shop.order.cancelled"

    def aggregate_id(self) -> str:
        return self.order_id


@dataclass(frozen=True, kw_only=True)
class OrderConfirmed(Event):
    """Every line of the order is held for the customer."""

    TYPE = "OrderConfirmed"
    order_id: str

    def subject(self) -> str:
        return "shop.order.confirmed"

    def aggregate_id(self) -> str:
        return self.order_id


@dataclass(frozen=True, kw_only=True)
class OrderRejected(Event):
    """The order cannot be fulfilled; ``reason`` says why."""

    TYPE = "OrderRejected"
    order_id: str
    reason: str

    def subject(self) -> str:
        return "shop.order.rejected"

    def aggregate_id(self) -> str:
        return self.order_id
