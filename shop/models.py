"""The shop's own data: catalog, orders, and its read model of stock."""

import uuid

from django.db import models


class Category(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    image_url = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Order(models.Model):
    """An order and its state machine: pending -> confirmed | rejected; pending|confirmed -> cancelled."""

    class Status(models.TextChoices):
        PENDING = "pending"
        CONFIRMED = "confirmed"
        REJECTED = "rejected"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=300, blank=True)
    # 100 lines x 1000 units x the dearest price (10 digits) fit.
    total = models.DecimalField(max_digits=18, decimal_places=2)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The user whose API token placed it, who may see its e-mail (shop/owners.py); a plain column, no
    # foreign key: no index for every order placed to update, and NULL (most orders) costs nothing.
    placed_by_user_id = models.IntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="order_status_created")]

    def __str__(self) -> str:
        return f"{self.id} {self.status}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    quantity = models.PositiveIntegerField()


class TimelineEntry(models.Model):
    """One event in an order's story, as the shop saw it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="timeline")
    type = models.CharField(max_length=100)
    at = models.DateTimeField()
    event_id = models.UUIDField(unique=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` and the request it first came with."""

    key = models.CharField(max_length=200, primary_key=True)
    request_hash = models.CharField(max_length=64)
    order = models.ForeignKey(Order, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)


class StockLevel(models.Model):
    """The shop's read model of stock, fed by ``StockLevelChanged`` (newest version wins)."""

    sku = models.CharField(max_length=64, primary_key=True)
    on_hand = models.IntegerField()
    reserved = models.IntegerField()
    available = models.IntegerField()
    version = models.IntegerField()
    changed_at = models.DateTimeField()  # when inventory made the change
    updated_at = models.DateTimeField()  # when this projection applied it
