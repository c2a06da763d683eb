"""The shop's JSON API (DESIGN §7): parse, call one service or selector, render."""

from __future__ import annotations

import uuid
from contextlib import nullcontext

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from events.base import SKU_PATTERN, Line, is_sku
from web.api import ApiError, api_view, json_body, positive_int, text_param
from web.openapi import ERROR, Component, errors, operation
from web.ratelimit import rate_limited
from web.text import validate_email_address

from .live import availability
from .models import Order, Product
from .owners import bearer_user, shown_email
from .selectors import order_get, page_number, product_get, product_list, stock_status
from .services import (
    CannotCancel,
    IdempotencyConflict,
    UnknownProducts,
    order_cancel,
    order_claim,
    order_place,
)

ORDER_FIELDS = {"email", "lines"}
LINE_FIELDS = {"sku", "quantity"}
MAX_KEY_LENGTH = 200


SKU = {"type": "string", "pattern": SKU_PATTERN.pattern.removesuffix(r"\Z").join("^$")}
MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2}$", "examples": ["12.50"]}
PRODUCT = Component(
    "Product",
    {
        "type": "object",
        "required": ["sku", "name", "description", "price", "currency", "category", "url", "image_url", "available"],
        "properties": {
            "sku": SKU,
            "name": {"type": "string"},
            "description": {"type": "string"},
            "price": MONEY,
            "currency": {"type": "string", "minLength": 3, "maxLength": 3},
            "category": {"type": "string"},
            "url": {"type": "string", "format": "uri", "description": "its storefront page"},
            "image_url": {"type": "string"},
            "available": {"type": "integer"},
            "stock_status": {"enum": ["in_stock", "low_stock", "sold_out"]},
        },
    },
)
PRODUCT_PAGE = Component(
    "ProductPage",
    {
        "type": "object",
        "required": ["items", "page", "pages"],
        "properties": {
            "items": {"type": "array", "items": PRODUCT},
            "page": {"type": "integer", "minimum": 1},
            "pages": {"type": "integer", "minimum": 0},
        },
    },
)
ORDER = Component(
    "Order",
    {
        "type": "object",
        "required": ["id", "status", "lines", "total", "currency", "created_at", "timeline", "status_url"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"enum": ["pending", "confirmed", "rejected", "cancelled"]},
            "reason": {"type": "string", "description": "why it was rejected or cancelled"},
            "email": {
                "type": "string",
                "description": "in full to whoever placed the order (its browser session or API token) and to "
                "staff; masked for anyone else who has the id: r***@example.com",
            },
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["sku", "name", "unit_price", "quantity"],
                    "properties": {
                        "sku": SKU,
                        "name": {"type": "string"},
                        "unit_price": MONEY,
                        "quantity": {"type": "integer", "minimum": 1},
                    },
                },
            },
            "total": MONEY,
            "currency": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "timeline": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["type", "at"],
                    "properties": {
                        "type": {"type": "string"},
                        "at": {"type": "string", "format": "date-time"},
                        "detail": {"type": "string"},
                    },
                },
            },
            "status_url": {"type": "string", "format": "uri"},
        },
    },
)


def _order_request() -> dict:
    return {
        "type": "object",
        "required": ["email", "lines"],
        "additionalProperties": False,
        "description": "Prices come from the catalog, never from the body.",
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "lines": {
                "type": "array",
                "minItems": 1,
                "maxItems": settings.ORDER_MAX_LINES,
                "items": {
                    "type": "object",
                    "required": ["sku", "quantity"],
                    "additionalProperties": False,
                    "properties": {
                        "sku": SKU,
                        "quantity": {"type": "integer", "minimum": 1, "maximum": settings.ORDER_MAX_QUANTITY},
                    },
                },
            },
        },
    }


ORDER_REQUEST = Component("OrderRequest", _order_request)
IDEMPOTENCY_KEY = (
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    "same key and same body: the same order; same key, another body: 409",
)


def product_json(request: HttpRequest, product: Product, available: int) -> dict:
    return {
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": f"{product.price:.2f}",
        "currency": product.currency,
        "category": product.category.slug,
        "url": request.build_absolute_uri(reverse("shop:product", args=[product.sku])),
        "image_url": request.build_absolute_uri(product.image_url) if product.image_url else "",
        "available": available,
        "stock_status": stock_status(available),
    }


def order_json(request: HttpRequest, order: Order, *, placer: bool = False) -> dict:
    """Return the order as the API shows it to this request (the e-mail in full only to its ``placer``, or staff)."""
    return {
        "id": str(order.id),
        "status": order.status,
        "reason": order.reason,
        "email": order.email if placer else shown_email(request, order),
        "lines": [
            {"sku": ln.sku, "name": ln.name, "unit_price": f"{ln.unit_price:.2f}", "quantity": ln.quantity}
            for ln in order.lines.all()
        ],
        "total": f"{order.total:.2f}",
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
        "timeline": [{"type": t.type, "at": t.at.isoformat(), "detail": t.detail} for t in order.timeline.all()],
        "status_url": request.build_absolute_uri(reverse("api:order", args=[order.id])),
    }


def _page(value: str) -> int:
    """Return the page number of a query string value, or raise ApiError 400."""
    page = page_number(value)
    if page is None:
        raise ApiError(400, "invalid", "page must be a positive integer", {"page": "must be a positive integer"})
    return page


@operation(
    "List the catalog, a page at a time",
    {200: ("a page of products", PRODUCT_PAGE), **errors(400, 429)},
    query=(
        ("q", {"type": "string"}, "words of the name or description"),
        ("category", {"type": "string"}, "a category slug"),
        ("page", {"type": "string", "pattern": "^[0-9]+$"}, "the page, from 1"),
    ),
)
@api_view("GET")
def products(request: HttpRequest):
    page = _page(request.GET.get("page", "1"))
    q, category = text_param(request, "q", 100), text_param(request, "category", 64)
    items, pages = product_list(q=q, category=category, page=page)
    stock = availability([p.sku for p in items])
    return JsonResponse(
        {"items": [product_json(request, p, stock[p.sku]) for p in items], "page": page, "pages": pages}
    )


@operation("Show one product with its stock", {200: ("the product", PRODUCT), **errors(429, _404="no such product")})
@api_view("GET")
def product(request: HttpRequest, sku: str):
    found = product_get(sku=sku)
    if found is None:
        raise ApiError(404, "not_found", f"no product {sku!r}")
    return JsonResponse(product_json(request, found, availability([sku])[sku]))


def parse_order(body: dict) -> tuple[str, list[Line]]:
    """Validate an order request; raise ApiError 422 naming the first bad field."""
    unknown = sorted(set(body) - ORDER_FIELDS)
    if unknown:
        raise ApiError(
            422,
            "unknown_field",
            f"unknown field {unknown[0]!r} (prices come from the catalog)",
            {name: "unknown field" for name in unknown},
        )
    email = body.get("email")
    if not isinstance(email, str) or len(email) > 254:
        raise ApiError(422, "invalid", "email is required", {"email": "required, a string"})
    try:
        validate_email_address(email)
    except ValidationError:
        raise ApiError(422, "invalid", "email is not a valid address", {"email": "not a valid address"}) from None
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines:
        raise ApiError(422, "invalid", "lines must be a non-empty list", {"lines": "must be a non-empty list"})
    if len(lines) > settings.ORDER_MAX_LINES:
        raise ApiError(422, "invalid", f"at most {settings.ORDER_MAX_LINES} lines", {"lines": "too many lines"})
    return email, [_parse_line(i, line) for i, line in enumerate(lines)]


def _parse_line(i: int, line: object) -> Line:
    where = f"lines[{i}]"
    if not isinstance(line, dict):
        raise ApiError(422, "invalid", f"{where} must be an object", {where: "must be an object"})
    unknown = sorted(set(line) - LINE_FIELDS)
    if unknown:
        raise ApiError(
            422,
            "unknown_field",
            f"unknown field {where}.{unknown[0]} (prices come from the catalog)",
            {f"{where}.{name}": "unknown field" for name in unknown},
        )
    sku = line.get("sku")
    if not is_sku(sku):
        raise ApiError(422, "invalid", f"{where}.sku is not a valid SKU", {f"{where}.sku": "not a valid SKU"})
    quantity = positive_int(line.get("quantity"), field=f"{where}.quantity", maximum=settings.ORDER_MAX_QUANTITY)
    return Line(sku=sku, quantity=quantity)


def _idempotency_key(request: HttpRequest) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            400,
            "invalid",
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters",
            {"Idempotency-Key": f"1-{MAX_KEY_LENGTH} printable characters"},
        )
    return key


def _place(*, email: str, lines: list[Line], key: str | None, user) -> Order:
    """Place the order (claimed by the ``user`` of the API token, if any), turning refusals into ApiErrors."""
    try:
        with transaction.atomic() if user is not None else nullcontext():
            order = order_place(email=email, lines=lines, idempotency_key=key)
            if user is not None:
                order_claim(order=order, user_id=user.pk)
            return order
    except UnknownProducts as exc:
        raise ApiError(
            422,
            "unknown_product",
            f"not in the catalog: {', '.join(exc.skus)}",
            {f"lines[{i}].sku": "not in the catalog" for i, line in enumerate(lines) if line.sku in exc.skus},
        ) from None
    except IdempotencyConflict:
        raise ApiError(409, "idempotency_conflict", "this Idempotency-Key was used with another request") from None


@operation(
    "Place an order; inventory decides it by events (poll status_url or its websocket)",
    {
        202: ("accepted, pending (or the order this Idempotency-Key placed before)", ORDER),
        **errors(400, 413, 415, 429, _409="this Idempotency-Key was used with another body"),
        422: ("a field is invalid, unknown, or names no product of the catalog", ERROR),
    },
    body=ORDER_REQUEST,
    headers=(IDEMPOTENCY_KEY,),
)
@api_view("POST")
@rate_limited("orders")
def orders(request: HttpRequest):
    key = _idempotency_key(request)
    email, lines = parse_order(json_body(request))
    order = _place(email=email, lines=lines, key=key, user=bearer_user(request))
    response = JsonResponse(order_json(request, order, placer=True), status=202)
    response["Location"] = reverse("api:order", args=[order.id])
    return response


def _order_or_404(order_id: uuid.UUID) -> Order:
    order = order_get(order_id=order_id)
    if order is None:
        raise ApiError(404, "not_found", "no such order")
    return order


@operation("Show an order, its status and timeline", {200: ("the order", ORDER), **errors(429, _404="no such order")})
@api_view("GET")
def order(request: HttpRequest, order_id: uuid.UUID):
    return JsonResponse(order_json(request, _order_or_404(order_id)))


@operation(
    "Cancel an order; what it holds goes back to stock",
    {
        202: ("cancelled", ORDER),
        **errors(429, _404="no such order", _409="the order can no longer be cancelled"),
    },
)
@api_view("POST")
def order_cancel_view(request: HttpRequest, order_id: uuid.UUID):
    _order_or_404(order_id)
    try:
        cancelled = order_cancel(order_id=order_id)
    except CannotCancel as exc:
        raise ApiError(409, "cannot_cancel", f"the order can no longer be cancelled: {exc}") from None
    return JsonResponse(order_json(request, order_get(order_id=cancelled.id)), status=202)
