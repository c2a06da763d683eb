"""Reads of the shop: catalog (through the cache), stock read model, orders."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from django.core.cache import cache
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from events.models import StoredEvent

from .models import Order, Product, StockLevel

PAGE_SIZE = 20
PAGE = re.compile(r"[1-9][0-9]{0,5}")  # ASCII digits only: str.isdigit() accepts "²", which int() refuses
MAX_PAGE = 100_000
LOW_STOCK = 5
CATALOG_CACHE_SECONDS = 30


def stock_status(available: int) -> str:
    """Return in_stock, low_stock or sold_out for an available quantity."""
    if available <= 0:
        return "sold_out"
    return "low_stock" if available <= LOW_STOCK else "in_stock"


def page_number(value: str) -> int | None:
    """Return the catalog page number a query string value asks for, or None if it is not one."""
    return int(value) if PAGE.fullmatch(value) and int(value) <= MAX_PAGE else None


def product_names(skus: list[str]) -> dict[str, str]:
    """Return the catalog name of each of ``skus`` that is a product."""
    return dict(Product.objects.filter(sku__in=skus).values_list("sku", "name"))


def stock_levels_all() -> list[StockLevel]:
    """Return every SKU's level in the stock projection, in SKU order."""
    return list(StockLevel.objects.order_by("sku"))


def product_get(*, sku: str) -> Product | None:
    """Return a product with its category, cached (catalog rows rarely change)."""
    key = f"product:{sku}"
    product = cache.get(key)
    if product is None:
        product = Product.objects.select_related("category").filter(sku=sku).first()
        if product is not None:
            cache.set(key, product, CATALOG_CACHE_SECONDS)
    return product


def product_list(*, q: str = "", category: str = "", page: int = 1) -> tuple[list[Product], int]:
    """Return one page of products matching a search and a category, and the page count."""
    products = Product.objects.select_related("category").order_by("name", "sku")
    if q:
        products = products.filter(Q(name__icontains=q) | Q(description__icontains=q) | Q(sku__iexact=q))
    if category:
        products = products.filter(category__slug=category)
    count = products.count()
    pages = max(1, math.ceil(count / PAGE_SIZE))
    start = (page - 1) * PAGE_SIZE
    return list(products[start : start + PAGE_SIZE]), pages


def order_get(*, order_id: str) -> Order | None:
    """Return an order with its lines and timeline, or None."""
    return Order.objects.prefetch_related("lines", "timeline").filter(id=order_id).first()


def order_events_payloads(*, order_id: str, prefixes: tuple[str, ...]) -> list[bytes]:
    """Return the wire bytes of the order's events (by correlation) on subjects with these prefixes, in log order."""
    subjects = Q()
    for prefix in prefixes:
        subjects |= Q(subject__startswith=prefix)
    rows = StoredEvent.objects.filter(subjects, correlation_id=order_id).order_by("seq")
    return list(rows.values_list("payload", flat=True))


def orders_stuck(*, older_than: timedelta) -> list[Order]:
    """Return orders still pending after ``older_than``."""
    return list(Order.objects.filter(status=Order.Status.PENDING, created_at__lt=timezone.now() - older_than))


# Nearest rank, as loadtests.stats.percentile: percentile_disc returns an observed value, the first whose rank
# reaches the fraction. PostgreSQL sorts; only the count and the quantiles come back, however many orders.
LATENCY_QUANTILES = """
    SELECT count(*), percentile_disc(%s::float8[]) WITHIN GROUP (
        ORDER BY greatest(0, extract(epoch FROM updated_at - created_at))::float8
    )
    FROM shop_order WHERE status = %s AND created_at >= %s AND updated_at >= %s
"""


def order_latency_quantiles(
    *, decided_within: timedelta, placed_within: timedelta, quantiles: list[float]
) -> tuple[int, list[float | None]]:
    """Return how many orders were confirmed in the last ``decided_within``, and place → confirmed quantiles.

    Only orders placed in the last ``placed_within`` are looked at, so the read stays on a bounded range
    of the (status, created_at) index whatever the size of the table. No order: the quantiles are None.
    """
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            LATENCY_QUANTILES, [quantiles, Order.Status.CONFIRMED, now - placed_within, now - decided_within]
        )
        count, values = cursor.fetchone()
    return count, list(values) if values else [None] * len(quantiles)
