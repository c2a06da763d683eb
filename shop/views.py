"""Storefront pages (server-rendered)."""

from django.http import Http404
from django.shortcuts import render

from events.base import SKU_PATTERN

from .selectors import availability, product_get, product_list, stock_status


def catalog(request):
    page = request.GET.get("page", "1")
    page = int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1
    items, pages = product_list(q=request.GET.get("q", "")[:100], page=page)
    stock = availability([p.sku for p in items])
    rows = [(p, stock[p.sku], stock_status(stock[p.sku])) for p in items]
    return render(request, "shop/catalog.html", {"rows": rows, "page": page, "pages": pages})


def product(request, sku: str):
    found = product_get(sku=sku) if SKU_PATTERN.fullmatch(sku) else None
    if found is None:
        raise Http404("no such product")
    available = availability([sku])[sku]
    return render(
        request, "shop/product.html", {"product": found, "available": available, "status": stock_status(available)}
    )
