"""Inventory state: stock per SKU (a projection of the inventory events) and reservations."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import F, Q

from events.base import Line


class StockItem(models.Model):
    """Current stock of one SKU, kept in step with the inventory events.

    The check constraints are the last line against oversell: whatever a bug
    or a race did, the database refuses ``reserved > on_hand``.
    """

    sku = models.CharField(max_length=64, primary_key=True)
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    version = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="stock_no_oversell"),
        ]

    def __str__(self) -> str:
        return f"{self.sku}: {self.available}/{self.on_hand}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def lines_from_stored(stored: list[dict[str, Any]]) -> list[Line]:
    """Return the lines of a reservation's row, stored as ``[{"sku": "…", "quantity": 2}]``."""
    return [Line(sku=line["sku"], quantity=line["quantity"]) for line in stored]


def lines_to_stored(lines: list[Line]) -> list[dict[str, Any]]:
    """Return lines as a reservation's row stores them."""
    return [{"sku": line.sku, "quantity": line.quantity} for line in lines]


class LinesField(models.JSONField):
    """A list of ``Line`` in Python, the JSON ``[{"sku", "quantity"}]`` in the database.

    It deconstructs as the plain JSONField it was: the stored shape is unchanged, so migrations
    (which see only that shape) need none, and rows written before it read as lines.
    """

    def from_db_value(self, value, expression, connection) -> list[Line] | None:
        stored = super().from_db_value(value, expression, connection)
        return None if stored is None else lines_from_stored(stored)

    def get_prep_value(self, value: list[Line] | None) -> Any:
        return super().get_prep_value(None if value is None else lines_to_stored(value))

    def value_to_string(self, obj: models.Model) -> Any:
        return lines_to_stored(self.value_from_object(obj))

    def deconstruct(self) -> tuple[str, str, list, dict]:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs


class Reservation(models.Model):
    """What inventory decided for one order; the state machine of its stock."""

    class Status(models.TextChoices):
        HELD = "held"
        REJECTED = "rejected"
        RELEASED = "released"
        # The cancellation arrived before the order: remembered, so the order is never held.
        CANCELLED_BEFORE_PLACED = "cancelled_before_placed"

    order_id = models.UUIDField(primary_key=True)
    status = models.CharField(max_length=32, choices=Status.choices)
    lines = LinesField(default=list)  # list[Line]: one per SKU, summed
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.order_id} {self.status}"
