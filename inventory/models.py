"""Inventory state: stock per SKU (a projection of the inventory events) and reservations."""

from django.db import models
from django.db.models import F, Q


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
    lines = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.order_id} {self.status}"
