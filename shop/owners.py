"""Who may see an order's personal data: its id is a capability, its e-mail is not for anyone who has the id.

The id (a random UUID) is enough to follow an order and cancel it, as a
parcel's tracking number is; the customer's address is shown in full only to
whoever placed it, and to staff:

- the browser session that placed it at checkout (its list of orders),
- the API token whose user placed it (``Order.placed_by_user_id``),
- a staff session or a staff token.

Anyone else sees it masked (``r***@example.com``). Nothing here runs a query
for a request with neither a session cookie nor a token.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from accounts.tokens import token_user

from .models import Order

MY_ORDERS_KEY = "orders"
MY_ORDERS_MAX = 50


def mask_email(email: str) -> str:
    """Return ``email`` with its local part hidden but for its first character: ``r***@example.com``."""
    local, at, domain = email.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def bearer_user(request: HttpRequest):
    """Return the active user of the request's ``Authorization: Bearer`` token, or None (no query without one)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    return token_user(header.removeprefix("Bearer ").strip())


def remember(request: HttpRequest, order: Order) -> None:
    """Add ``order`` to the orders of this browser session, newest first."""
    ids = [str(order.id), *(i for i in request.session.get(MY_ORDERS_KEY, []) if i != str(order.id))]
    request.session[MY_ORDERS_KEY] = ids[:MY_ORDERS_MAX]


def placed_here(request: HttpRequest, order: Order) -> bool:
    """Return whether this browser session placed ``order`` (no query without a session cookie)."""
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    return str(order.id) in request.session.get(MY_ORDERS_KEY, [])


def may_see_email(request: HttpRequest, order: Order) -> bool:
    """Return whether the request comes from whoever placed ``order``, or from staff."""
    user = bearer_user(request)
    if user is not None:
        return user.is_staff or user.pk == order.placed_by_user_id
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return False
    return placed_here(request, order) or (request.user.is_active and request.user.is_staff)


def shown_email(request: HttpRequest, order: Order) -> str:
    """Return the order's e-mail as this request may see it: in full, or masked."""
    return order.email if may_see_email(request, order) else mask_email(order.email)
