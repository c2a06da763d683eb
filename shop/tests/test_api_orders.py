"""The order API (DESIGN §7): given a catalog, when a client posts or reads orders, then answers, rows and events."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from events.models import StoredEvent, Unpublished
from shop.models import IdempotencyKey, Order, OrderLine

pytestmark = pytest.mark.django_db

VALID = {"email": "ann@example.org", "lines": [{"sku": "MUG-1", "quantity": 2}, {"sku": "TEA-1", "quantity": 1}]}


@pytest.fixture
def catalog(make_product) -> None:
    make_product("MUG-1", stock=0, price="12.50")
    make_product("TEA-1", stock=0, price="3.20")


def post(client, body: Any, **headers: str):
    """POST a JSON-encoded body to /api/orders."""
    return client.post("/api/orders", data=json.dumps(body), content_type="application/json", headers=headers)


def written() -> dict[str, int]:
    """Return how many rows an order request could write, per table."""
    return {
        "orders": Order.objects.count(),
        "lines": OrderLine.objects.count(),
        "keys": IdempotencyKey.objects.count(),
        "events": StoredEvent.objects.count(),
    }


def error(response, status: int) -> dict:
    """Assert ``response`` is the JSON error of DESIGN §7 with ``status``; return its ``error`` object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    err = body["error"]
    assert isinstance(err["code"], str) and err["code"] and isinstance(err["message"], str) and err["message"]
    assert isinstance(err["fields"], dict)
    return err


def with_line(**changes: Any) -> dict:
    """Return the valid body with its first line changed (a value of ... removes the key)."""
    line = {**VALID["lines"][0], **changes}
    return {**VALID, "lines": [{k: v for k, v in line.items() if v is not ...}, *VALID["lines"][1:]]}


def without(field: str) -> dict:
    """Return the valid body without ``field``."""
    return {k: v for k, v in VALID.items() if k != field}


BAD_BODIES = {
    "unknown sku": (with_line(sku="NOPE-1"), "lines[0].sku"),
    "quantity 0": (with_line(quantity=0), "lines[0].quantity"),
    "quantity -1": (with_line(quantity=-1), "lines[0].quantity"),
    "quantity 1.5": (with_line(quantity=1.5), "lines[0].quantity"),
    "quantity 2.0": (with_line(quantity=2.0), "lines[0].quantity"),
    "quantity '3'": (with_line(quantity="3"), "lines[0].quantity"),
    "quantity 10**12": (with_line(quantity=10**12), "lines[0].quantity"),
    "quantity over the maximum": (with_line(quantity=1001), "lines[0].quantity"),
    "quantity null": (with_line(quantity=None), "lines[0].quantity"),
    "quantity true": (with_line(quantity=True), "lines[0].quantity"),
    "quantity missing": (with_line(quantity=...), "lines[0].quantity"),
    "quantity of a later line": ({**VALID, "lines": [*VALID["lines"], {"sku": "TEA-1"}]}, "lines[2].quantity"),
    "email missing": (without("email"), "email"),
    "email invalid": ({**VALID, "email": "not-an-email"}, "email"),
    "email a number": ({**VALID, "email": 42}, "email"),
    "email a list": ({**VALID, "email": ["ann@example.org"]}, "email"),
    "email null": ({**VALID, "email": None}, "email"),
    "email too long": ({**VALID, "email": "a" * 250 + "@example.org"}, "email"),
    "lines missing": (without("lines"), "lines"),
    "lines a string": ({**VALID, "lines": "MUG-1"}, "lines"),
    "lines an object": ({**VALID, "lines": {"sku": "MUG-1", "quantity": 1}}, "lines"),
    "lines empty": ({**VALID, "lines": []}, "lines"),
    "5000 lines": ({**VALID, "lines": [{"sku": "MUG-1", "quantity": 1}] * 5000}, "lines"),
    "line a string": ({**VALID, "lines": ["MUG-1"]}, "lines[0]"),
    "line null": ({**VALID, "lines": [None]}, "lines[0]"),
    "sku with a dot": (with_line(sku="a.b"), "lines[0].sku"),
    "sku with a space": (with_line(sku="a b"), "lines[0].sku"),
    "sku empty": (with_line(sku=""), "lines[0].sku"),
    "sku with a trailing newline": (with_line(sku="MUG-1\n"), "lines[0].sku"),
    "sku a subject wildcard": (with_line(sku=">"), "lines[0].sku"),
    "sku too long": (with_line(sku="A" * 65), "lines[0].sku"),
    "sku a number": (with_line(sku=1), "lines[0].sku"),
    "sku missing": (with_line(sku=...), "lines[0].sku"),
    "price in the body": ({**VALID, "price": "0.01"}, "price"),
    "total in the body": ({**VALID, "total": "0.01"}, "total"),
    "price in a line": (with_line(price="0.01"), "lines[0].price"),
    "unit_price in a line": (with_line(unit_price="0.01"), "lines[0].unit_price"),
}


@pytest.mark.parametrize(("body", "field"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_an_invalid_order_is_refused_with_the_field_and_writes_nothing(client, catalog, body, field):
    before = written()

    err = error(post(client, body), 422)

    assert field in err["fields"]
    assert written() == before


BAD_REQUESTS = {
    "not JSON": ("{email: ann}", "application/json", 400),
    "empty body": ("", "application/json", 400),
    "a JSON array": (json.dumps([VALID]), "application/json", 400),
    "a JSON string": (json.dumps("order"), "application/json", 400),
    "JSON null": ("null", "application/json", 400),
    "nested past the parser's stack": ("[" * 100_000, "application/json", 400),
    "an integer past int()'s digit limit": ('{"lines": [{"quantity": ' + "9" * 5000 + "}]}", "application/json", 400),
    "not UTF-8": (b'{"email": "\xff\xfe"}', "application/json", 400),
    "NaN quantity": (json.dumps(with_line(quantity=float("nan"))), "application/json", 422),
    "over the size limit": (json.dumps({**VALID, "pad": "x" * 300_000}), "application/json", 413),
    "text/plain": (json.dumps(VALID), "text/plain", 415),
    "form-encoded": ("email=ann%40example.org", "application/x-www-form-urlencoded", 415),
}


@pytest.mark.parametrize(("data", "content_type", "status"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_malformed_request_is_refused_as_json_and_writes_nothing(client, catalog, data, content_type, status):
    before = written()

    error(client.post("/api/orders", data=data, content_type=content_type), status)

    assert written() == before


def padded(size: int) -> str:
    """Return the valid body with an extra field ``pad`` that makes it ``size`` bytes long."""
    body = json.dumps({**VALID, "pad": ""})
    return body.replace('"pad": ""', '"pad": "' + "x" * (size - len(body)) + '"')


def test_the_size_limit_is_the_upload_setting(client, catalog):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    error(client.post("/api/orders", data=padded(limit + 1), content_type="application/json"), 413)
    # At the limit, the body is read and parsed: refused for its unknown field, not for its size.
    err = error(client.post("/api/orders", data=padded(limit), content_type="application/json"), 422)
    assert "pad" in err["fields"]


def test_a_multipart_form_is_refused(client, catalog):
    before = written()

    error(client.post("/api/orders", data={"email": "ann@example.org"}), 415)

    assert written() == before


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_orders_only_accepts_post(client, method):
    response = getattr(client, method)("/api/orders")

    assert error(response, 405)["code"] == "method_not_allowed"
    assert response["Allow"] == "POST"


def test_the_dearest_possible_order_has_an_exact_total(client, make_product):
    make_product("YACHT-1", stock=0, price="99999999.99")
    lines = [{"sku": "YACHT-1", "quantity": 1000}] * 100  # the most lines and units an order may have

    response = post(client, {"email": "ann@example.org", "lines": lines})

    assert response.status_code == 202, response.content
    assert response.json()["total"] == "9999999999000.00"


def test_a_valid_order_is_accepted_at_catalog_prices_with_one_event_in_its_transaction(client, catalog):
    with CaptureQueriesContext(connection) as ctx:
        response = post(client, VALID)

    assert response.status_code == 202, response.content
    body = response.json()
    order = Order.objects.get()
    assert body["id"] == str(order.id) and body["status"] == "pending"
    assert body["total"] == "28.20" and order.total == Decimal("28.20")
    assert [(ln["sku"], ln["quantity"], ln["unit_price"]) for ln in body["lines"]] == [
        ("MUG-1", 2, "12.50"),
        ("TEA-1", 1, "3.20"),
    ]
    assert body["status_url"] == f"http://testserver/api/orders/{order.id}"
    assert response["Location"] == f"/api/orders/{order.id}"
    event = StoredEvent.objects.get(type="OrderPlaced")
    assert event.aggregate_id == str(order.id) and Unpublished.objects.filter(event_id=event.event_id).exists()
    assert json.loads(bytes(event.payload))["data"]["lines"] == [
        {"sku": "MUG-1", "quantity": 2},
        {"sku": "TEA-1", "quantity": 1},
    ]
    # The order, its lines, its timeline entry and its event are written by one statement: all or nothing.
    writes = [q["sql"].replace('"', "") for q in ctx.captured_queries if "INSERT INTO" in q["sql"]]
    assert len(writes) == 1
    assert all(f"INSERT INTO {table} " in writes[0] for table in ("shop_order", "shop_orderline", "events_storedevent"))


def test_the_order_status_url_answers_the_order(client, catalog):
    placed = post(client, VALID).json()

    response = client.get(placed["status_url"])

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["total"]) == (placed["id"], "pending", "28.20")
    assert body["lines"] == placed["lines"] and body["created_at"]
    assert [(t["type"], bool(t["at"])) for t in body["timeline"]] == [("OrderPlaced", True)]


# Idempotency-Key


def test_the_same_key_and_body_return_the_same_order(client, catalog):
    first = post(client, VALID, **{"Idempotency-Key": "k-1"})
    second = post(client, VALID, **{"Idempotency-Key": "k-1"})

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] == second.json()["id"]
    assert Order.objects.count() == 1 and IdempotencyKey.objects.count() == 1
    assert StoredEvent.objects.filter(type="OrderPlaced").count() == 1


def test_other_keys_place_other_orders(client, catalog):
    first = post(client, VALID, **{"Idempotency-Key": "k-1"})
    second = post(client, VALID, **{"Idempotency-Key": "k-2"})
    third = post(client, VALID)

    assert len({first.json()["id"], second.json()["id"], third.json()["id"]}) == 3
    assert StoredEvent.objects.filter(type="OrderPlaced").count() == 3


@pytest.mark.parametrize(
    "other",
    [with_line(quantity=3), {**VALID, "email": "bo@example.org"}, {**VALID, "lines": VALID["lines"][:1]}],
    ids=["other quantity", "other email", "fewer lines"],
)
def test_the_same_key_with_another_body_is_a_conflict_and_writes_nothing(client, catalog, other):
    post(client, VALID, **{"Idempotency-Key": "k-1"})
    before = written()

    err = error(post(client, other, **{"Idempotency-Key": "k-1"}), 409)

    assert err["code"] == "idempotency_conflict"
    assert written() == before


@pytest.mark.parametrize("key", ["k" * 201, "", "bell\x07", "tab\tkey"], ids=["201 chars", "empty", "bell", "tab"])
def test_an_invalid_key_is_refused_and_writes_nothing(client, catalog, key):
    before = written()

    err = error(post(client, VALID, **{"Idempotency-Key": key}), 400)

    assert "Idempotency-Key" in err["fields"]
    assert written() == before


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_place_one_order(catalog):
    start = threading.Barrier(8)

    def attempt(_: int):
        start.wait()
        try:
            return post(Client(), VALID, **{"Idempotency-Key": "k-race"})
        finally:
            connection.close()  # each thread borrowed its own connection

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(attempt, range(8)))

    assert [r.status_code for r in responses] == [202] * 8, [r.content for r in responses if r.status_code != 202]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Order.objects.count() == 1 and StoredEvent.objects.filter(type="OrderPlaced").count() == 1


def test_a_key_of_200_chars_is_accepted(client, catalog):
    response = post(client, VALID, **{"Idempotency-Key": "k" * 200})

    assert response.status_code == 202, response.content
    assert IdempotencyKey.objects.get().key == "k" * 200


def test_a_refused_request_does_not_use_up_its_key(client, catalog):
    error(post(client, with_line(sku="NOPE-1"), **{"Idempotency-Key": "k-1"}), 422)

    response = post(client, VALID, **{"Idempotency-Key": "k-1"})

    assert response.status_code == 202, response.content


# Reading and cancelling


def test_an_unknown_order_is_a_json_404(client):
    assert error(client.get(f"/api/orders/{uuid.uuid4()}"), 404)["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/orders/not-a-uuid", "/api/orders/123", "/api/orders/not-a-uuid/cancel"])
def test_a_path_that_is_not_an_order_is_a_json_404(client, path):
    assert error(client.get(path), 404)["code"] == "not_found"


def test_cancelling_an_unknown_order_is_a_json_404_and_writes_nothing(client):
    before = written()

    error(client.post(f"/api/orders/{uuid.uuid4()}/cancel"), 404)

    assert written() == before


@pytest.mark.parametrize("status", [Order.Status.PENDING, Order.Status.CONFIRMED])
def test_a_pending_or_confirmed_order_is_cancelled_with_its_event(client, catalog, status):
    order_id = post(client, VALID).json()["id"]
    Order.objects.filter(id=order_id).update(status=status)

    response = client.post(f"/api/orders/{order_id}/cancel")

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "cancelled"
    assert Order.objects.get(id=order_id).status == Order.Status.CANCELLED
    assert list(StoredEvent.objects.filter(type="OrderCancelled").values_list("aggregate_id", flat=True)) == [order_id]


@pytest.mark.parametrize("status", [Order.Status.CANCELLED, Order.Status.REJECTED])
def test_a_final_order_cannot_be_cancelled(client, catalog, status):
    order_id = post(client, VALID).json()["id"]
    Order.objects.filter(id=order_id).update(status=status)
    before = written()

    err = error(client.post(f"/api/orders/{order_id}/cancel"), 409)

    assert err["code"] == "cannot_cancel"
    assert Order.objects.get(id=order_id).status == status
    assert written() == before


def test_cancelling_twice_cancels_once(client, catalog):
    order_id = post(client, VALID).json()["id"]

    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 202
    error(client.post(f"/api/orders/{order_id}/cancel"), 409)

    assert StoredEvent.objects.filter(type="OrderCancelled").count() == 1


def test_cancel_only_accepts_post(client, catalog):
    order_id = post(client, VALID).json()["id"]

    error(client.get(f"/api/orders/{order_id}/cancel"), 405)

    assert Order.objects.get(id=order_id).status == Order.Status.PENDING


def test_an_order_cannot_be_changed_through_its_status_url(client, catalog):
    order_id = post(client, VALID).json()["id"]

    error(client.post(f"/api/orders/{order_id}", data="{}", content_type="application/json"), 405)
