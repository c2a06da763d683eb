"""Response checks of the personas, and the verdict of a run.

Everything here is plain Python: it never imports ``locust`` (which
monkey-patches the process with gevent), so the personas, ``make loadtest``
and the unit tests share the same checks.

A response check takes the status and the decoded body of an answer and
returns ``None`` when the answer is right, or one line saying what is wrong;
the persona passes that line to ``resp.failure(...)``, so a wrong body fails
the request in Locust's tables, not only a wrong status.

The verdict (``Verdict``) reads the CSV that Locust wrote, compares the
error ratio with a threshold, and asks ``manage.py verify_invariants``
whether anything was oversold, lost or left pending.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
ORDER_STATUSES = {"pending", "confirmed", "rejected", "cancelled"}
FINAL_STATUSES = {"confirmed", "rejected", "cancelled"}
STOCK_STATUSES = {"in_stock", "low_stock", "sold_out"}
FINAL_TIMELINE = {"OrderConfirmed": "confirmed", "OrderRejected": "rejected", "OrderCancelled": "cancelled"}
# The flash sale's own scarce product, which ``make loadtest`` creates and stocks before each run
# (``manage.py prepare_flash_sale LTD-001 --create``); ``--flash-sku`` / ``LOCUST_FLASH_SKU`` picks another.
FLASH_SKU = "LTD-001"
# How django-environ reads a true boolean (config/settings.py reads RATE_LIMITS so, on when unset).
TRUE_WORDS = {"true", "on", "ok", "y", "yes", "1"}


def rate_limits_line(value: str | None, where: str) -> str:
    """Return one line saying whether the shop ran with its rate limits, from its ``RATE_LIMITS`` ``value``."""
    if value is None or value.strip().lower() in TRUE_WORDS:
        shown = "unset, so on" if value is None else f"RATE_LIMITS={value}"
        return f"rate limits: ON ({shown}, {where}): load from one address meets them, refused writes count as failures"
    return f"rate limits: off (RATE_LIMITS={value}, {where}): the load measures the shop, not its abuse limits"


NOT_JSON = object()  # what ``decode`` returns for a body that is not JSON


def decode(text: str | bytes | None) -> Any:
    """Return the JSON value of a body, or ``NOT_JSON``."""
    try:
        return json.loads(text or b"")
    except (ValueError, TypeError):
        return NOT_JSON


def _status(status: int, expected: int) -> str | None:
    return None if status == expected else f"HTTP {status}, expected {expected}"


def _object(data: Any, *keys: str) -> str | None:
    """Return a problem if ``data`` is not a JSON object holding every key."""
    if data is NOT_JSON:
        return "the body is not JSON"
    if not isinstance(data, dict):
        return f"the body is a JSON {type(data).__name__}, not an object"
    missing = [k for k in keys if k not in data]
    return f"the body lacks {', '.join(missing)}" if missing else None


def _price(value: Any) -> bool:
    """Return whether ``value`` is a price string such as "12.50"."""
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value) >= 0 and value.count(".") == 1 and len(value.split(".")[1]) == 2
    except InvalidOperation:
        return False


def product_problem(data: Any, sku: str | None = None) -> str | None:
    """Check one Product of DESIGN §7."""
    problem = _object(data, "sku", "name", "price", "available", "stock_status", "url")
    if problem:
        return f"product: {problem}"
    if sku is not None and data["sku"] != sku:
        return f"asked for {sku}, got {data['sku']!r}"
    if not _price(data["price"]):
        return f"{data['sku']}: price {data['price']!r} is not a decimal string"
    available = data["available"]
    if not isinstance(available, int) or isinstance(available, bool) or available < 0:
        return f"{data['sku']}: available {available!r} is not a count"
    if data["stock_status"] not in STOCK_STATUSES:
        return f"{data['sku']}: unknown stock_status {data['stock_status']!r}"
    if (available == 0) != (data["stock_status"] == "sold_out"):
        return f"{data['sku']}: {available} available but {data['stock_status']}"
    return None


def product_answer_problem(status: int, data: Any, sku: str) -> str | None:
    """Check ``GET /api/products/{sku}``."""
    return _status(status, 200) or product_problem(data, sku)


def product_list_problem(status: int, data: Any, query: str = "") -> str | None:
    """Check ``GET /api/products[?q=]``: a page of products, each matching the search."""
    problem = _status(status, 200) or _object(data, "items", "page", "pages")
    if problem:
        return problem
    if not isinstance(data["items"], list):
        return "items is not a list"
    for item in data["items"]:
        if problem := product_problem(item):
            return problem
        text = f"{item.get('name', '')} {item.get('description', '')} {item['sku']}".lower()
        if query and query.lower() not in text:
            return f"search {query!r} answered {item['sku']}, which does not match"
    return None


def page_problem(status: int, text: str, *expected: str) -> str | None:
    """Check an HTML page: status 200, and each expected piece of text in it."""
    if status != 200:
        return f"HTTP {status}, expected 200"
    missing = [piece for piece in expected if piece not in text]
    return f"the page lacks {missing[0]!r}" if missing else None


def form_field(html: str, name: str) -> str | None:
    """Return the value of the named input of an HTML form (a hidden token, the CSRF token), or None."""
    found = re.search(rf'<input[^>]*name="{re.escape(name)}"[^>]*>', html)
    value = re.search(r'value="([^"]*)"', found.group(0)) if found else None
    return value.group(1) if value else None


def form_page_problem(status: int, html: str, *fields: str) -> str | None:
    """Check a page that holds a form: status 200 and each named field present."""
    if status != 200:
        return f"HTTP {status}, expected 200"
    missing = [name for name in fields if form_field(html, name) is None]
    return f"the form lacks {missing[0]}" if missing else None


ORDER_PAGE = re.compile(r"/orders/([0-9a-f-]{36})/$")
STOCK_REFUSAL = re.compile(r"sold out|Only \d+ of .+ available")


def stock_refusal_problem(html: str) -> str | None:
    """Check a form's 409: the page says the stock cannot cover it (sold out, or only so many left)."""
    return None if STOCK_REFUSAL.search(html) else "HTTP 409 without saying what the stock allows"


def redirect_problem(status: int, location: str, expected: str | re.Pattern) -> str | None:
    """Check a form's answer: a redirect (302/303) to ``expected`` (a path, or a pattern of one)."""
    if status not in (302, 303):
        return f"HTTP {status}, expected a redirect to {getattr(expected, 'pattern', expected)}"
    path = urlsplit(location).path
    ok = expected.search(path) if isinstance(expected, re.Pattern) else path == expected
    return None if ok else f"redirected to {location!r}"


def order_placed_problem(status: int, data: Any, lines: list[dict]) -> str | None:
    """Check the 202 of ``POST /api/orders``: a pending order of exactly the lines sent."""
    problem = _status(status, 202) or _object(data, "id", "status", "lines", "total", "status_url")
    if problem:
        return problem
    if data["status"] != "pending":
        return f"a new order is {data['status']!r}, not pending"
    got = sorted((ln.get("sku"), ln.get("quantity")) for ln in data["lines"] if isinstance(ln, dict))
    sent = sorted((ln["sku"], ln["quantity"]) for ln in lines)
    if got != sent:
        return f"the order holds {got}, {sent} was sent"
    return None if _price(data["total"]) else f"total {data['total']!r} is not a decimal string"


def order_status_problem(status: int, data: Any, order_id: str) -> str | None:
    """Check ``GET /api/orders/{id}``: that order, a known status, a timeline that agrees with it."""
    problem = _status(status, 200) or _object(data, "id", "status", "timeline", "created_at")
    if problem:
        return problem
    if data["id"] != order_id:
        return f"asked for order {order_id}, got {data['id']!r}"
    if data["status"] not in ORDER_STATUSES:
        return f"unknown order status {data['status']!r}"
    if not isinstance(data["timeline"], list):
        return "timeline is not a list"
    decided = {FINAL_TIMELINE[t.get("type")] for t in data["timeline"] if t.get("type") in FINAL_TIMELINE}
    if data["status"] in ("confirmed", "rejected") and data["status"] not in decided:
        return f"the order is {data['status']} but its timeline does not say so"
    return None


def cancel_problem(status: int, data: Any) -> str | None:
    """Check ``POST /api/orders/{id}/cancel``: 202 and cancelled, or 409 ``cannot_cancel``."""
    if status == 409:
        code = data.get("error", {}).get("code") if isinstance(data, dict) else None
        return None if code == "cannot_cancel" else f"409 with error code {code!r}"
    problem = _status(status, 202) or _object(data, "status")
    if problem:
        return problem
    return None if data["status"] == "cancelled" else f"a cancelled order is {data['status']!r}"


def stock_problem(status: int, data: Any, sku: str) -> str | None:
    """Check ``GET /api/inventory/{sku}`` (staff): its counts agree with each other."""
    problem = _status(status, 200) or _object(data, "sku", "on_hand", "reserved", "available", "version")
    if problem:
        return problem
    if data["sku"] != sku:
        return f"asked for {sku}, got {data['sku']!r}"
    on_hand, reserved, available = data["on_hand"], data["reserved"], data["available"]
    if not all(isinstance(v, int) for v in (on_hand, reserved, available)):
        return "stock counts are not integers"
    if not 0 <= reserved <= on_hand or available != on_hand - reserved:
        return f"{sku}: on_hand {on_hand}, reserved {reserved}, available {available} do not add up"
    return None


def restock_problem(status: int, data: Any, sku: str, before: dict, quantity: int) -> str | None:
    """Check ``POST /api/inventory/{sku}/restock``: 202, and at least ``quantity`` more on hand than before."""
    problem = _status(status, 202) or stock_problem(200, data, sku)
    if problem:
        return problem
    if data["on_hand"] < before["on_hand"] + quantity:
        return f"{sku}: on_hand {data['on_hand']} after adding {quantity} to {before['on_hand']}"
    return None


def flash_sale_sku(chosen: str, products: list[dict]) -> str:
    """Return the SKU of the flash sale: ``chosen``, else ``FLASH_SKU`` if the catalog has it, else its first product.

    The flash-sale crowd buys it and the restocker leaves it alone, so both
    must call this with the same catalog to agree on it.
    """
    if chosen:
        return chosen
    skus = [p["sku"] for p in products]
    return FLASH_SKU if FLASH_SKU in skus else (skus[0] if skus else "")


def final_latency(data: dict) -> tuple[str, float] | None:
    """Return (final status, seconds from placing to the decision) of a decided order, or None if pending.

    Both times are the server's: the order's ``created_at`` (written as the web
    accepted it) and the ``at`` of its first final timeline entry (written by
    whoever decided it), so the client's polling interval does not blur them.
    """
    if data.get("status") not in FINAL_STATUSES:
        return None
    finals = [t for t in data.get("timeline", []) if t.get("type") in FINAL_TIMELINE]
    if not finals:
        return None
    first = min(finals, key=lambda t: t["at"])
    return FINAL_TIMELINE[first["type"]], _seconds(data["created_at"], first["at"])


def _seconds(start: str, end: str) -> float:
    return max(0.0, (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds())


# The verdict of a run -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """The aggregated counts of a run, from Locust's ``<prefix>_stats.csv``."""

    requests: int
    failures: int
    by_name: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # (type, name): (requests, fails)

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def read_totals(stats_csv: Path) -> Totals:
    """Read the request and failure counts from Locust's stats CSV."""
    requests = failures = 0
    by_name: dict[tuple[str, str], tuple[int, int]] = {}
    with open(stats_csv, newline="") as f:
        for row in csv.DictReader(f):
            counts = int(row["Request Count"]), int(row["Failure Count"])
            if row["Name"] == "Aggregated":
                requests, failures = counts
            else:
                by_name[(row["Type"], row["Name"])] = counts
    return Totals(requests, failures, by_name)


def verify_invariants(env: dict[str, str], settle_seconds: float) -> tuple[bool, str]:
    """Run ``manage.py verify_invariants`` until it passes or ``settle_seconds`` run out.

    It runs with zero tolerance (``ORDER_PENDING_ALERT_SECONDS=0``,
    ``OUTBOX_UNPUBLISHED_ALERT_SECONDS=0``): after a run, every order must be
    final and every event published, not merely "not late". Orders placed in
    the last moments of the run get ``settle_seconds`` to be decided.
    """
    strict = {**env, "ORDER_PENDING_ALERT_SECONDS": "0", "OUTBOX_UNPUBLISHED_ALERT_SECONDS": "0"}
    deadline = time.monotonic() + settle_seconds
    while True:
        done = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), "verify_invariants"],
            env=strict,
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
        )
        if done.returncode == 0 or time.monotonic() > deadline:
            return done.returncode == 0, (done.stdout + done.stderr).strip()
        time.sleep(1)


def verdict_problems(totals: Totals, max_error_ratio: float, invariants_ok: bool, locust_code: int = 0) -> list[str]:
    """Return what makes the run fail: Locust crashed, too many failed requests, no requests, broken invariants.

    Locust exits 0, or 1 when a request failed (its ``--exit-code-on-error``),
    which the error budget judges; any other code is a crash (2: an unhandled
    exception in a user, negative: killed by a signal), whatever the CSV says.
    """
    problems = []
    if locust_code not in (0, 1):
        problems.append(
            f"Locust crashed (exit code {locust_code}): its output above says why; the figures may be partial"
        )
    if not totals.requests:
        problems.append("no request was made: is the host right?")
    elif totals.error_ratio > max_error_ratio:
        problems.append(
            f"{totals.failures} of {totals.requests} requests failed ({totals.error_ratio:.2%}, "
            f"more than the {max_error_ratio:.2%} allowed)"
        )
    if not invariants_ok:
        problems.append(
            "verify_invariants did not pass (its output is above): oversold stock, orders lost or still "
            "pending, a stuck outbox, or no database to check"
        )
    return problems
