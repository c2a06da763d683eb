"""The shop's JSON API (DESIGN §7): parse, call one service or selector, render."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from events.base import is_sku
from web.api import ApiError, api_view, json_body, positive_int

from .live import availability
from .models import Order, Product
from .selectors import order_get, page_number, product_get, product_list, stock_status
from .services import CannotCancel, IdempotencyConflict, LineRequest, UnknownProducts, order_cancel, order_place

ORDER_FIELDS = {"email", "lines"}
LINE_FIELDS = {"sku", "quantity"}
MAX_KEY_LENGTH = 200


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


def order_json(request: HttpRequest, order: Order) -> dict:
    return {
        "id": str(order.id),
        "status": order.status,
        "reason": order.reason,
        "email": order.email,
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


def _text_param(request: HttpRequest, name: str, limit: int) -> str:
    """Return a query string parameter cut to ``limit`` characters, or raise ApiError 400 if it holds a NUL."""
    value = request.GET.get(name, "")[:limit]
    if "\x00" in value:  # PostgreSQL text cannot hold NUL: the query would fail with a DataError
        raise ApiError(400, "invalid", f"{name} must not contain NUL characters", {name: "must not contain NUL"})
    return value


@api_view("GET")
def products(request: HttpRequest):
    page = _page(request.GET.get("page", "1"))
    q, category = _text_param(request, "q", 100), _text_param(request, "category", 64)
    items, pages = product_list(q=q, category=category, page=page)
    stock = availability([p.sku for p in items])
    return JsonResponse(
        {"items": [product_json(request, p, stock[p.sku]) for p in items], "page": page, "pages": pages}
    )


@api_view("GET")
def product(request: HttpRequest, sku: str):
    found = product_get(sku=sku)
    if found is None:
        raise ApiError(404, "not_found", f"no product {sku!r}")
    return JsonResponse(product_json(request, found, availability([sku])[sku]))


def parse_order(body: dict) -> tuple[str, list[LineRequest]]:
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
        validate_email(email)
    except ValidationError:
        raise ApiError(422, "invalid", "email is not a valid address", {"email": "not a valid address"}) from None
    lines = body.get("lines")
    if not isinstance(lines, list) or not lines:
        raise ApiError(422, "invalid", "lines must be a non-empty list", {"lines": "must be a non-empty list"})
    if len(lines) > settings.ORDER_MAX_LINES:
        raise ApiError(422, "invalid", f"at most {settings.ORDER_MAX_LINES} lines", {"lines": "too many lines"})
    return email, [_parse_line(i, line) for i, line in enumerate(lines)]


def _parse_line(i: int, line: object) -> LineRequest:
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
    return LineRequest(sku=sku, quantity=quantity)


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


def _place(*, email: str, lines: list[LineRequest], key: str | None) -> Order:
    """Place the order, turning the service's refusals into ApiErrors."""
    try:
        return order_place(email=email, lines=lines, idempotency_key=key)
    except UnknownProducts as exc:
        raise ApiError(
            422,
            "unknown_product",
            f"not in the catalog: {', '.join(exc.skus)}",
            {f"lines[{i}].sku": "not in the catalog" for i, line in enumerate(lines) if line.sku in exc.skus},
        ) from None
    except IdempotencyConflict:
        raise ApiError(409, "idempotency_conflict", "this Idempotency-Key was used with another request") from None


@api_view("POST")
def orders(request: HttpRequest):
    key = _idempotency_key(request)
    email, lines = parse_order(json_body(request))
    order = _place(email=email, lines=lines, key=key)
    response = JsonResponse(order_json(request, order), status=202)
    response["Location"] = reverse("api:order", args=[order.id])
    return response


def _order_or_404(order_id: uuid.UUID) -> Order:
    order = order_get(order_id=order_id)
    if order is None:
        raise ApiError(404, "not_found", "no such order")
    return order


@api_view("GET")
def order(request: HttpRequest, order_id: uuid.UUID):
    return JsonResponse(order_json(request, _order_or_404(order_id)))


@api_view("POST")
def order_cancel_view(request: HttpRequest, order_id: uuid.UUID):
    _order_or_404(order_id)
    try:
        cancelled = order_cancel(order_id=order_id)
    except CannotCancel as exc:
        raise ApiError(409, "cannot_cancel", f"the order can no longer be cancelled: {exc}") from None
    return JsonResponse(order_json(request, order_get(order_id=cancelled.id)), status=202)
