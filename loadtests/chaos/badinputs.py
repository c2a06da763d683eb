"""Bad inputs sent to the live API: each must get a 4xx (DESIGN §7: never a 500 for bad input).

A small catalogue of what a careless client or an attacker sends (the cases
of ``tests/test_bad_text.py`` and the OpenAPI run, on a running devstack):
malformed JSON, wrong types, text PostgreSQL cannot store, out-of-range
numbers, unknown products, forged ids, a reused ``Idempotency-Key``, staff
writes without a token or with a bad body. None of them may create anything:
the orders of the catalogue's e-mail are counted afterwards.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import httpx

EMAIL = "chaos-bad-input@example.org"
JSON = {"Content-Type": "application/json"}


@dataclass
class BadInput:
    """One request that must be refused with a 4xx."""

    name: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    staff: bool = False  # sent with the staff token


def _order(body: object) -> bytes:
    return json.dumps(body).encode()


def _line(sku: str, **line: object) -> dict:
    return {"sku": sku, "quantity": 1, **line}


def catalogue(sku: str) -> list[BadInput]:
    """Return the bad requests, ``sku`` a product of the catalog (so only the bad part is bad)."""
    good = [_line(sku)]
    orders = {
        "not JSON": b"{not json",
        "empty body": b"",
        "a JSON array": b"[]",
        "a JSON string": b'"order"',
        "null": b"null",
        "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
        "invalid UTF-8": b'{"email": "\xff\xfe@example.org", "lines": []}',
        "no e-mail": _order({"lines": good}),
        "no lines": _order({"email": EMAIL}),
        "e-mail a number": _order({"email": 42, "lines": good}),
        "e-mail not an address": _order({"email": "nobody", "lines": good}),
        "e-mail with a control character": _order({"email": "rt\x01x@example.org", "lines": good}),
        "e-mail with a NUL": _order({"email": "rt\x00@example.org", "lines": good}),
        "e-mail with a lone surrogate": _order({"email": "rt@\ud800.example.org", "lines": good}),
        "raw surrogate bytes": b'{"email": "rt@\xed\xa0\x80.example.org", "lines": []}',
        "e-mail of 300 characters": _order({"email": "a" * 288 + "@example.org", "lines": good}),
        "lines an object": _order({"email": EMAIL, "lines": {"sku": sku}}),
        "no line": _order({"email": EMAIL, "lines": []}),
        "a line not an object": _order({"email": EMAIL, "lines": [sku]}),
        "10000 lines": _order({"email": EMAIL, "lines": [_line(sku)] * 10_000}),
        "unknown SKU": _order({"email": EMAIL, "lines": [_line("NO-SUCH-SKU")]}),
        "SKU not a string": _order({"email": EMAIL, "lines": [_line(7)]}),
        "SKU with spaces": _order({"email": EMAIL, "lines": [_line("a b")]}),
        "SKU with a surrogate": _order({"email": EMAIL, "lines": [_line("\udfff")]}),
        "quantity 0": _order({"email": EMAIL, "lines": [_line(sku, quantity=0)]}),
        "quantity -1": _order({"email": EMAIL, "lines": [_line(sku, quantity=-1)]}),
        "quantity a string": _order({"email": EMAIL, "lines": [_line(sku, quantity="2")]}),
        "quantity 1.5": _order({"email": EMAIL, "lines": [_line(sku, quantity=1.5)]}),
        "quantity true": _order({"email": EMAIL, "lines": [_line(sku, quantity=True)]}),
        "quantity 10^30": _order({"email": EMAIL, "lines": [_line(sku, quantity=10**30)]}),
        "a price in the body": _order({"email": EMAIL, "lines": [_line(sku, price="0.01")]}),
        "an unknown field": _order({"email": EMAIL, "lines": good, "total": "0.00"}),
    }
    inputs = [BadInput(f"order: {name}", "POST", "/api/orders", body, JSON) for name, body in orders.items()]
    valid = _order({"email": EMAIL, "lines": good})
    inputs += [
        BadInput("order: text/plain", "POST", "/api/orders", valid, {"Content-Type": "text/plain"}),
        BadInput("order: body over the size limit", "POST", "/api/orders", b" " * 3_000_000 + valid, JSON),
        BadInput(
            "order: Idempotency-Key of 500 characters",
            "POST",
            "/api/orders",
            valid,
            {**JSON, "Idempotency-Key": "k" * 500},
        ),
        BadInput(
            "order: Idempotency-Key with a tab", "POST", "/api/orders", valid, {**JSON, "Idempotency-Key": "a\tb"}
        ),
        BadInput("order: not a UUID", "GET", "/api/orders/not-a-uuid"),
        BadInput("order: an id nobody placed", "GET", f"/api/orders/{uuid.uuid4()}"),
        BadInput("cancel: an id nobody placed", "POST", f"/api/orders/{uuid.uuid4()}/cancel"),
        BadInput("cancel: not a UUID", "POST", "/api/orders/1%27%20OR%201=1/cancel"),
        BadInput("product: unknown SKU", "GET", "/api/products/NO-SUCH-SKU"),
        BadInput("product: surrogate bytes in the SKU", "GET", "/api/products/%ED%A0%80"),
        BadInput("products: page 0", "GET", "/api/products?page=0"),
        BadInput("products: page not a number", "GET", "/api/products?page=x"),
        BadInput("products: NUL in the search", "GET", "/api/products?q=%00"),
        BadInput("no such endpoint", "GET", "/api/no-such-endpoint"),
        BadInput("products: DELETE", "DELETE", "/api/products"),
        BadInput("inventory: no token", "GET", f"/api/inventory/{sku}"),
        BadInput(
            "inventory: a forged token", "GET", f"/api/inventory/{sku}", headers={"Authorization": "Bearer forged"}
        ),
        BadInput("restock: no token", "POST", f"/api/inventory/{sku}/restock", _order({"quantity": 5}), JSON),
    ]
    restocks = {
        "quantity 0": {"quantity": 0},
        "quantity -5": {"quantity": -5},
        "quantity a string": {"quantity": "5"},
        "quantity 10^30": {"quantity": 10**30},
        "no quantity": {},
    }
    path = f"/api/inventory/{sku}/restock"
    inputs += [BadInput(f"restock: {n}", "POST", path, _order(b), JSON, staff=True) for n, b in restocks.items()]
    inputs += [
        BadInput("restock: not JSON", "POST", path, b"{", JSON, staff=True),
        BadInput(
            "restock: unknown SKU",
            "POST",
            "/api/inventory/NO-SUCH-SKU/restock",
            _order({"quantity": 1}),
            JSON,
            staff=True,
        ),
    ]
    return inputs


@dataclass
class BadInputResult:
    """How the API answered the catalogue: 4xx (refused), 5xx, or anything else (accepted: wrong too)."""

    tried: int = 0
    refused: int = 0
    server_errors: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    created: int = 0  # orders of the catalogue's e-mail found afterwards

    @property
    def ok(self) -> bool:
        return self.tried > 0 and self.refused == self.tried and not self.created


def reused_key(client: httpx.Client, sku: str) -> BadInput:
    """Place one good order with a key, then return the same key with another body (409, DESIGN §7)."""
    key = f"chaos-reused-{uuid.uuid4()}"
    first = {"email": "chaos-reused-key@example.org", "lines": [_line(sku)]}
    client.post("/api/orders", json=first, headers={"Idempotency-Key": key}).raise_for_status()
    other = _order({**first, "lines": [_line(sku, quantity=2)]})
    return BadInput(
        "order: a reused Idempotency-Key, another body", "POST", "/api/orders", other, {**JSON, "Idempotency-Key": key}
    )


def send_all(base: str, sku: str, token: str) -> BadInputResult:
    """Send every bad input to the API at ``base``; return how each was answered."""
    result = BadInputResult()
    # Each on a connection of its own: the web server may close a connection after an answer sent before the
    # body was read (a 401 to a staff write), and the next request on it would fail for that, not for itself.
    with httpx.Client(base_url=base, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for bad in [*catalogue(sku), reused_key(client, sku)]:
            headers = {**bad.headers, **({"Authorization": f"Bearer {token}"} if bad.staff else {})}
            try:
                resp = client.request(bad.method, bad.path, content=bad.body, headers=headers)
            except httpx.HTTPError as exc:
                result.tried += 1
                result.server_errors.append(f"{bad.name}: {exc!r}")
                continue
            result.tried += 1
            if 400 <= resp.status_code < 500:
                result.refused += 1
            elif resp.status_code >= 500:
                result.server_errors.append(f"{bad.name}: {resp.status_code}")
            else:
                result.accepted.append(f"{bad.name}: {resp.status_code}")
    return result
