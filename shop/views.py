"""Storefront pages (server-rendered): catalog, product, cart, checkout, orders."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from events.base import is_sku

from . import live
from .cart import Cart
from .forms import AddToCartForm, CartLineForm, CheckoutForm
from .models import Category, Order
from .selectors import order_get, page_number, product_get, product_list
from .services import IdempotencyConflict, LineRequest, UnknownProducts, order_place

MY_ORDERS_KEY = "orders"
MY_ORDERS_MAX = 50


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
    }
    return render(request, "shop/catalog.html", context)


def _product_or_404(sku: str):
    found = product_get(sku=sku)
    if found is None:
        raise Http404("no such product")
    return found


@require_http_methods(["GET", "POST"])
def product(request, sku: str):
    found = _product_or_404(sku)
    form = AddToCartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        Cart(request.session).add(found.sku, form.cleaned_data["quantity"])
        messages.success(request, f"Added {form.cleaned_data['quantity']} × {found.name} to your cart.")
        return redirect("shop:cart")
    level = live.stock_levels([found.sku])[found.sku].frame()
    status = 400 if request.method == "POST" else 200
    return render(request, "shop/product.html", {"product": found, "level": level, "form": form}, status=status)


@require_http_methods(["GET", "POST"])
def cart(request):
    basket = Cart(request.session)
    if request.method == "POST":
        sku = request.POST.get("sku", "")
        form = CartLineForm(request.POST)
        if not is_sku(sku) or sku not in basket.items:
            messages.error(request, "That product is not in your cart.")
        elif not form.is_valid():
            messages.error(request, f"Quantity: {' '.join(form.errors['quantity'])}")
        else:
            basket.set(sku, form.cleaned_data["quantity"])
        return redirect("shop:cart")
    return render(request, "shop/cart.html", _cart_context(basket))


def _cart_context(basket: Cart) -> dict:
    lines = basket.lines()
    levels = live.stock_levels([line.product.sku for line in lines])
    rows = [(line, levels[line.product.sku].frame()) for line in lines]
    total = sum((line.subtotal for line in lines), start=0)
    return {"rows": rows, "total": total, "currency": lines[0].product.currency if lines else "EUR"}


@require_http_methods(["GET", "POST"])
def checkout(request):
    basket = Cart(request.session)
    if request.method == "GET":
        form = CheckoutForm(initial={"token": uuid.uuid4()})
        return render(request, "shop/checkout.html", {"form": form, **_cart_context(basket)})
    form = CheckoutForm(request.POST)
    lines = [LineRequest(sku, qty) for sku, qty in sorted(basket.items.items())]
    if not lines:
        form.add_error(None, "Your cart is empty: add a product first.")
    if form.is_valid():
        order = _place(form, lines)
        if order is not None:
            _remember(request, order)
            basket.clear()
            return redirect("shop:order", order_id=order.id)
    return render(request, "shop/checkout.html", {"form": form, **_cart_context(basket)}, status=400)


def _place(form: CheckoutForm, lines: list[LineRequest]) -> Order | None:
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


def _remember(request, order: Order) -> None:
    ids = [str(order.id), *(i for i in request.session.get(MY_ORDERS_KEY, []) if i != str(order.id))]
    request.session[MY_ORDERS_KEY] = ids[:MY_ORDERS_MAX]


def order(request, order_id: uuid.UUID):
    found = order_get(order_id=order_id)
    if found is None:
        raise Http404("no such order")
    return render(request, "shop/order.html", {"order": found, "timeline": timeline_rows(found)})


def timeline_rows(order: Order) -> list[dict]:
    """Return the order's timeline with the milliseconds since the entry before."""
    rows, previous = [], None
    for entry in order.timeline.all():
        ms = round((entry.at - previous).total_seconds() * 1000) if previous else None
        rows.append({"entry": entry, "ms": ms})
        previous = entry.at
    return rows


def my_orders(request):
    ids = request.session.get(MY_ORDERS_KEY, [])
    found = {str(o.id): o for o in Order.objects.filter(id__in=ids)}
    return render(request, "shop/my_orders.html", {"orders": [found[i] for i in ids if i in found]})
