"""Storefront pages (server-rendered): catalog, product, cart, checkout, orders."""

from __future__ import annotations

import re
import uuid

from django.contrib import messages
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from events.base import SKU_CHARACTERS, Line, is_sku
from web.ratelimit import rate_limited

from . import live
from .cart import Cart
from .forms import AddToCartForm, CartLineForm, CheckoutForm
from .models import Category, Order, Product
from .owners import MY_ORDERS_KEY, placed_here, remember, shown_email
from .selectors import order_get, page_number, product_get, product_list
from .services import CannotCancel, IdempotencyConflict, UnknownProducts, order_cancel, order_place

CANCELLABLE = (Order.Status.PENDING, Order.Status.CONFIRMED)
SKU_TOKEN = re.compile(SKU_CHARACTERS + "+")  # a word that may be a SKU, in an inventory's reason


def _clean_text(value: str, limit: int) -> str:
    return value.replace("\x00", "")[:limit]


def catalog(request):
    q = _clean_text(request.GET.get("q", ""), 100)
    category = _clean_text(request.GET.get("category", ""), 64)
    page = page_number(request.GET.get("page", "1")) or 1  # a bad page number in a link: the first page
    items, pages = product_list(q=q, category=category, page=page)
    levels = live.stock_levels([p.sku for p in items])
    context = {
        "cards": [(p, levels[p.sku].frame()) for p in items],
        "categories": list(Category.objects.all()),
        "q": q,
        "category": category,
        "page": page,
        "pages": pages,
        "previous": page - 1 if page > 1 else None,
        "next": page + 1 if page < pages else None,
        # Past the last page of something (not of an empty catalog, nor of a search that found nothing).
        "out_of_range": page > pages and bool(product_list(q=q, category=category, page=pages)[0]),
    }
    return render(request, "shop/catalog.html", context, status=404 if page > pages else 200)


def _product_or_404(sku: str):
    found = product_get(sku=sku)
    if found is None:
        raise Http404("no such product")
    return found


# The same wording is in static/shop/live.js, which says it again whenever the stock changes.
def add_shortage(name: str, wanted: int, available: int, in_cart: int) -> str:
    """Return why ``wanted`` more units (``in_cart`` already in the cart) cannot be added, or ""."""
    if wanted + in_cart <= available:
        return ""
    if available <= 0:
        return f"{name} is sold out: it can be ordered again once it is restocked."
    left = available - in_cart
    if left <= 0:
        return f"Only {available} of {name} available, all of them already in your cart."
    already = f" ({in_cart} already in your cart)" if in_cart else ""
    return f"Only {available} of {name} available{already}: you can add up to {left}."


def line_shortage(name: str, quantity: int, available: int) -> str:
    """Return why a cart line of ``quantity`` cannot be ordered now, or ""."""
    if quantity <= available:
        return ""
    if available <= 0:
        return f"{name} is sold out: remove it, or wait until it is restocked."
    return f"Only {available} of {name} available: lower the quantity to {available}."


@require_http_methods(["GET", "POST"])
def product(request, sku: str):
    found = _product_or_404(sku)
    basket = Cart(request.session)
    form = AddToCartForm(request.POST or None)
    level = live.stock_levels([found.sku])[found.sku].frame()
    in_cart = basket.items.get(found.sku, 0)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            quantity = form.cleaned_data["quantity"]
            refusal = add_shortage(found.name, quantity, level["available"], in_cart)
            if not refusal:
                basket.add(found.sku, quantity)
                messages.success(request, f"Added {quantity} × {found.name} to your cart.")
                return redirect("shop:cart")
            form.add_error("quantity", refusal)
            status = 409
    # Nothing can be added (sold out, or all of it in the cart): the button says so before any click.
    blocked = add_shortage(found.name, 1, level["available"], in_cart)
    context = {"product": found, "level": level, "form": form, "in_cart": in_cart, "blocked": blocked}
    return render(request, "shop/product.html", context, status=status)


@require_http_methods(["GET", "POST"])
def cart(request):
    basket = Cart(request.session)
    if request.method == "POST":
        _cart_update(request, basket)
        return redirect("shop:cart")
    return render(request, "shop/cart.html", _cart_context(basket))


def _cart_update(request, basket: Cart) -> None:
    """Change or remove one line, as the posted form says; tell the shopper what happened."""
    sku = request.POST.get("sku", "")
    form = CartLineForm(request.POST)
    if not is_sku(sku) or sku not in basket.items:
        messages.error(request, "That product is not in your cart.")
        return
    name = (product_get(sku=sku) or Product(name=sku)).name
    if request.POST.get("action") == "remove" or (form.is_valid() and form.cleaned_data["quantity"] == 0):
        basket.set(sku, 0)
        messages.success(request, f"Removed {name} from your cart.")
    elif not form.is_valid():
        messages.error(request, f"{name}: {' '.join(form.errors['quantity'])}")
    elif refusal := line_shortage(name, form.cleaned_data["quantity"], _available(sku)):
        messages.error(request, refusal)
    else:
        basket.set(sku, form.cleaned_data["quantity"])
        messages.success(request, f"{name}: quantity set to {form.cleaned_data['quantity']}.")


def _available(sku: str) -> int:
    return live.stock_levels([sku])[sku].frame()["available"]


def _cart_context(basket: Cart) -> dict:
    lines = basket.lines()
    levels = live.stock_levels([line.product.sku for line in lines])
    rows = [(line, levels[line.product.sku].frame()) for line in lines]
    total = sum((line.subtotal for line in lines), start=0)
    short = [line_shortage(line.product.name, line.quantity, level["available"]) for line, level in rows]
    return {
        "rows": [(line, level, note) for (line, level), note in zip(rows, short, strict=True)],
        "short": [note for note in short if note],
        "total": total,
        "currency": lines[0].product.currency if lines else "EUR",
    }


@require_http_methods(["GET", "POST"])
@rate_limited("orders", page=True)
def checkout(request):
    basket = Cart(request.session)
    if request.method == "GET":
        form = CheckoutForm(initial={"token": uuid.uuid4()})
        return render(request, "shop/checkout.html", {"form": form, **_cart_context(basket)})
    form = CheckoutForm(request.POST)
    context = _cart_context(basket)
    lines = [Line(sku, qty) for sku, qty in sorted(basket.items.items())]
    if not lines:
        form.add_error(None, "Your cart is empty: add a product first.")
    for note in context["short"]:
        form.add_error(None, f"{note} Change the quantity in your cart.")
    if form.is_valid():
        order = _place(form, lines)
        if order is not None:
            remember(request, order)
            basket.clear()
            return redirect("shop:order", order_id=order.id)
    status = 409 if lines and context["short"] else 400
    return render(request, "shop/checkout.html", {"form": form, **context}, status=status)


def _place(form: CheckoutForm, lines: list[Line]) -> Order | None:
    """Place the order at catalog prices; on refusal, put the reason on the form and return None."""
    key = f"checkout-{form.cleaned_data['token']}"
    try:
        return order_place(email=form.cleaned_data["email"], lines=lines, idempotency_key=key)
    except UnknownProducts as exc:
        form.add_error(None, f"No longer in the catalog: {', '.join(exc.skus)}. Remove them from your cart.")
    except IdempotencyConflict:
        form.add_error(None, "This form was already used for another order: please submit it again.")
        form.data = form.data.copy()
        form.data["token"] = str(uuid.uuid4())
    return None


def order(request, order_id: uuid.UUID):
    found = order_get(order_id=order_id)
    if found is None:
        raise Http404("no such order")
    names = {line.sku: line.name for line in found.lines.all()}
    context = {
        "order": found,
        "names": names,
        "reason": customer_wording(found.reason, names),
        "timeline": timeline_rows(found, names),
        "mine": placed_here(request, found),
        "email": shown_email(request, found),
        "cancellable": found.status in CANCELLABLE,
    }
    return render(request, "shop/order.html", context)


def customer_wording(text: str, names: dict[str, str]) -> str:
    """Return ``text`` (a reason from the inventory) with each SKU of the order replaced by its product name."""
    worded = SKU_TOKEN.sub(lambda m: names.get(m.group(0), m.group(0)), text)
    return worded[:1].upper() + worded[1:]


@require_POST
def order_cancel_page(request, order_id: uuid.UUID):
    """Cancel an order placed from this browser, while it can be."""
    found = order_get(order_id=order_id)
    if found is None:
        raise Http404("no such order")
    if not placed_here(request, found):
        return HttpResponseForbidden("Only the browser that placed this order can cancel it here.")
    try:
        order_cancel(order_id=found.id)
    except CannotCancel:
        now = Order.objects.get(id=found.id).status
        messages.error(request, f"This order can no longer be cancelled: it is {now}.")
    else:
        messages.success(request, "Your order is cancelled; its stock goes back on sale.")
    return redirect("shop:order", order_id=found.id)


def timeline_rows(order: Order, names: dict[str, str]) -> list[dict]:
    """Return the order's timeline with the milliseconds since the entry before, details in product names."""
    rows, previous = [], None
    for entry in order.timeline.all():
        ms = round((entry.at - previous).total_seconds() * 1000) if previous else None
        rows.append({"entry": entry, "ms": ms, "detail": customer_wording(entry.detail, names)})
        previous = entry.at
    return rows


def my_orders(request):
    ids = request.session.get(MY_ORDERS_KEY, [])
    found = {str(o.id): o for o in Order.objects.filter(id__in=ids)}
    return render(request, "shop/my_orders.html", {"orders": [found[i] for i in ids if i in found]})
