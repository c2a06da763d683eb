"""What the personas share: checked requests, the catalog as a shopper sees it, placing an order and timing it.

Every request goes through ``checked``: the answer's status and body are
checked by a function of ``loadtests/check.py`` and a wrong one is marked
failed with the reason (``resp.failure``), so Locust's tables count wrong
answers, not only slow ones.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import gevent
from locust import FastHttpUser

from loadtests import check

POLL_FIRST, POLL_MAX = 0.05, 0.5  # seconds between two looks at a pending order: doubling from the first to the max


def checked(user: FastHttpUser, method: str, path: str, problem: Callable[[int, Any], str | None], **kwargs) -> Any:
    """Send a request; fail it in Locust if ``problem(status, body)`` names one; return the decoded body."""
    with user.client.request(method, path, catch_response=True, **kwargs) as resp:
        data = check.decode(resp.text)
        found = problem(resp.status_code, data)
        if found:
            resp.failure(found)
        else:
            resp.success()  # a 409 that the check expects is a success
        return None if found else data


def page(user: FastHttpUser, path: str, *expected: str, name: str | None = None) -> bool:
    """Fetch an HTML page and check it holds each ``expected`` text; return whether it did."""
    with user.client.get(path, name=name, catch_response=True) as resp:
        found = check.page_problem(resp.status_code, resp.text or "", *expected)
        if found:
            resp.failure(found)
        else:
            resp.success()
        return not found


def form_post(
    user: FastHttpUser, path: str, data: dict[str, str], expected, keep: tuple[str, ...] = (), name: str | None = None
) -> str | None:
    """Fetch the form at ``path``, post ``data`` with its CSRF token (and its ``keep`` fields) back to it.

    The answer must redirect to ``expected`` (a path or a pattern); return
    where it redirected, or None if a step was wrong (and failed in Locust).
    A 409 is a right answer too: the page refused more than the live stock
    holds, with the reason; it returns None, and no failure is counted.
    """
    with user.client.get(path, name=name, catch_response=True) as resp:
        html = resp.text or ""
        found = check.form_page_problem(resp.status_code, html, "csrfmiddlewaretoken", *keep)
        resp.failure(found) if found else resp.success()
    if found:
        return None
    fields = {f: check.form_field(html, f) for f in ("csrfmiddlewaretoken", *keep)}
    with user.client.post(
        path, data={**data, **fields}, allow_redirects=False, name=f"{name or path} (form)", catch_response=True
    ) as resp:
        location = resp.headers.get("Location", "") if resp.headers else ""
        if resp.status_code == 409:
            found = check.stock_refusal_problem(resp.text or "")
            resp.failure(found) if found else resp.success()
            return None
        found = check.redirect_problem(resp.status_code, location, expected)
        resp.failure(found) if found else resp.success()
    return None if found else location


def catalog(user: FastHttpUser) -> list[dict]:
    """Return every product of the catalog, as ``GET /api/products`` pages them."""
    products, number, pages = [], 1, 1
    while number <= pages:
        data = checked(
            user, "GET", f"/api/products?page={number}", check.product_list_problem, name="/api/products?page=[n]"
        )
        if data is None:
            break
        products += data["items"]
        pages = data["pages"]
        number += 1
    return products


def flash_sku(user: FastHttpUser, products: list[dict]) -> str:
    """Return the flash sale's SKU: ``--flash-sku``, else the limited lot or the first of ``products``."""
    options = user.environment.parsed_options
    return check.flash_sale_sku(getattr(options, "flash_sku", "") if options else "", products)


def e2e_timeout(user: FastHttpUser) -> float:
    """Return the seconds a buyer waits for an order's decision (``--e2e-timeout``)."""
    options = user.environment.parsed_options
    return float(getattr(options, "e2e_timeout", 30) or 30) if options else 30.0


def place_order(user: FastHttpUser, lines: list[dict], name: str = "/api/orders") -> dict | None:
    """Place an order through the JSON API; return the 202's body, or None if the answer was wrong."""
    body = {"email": f"{type(user).__name__.lower()}@loadtest.example.org", "lines": lines}
    return checked(
        user,
        "POST",
        "/api/orders",
        lambda s, d: check.order_placed_problem(s, d, lines),
        json=body,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        name=name,
    )


def await_final(user: FastHttpUser, order_id: str) -> dict | None:
    """Look at an order until it is decided, then report place → final as a request of type ``E2E``.

    The figure is the server's (the order's ``created_at`` to its decision in
    the timeline); it appears in Locust's tables, CSV and HTML report under
    ``E2E place→confirmed`` / ``place→rejected``. An order still pending after
    ``--e2e-timeout`` seconds is a failed ``place→final``.
    """
    started, wait = time.monotonic(), POLL_FIRST
    deadline = started + e2e_timeout(user)
    while True:
        data = checked(
            user,
            "GET",
            f"/api/orders/{order_id}",
            lambda s, d: check.order_status_problem(s, d, order_id),
            name="/api/orders/[id]",
        )
        decided = check.final_latency(data) if data else None
        if decided:
            status, seconds = decided
            _fire(user, f"place→{status}", seconds * 1000, None)
            return data
        if data is None or time.monotonic() > deadline:
            why = "a wrong answer while waiting" if data is None else f"still pending after {e2e_timeout(user):.0f}s"
            _fire(user, "place→final", (time.monotonic() - started) * 1000, RuntimeError(f"order {order_id}: {why}"))
            return None
        gevent.sleep(wait)
        wait = min(wait * 2, POLL_MAX)


def _fire(user: FastHttpUser, name: str, milliseconds: float, exception: Exception | None) -> None:
    user.environment.events.request.fire(
        request_type="E2E",
        name=name,
        response_time=milliseconds,
        response_length=0,
        exception=exception,
        context={},
    )


def random_lines(products: list[dict], most: int = 2) -> list[dict]:
    """Return 1..``most`` order lines of distinct products in stock (any product if none is)."""
    in_stock = [p for p in products if p["available"] > 0] or products
    chosen = random.sample(in_stock, k=min(len(in_stock), random.randint(1, most)))
    return [{"sku": p["sku"], "quantity": random.randint(1, 2)} for p in chosen]
