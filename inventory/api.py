"""Staff JSON API of the inventory (DESIGN §7)."""

from django.conf import settings
from django.db import DataError
from django.http import JsonResponse

from accounts.auth import staff_required
from web.api import ApiError, api_view, json_body, positive_int
from web.openapi import ERROR, Component, errors, operation
from web.ratelimit import rate_limited

from .models import StockItem
from .selectors import stock_get
from .services import UnknownSku, stock_receive

STOCK = Component(
    "Stock",
    {
        "type": "object",
        "required": ["sku", "on_hand", "reserved", "available", "version"],
        "properties": {
            "sku": {"type": "string"},
            "on_hand": {"type": "integer", "minimum": 0},
            "reserved": {"type": "integer", "minimum": 0},
            "available": {"type": "integer", "minimum": 0},
            "version": {"type": "integer", "minimum": 0, "description": "the number of stock facts of this SKU"},
        },
    },
)
RESTOCK = Component(
    "Restock",
    lambda: {
        "type": "object",
        "required": ["quantity"],
        "additionalProperties": False,
        "properties": {"quantity": {"type": "integer", "minimum": 1, "maximum": settings.RESTOCK_MAX_QUANTITY}},
    },
)
STAFF_ONLY = {
    401: ("no valid token or staff session", ERROR),
    403: ("not staff (or a session write without CSRF)", ERROR),
}


def _stock_json(item: StockItem) -> dict:
    return {
        "sku": item.sku,
        "on_hand": item.on_hand,
        "reserved": item.reserved,
        "available": item.available,
        "version": item.version,
    }


def _item_or_404(sku: str) -> StockItem:
    item = stock_get(sku=sku)
    if item is None:
        raise ApiError(404, "not_found", f"no stock item {sku!r}")
    return item


@operation(
    "Show a SKU's stock (staff)",
    {200: ("its stock", STOCK), **STAFF_ONLY, **errors(429, _404="no stock item")},
    staff=True,
    tag="inventory",
)
@api_view("GET")
@staff_required
def stock_detail(request, sku: str):
    return JsonResponse(_stock_json(_item_or_404(sku)))


@operation(
    "Receive stock of a SKU (staff)",
    {
        202: ("received; its new stock", STOCK),
        **STAFF_ONLY,
        **errors(400, 413, 415, 429, _404="no stock item"),
        422: ("quantity invalid, or stock on hand would be too large", ERROR),
    },
    body=RESTOCK,
    staff=True,
    tag="inventory",
)
@api_view("POST")
@rate_limited("staff_writes")
@staff_required
def stock_restock(request, sku: str):
    _item_or_404(sku)
    body = json_body(request)
    unknown = set(body) - {"quantity"}
    if unknown:
        raise ApiError(422, "unknown_field", f"unknown field {sorted(unknown)[0]!r}", {f: "unknown" for f in unknown})
    if "quantity" not in body:
        raise ApiError(422, "invalid", "quantity is required", {"quantity": "required"})
    quantity = positive_int(body["quantity"], field="quantity", maximum=settings.RESTOCK_MAX_QUANTITY)
    try:
        item = stock_receive(sku=sku, quantity=quantity)
    except UnknownSku:
        raise ApiError(404, "not_found", f"no stock item {sku!r}") from None
    except DataError:
        # StockItem.on_hand is a 32-bit integer: PostgreSQL refuses a restock that would pass 2**31 - 1.
        raise ApiError(422, "out_of_range", "stock on hand would be too large", {"quantity": "too large"}) from None
    return JsonResponse(_stock_json(item), status=202)
