"""Staff pages: the inventory with live levels and a restock form, and the event explorer."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import user_passes_test
from django.db import DataError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from inventory.services import UnknownSku, stock_receive
from shop.selectors import stock_status
from web.ratelimit import rate_limited

from .forms import EventFilterForm, RestockForm
from .selectors import event_chain, event_types, events_recent, stock_rows


def is_staff(user) -> bool:
    return user.is_active and user.is_staff


# Anonymous visitors and non-staff users are sent to the staff login page.
staff_required = user_passes_test(is_staff)


@staff_required
def inventory(request):
    rows = [(item, name, stock_status(item.available)) for item, name in stock_rows()]
    return render(request, "staff/inventory.html", {"rows": rows, "form": RestockForm(), "section": "inventory"})


@staff_required
@require_POST
@rate_limited("staff_writes", page=True)
def restock(request, sku: str):
    form = RestockForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Restock {sku}: {' '.join(form.errors['quantity'])}")
        return redirect("staff:inventory")
    try:
        item = stock_receive(sku=sku, quantity=form.cleaned_data["quantity"])
    except UnknownSku:
        raise Http404("no such SKU") from None
    except DataError:  # on_hand is a 32-bit integer
        messages.error(request, f"Restock {sku}: the stock on hand would be too large.")
        return redirect("staff:inventory")
    messages.success(request, f"Received {form.cleaned_data['quantity']} × {sku}: {item.on_hand} on hand.")
    return redirect("staff:inventory")


@staff_required
def events(request):
    form = EventFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    page = filters.get("page") or 1
    rows, more = events_recent(type=filters.get("type", ""), correlation=filters.get("correlation", ""), page=page)
    context = {
        "form": form,
        "rows": rows,
        "page": page,
        "more": more,
        "types": event_types(),
        "filters": filters,
        "section": "events",
    }
    return render(request, "staff/events.html", context)


@staff_required
def chain(request, correlation_id: str):
    if len(correlation_id) > 100:
        raise Http404("no such chain")
    nodes = event_chain(correlation_id=correlation_id)
    if not nodes:
        raise Http404("no events with this correlation id")
    return render(request, "staff/chain.html", {"correlation_id": correlation_id, "nodes": nodes, "section": "events"})
