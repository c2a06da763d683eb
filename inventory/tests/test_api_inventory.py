"""The staff inventory API (DESIGN §7): given stock and a caller, when they read or restock, then answers and events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils.crypto import get_random_string

from accounts.tokens import token_issue
from events.models import StoredEvent
from inventory.models import StockItem
from inventory.services import stock_receive

pytestmark = pytest.mark.django_db

STOCK = "/api/inventory/MUG-1"
RESTOCK = "/api/inventory/MUG-1/restock"


@pytest.fixture
def mug(db) -> StockItem:
    """Ten mugs on hand, two of them reserved."""
    stock_receive(sku="MUG-1", quantity=10, create=True)
    StockItem.objects.filter(sku="MUG-1").update(reserved=2)
    return StockItem.objects.get(sku="MUG-1")


def make_user(username: str, *, is_staff: bool = True, is_active: bool = True):
    """Create a user (without a password: tests log in with force_login or a token)."""
    return get_user_model().objects.create_user(username, is_staff=is_staff, is_active=is_active)


def bearer(username: str, **flags: bool) -> dict[str, str]:
    """Create a user and return the Authorization header of a token issued to them."""
    make_user(username, **flags)
    return {"Authorization": f"Bearer {token_issue(username=username)}"}


def restock(client: Client, body: Any, **headers: str):
    """POST a JSON restock of MUG-1."""
    return client.post(RESTOCK, data=json.dumps(body), content_type="application/json", headers=headers)


def error(response, status: int) -> dict:
    """Assert ``response`` is the JSON error of DESIGN §7 with ``status``; return its ``error`` object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    err = response.json()["error"]
    assert isinstance(err["code"], str) and isinstance(err["message"], str) and isinstance(err["fields"], dict)
    return err


def state() -> tuple[tuple[int, int, int], int]:
    """Return MUG-1's (on_hand, reserved, version) and how many events are stored."""
    item = StockItem.objects.get(sku="MUG-1")
    return (item.on_hand, item.reserved, item.version), StoredEvent.objects.count()


def new_event_types(after: int) -> list[str]:
    """Return the types of the events stored after sequence number ``after``, oldest first."""
    return list(StoredEvent.objects.filter(seq__gt=after).order_by("seq").values_list("type", flat=True))


def last_seq() -> int:
    return StoredEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def csrf_client(user) -> tuple[Client, str]:
    """Return a CSRF-enforcing client logged in as ``user``, and the CSRF secret its cookie holds."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    secret = get_random_string(32)
    client.cookies[settings.CSRF_COOKIE_NAME] = secret
    return client, secret


# Reading


def test_staff_read_stock_with_a_token(client, mug):
    response = client.get(STOCK, headers=bearer("admin"))

    assert response.status_code == 200, response.content
    assert response.json() == {"sku": "MUG-1", "on_hand": 10, "reserved": 2, "available": 8, "version": mug.version}


def test_staff_read_stock_with_a_session(client, mug):
    client.force_login(make_user("admin"))

    assert client.get(STOCK).json()["available"] == 8


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer not-a-token"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "Basic YWRtaW46cHc="}, 401),
    ],
    ids=["none", "garbage token", "empty token", "basic auth"],
)
def test_stock_is_refused_without_a_valid_token(client, mug, headers, status):
    make_user("admin")

    assert error(client.get(STOCK, headers=headers), status)["code"] == "unauthenticated"


def test_a_tampered_token_is_refused(client, mug):
    token = bearer("admin")["Authorization"]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")

    error(client.get(STOCK, headers={"Authorization": tampered}), 401)


def test_a_token_of_an_inactive_user_is_refused(client, mug):
    headers = bearer("admin")
    get_user_model().objects.filter(username="admin").update(is_active=False)

    error(client.get(STOCK, headers=headers), 401)


def test_a_token_of_a_customer_is_forbidden(client, mug):
    assert error(client.get(STOCK, headers=bearer("ann", is_staff=False)), 403)["code"] == "forbidden"


def test_a_session_of_a_customer_is_forbidden(client, mug):
    client.force_login(make_user("ann", is_staff=False))

    error(client.get(STOCK), 403)


@pytest.mark.parametrize("path", ["/api/inventory/NOPE-1", "/api/inventory/a.b", "/api/inventory/MUG-1%0A"])
def test_unknown_stock_is_a_json_404_for_staff(client, mug, path):
    assert error(client.get(path, headers=bearer("admin")), 404)["code"] == "not_found"


def test_unknown_stock_is_not_revealed_to_strangers(client, mug):
    error(client.get("/api/inventory/NOPE-1"), 401)


def test_stock_only_answers_get(client, mug):
    error(client.post(STOCK, data="{}", content_type="application/json", headers=bearer("admin")), 405)


# Restocking


def test_staff_restock_with_a_token(client, mug):
    seq = last_seq()

    response = restock(client, {"quantity": 5}, **bearer("admin"))

    assert response.status_code == 202, response.content
    assert response.json() == {
        "sku": "MUG-1",
        "on_hand": 15,
        "reserved": 2,
        "available": 13,
        "version": mug.version + 1,
    }
    assert state()[0] == (15, 2, mug.version + 1)
    assert new_event_types(seq) == ["StockReceived", "StockLevelChanged"]
    received, changed = StoredEvent.objects.filter(seq__gt=seq).order_by("seq")
    assert json.loads(bytes(received.payload))["data"] == {"sku": "MUG-1", "quantity": 5}
    assert json.loads(bytes(changed.payload))["data"]["available"] == 13


BAD_RESTOCKS = {
    "quantity 0": {"quantity": 0},
    "quantity -1": {"quantity": -1},
    "quantity 1.5": {"quantity": 1.5},
    "quantity '3'": {"quantity": "3"},
    "quantity null": {"quantity": None},
    "quantity true": {"quantity": True},
    "quantity 10**12": {"quantity": 10**12},
    "quantity missing": {},
    "unknown field": {"quantity": 3, "sku": "TEA-1"},
}


@pytest.mark.parametrize("body", BAD_RESTOCKS.values(), ids=BAD_RESTOCKS.keys())
def test_a_bad_restock_is_refused_and_changes_nothing(client, mug, body):
    headers = bearer("admin")
    before = state()

    err = error(restock(client, body, **headers), 422)

    assert err["fields"]
    assert state() == before


MALFORMED_RESTOCKS = {
    "not JSON": ("quantity=3", "application/json", 400),
    "array": ("[3]", "application/json", 400),
    "text/plain": ('{"quantity": 3}', "text/plain", 415),
    "deep nesting": ("[" * 100_000, "application/json", 400),
    "over the size limit": ('{"quantity": 3, "pad": "' + "x" * 300_000 + '"}', "application/json", 413),
}


@pytest.mark.parametrize(("data", "content_type", "status"), MALFORMED_RESTOCKS.values(), ids=MALFORMED_RESTOCKS.keys())
def test_a_malformed_restock_is_refused_and_changes_nothing(client, mug, data, content_type, status):
    headers = bearer("admin")
    before = state()

    error(client.post(RESTOCK, data=data, content_type=content_type, headers=headers), status)

    assert state() == before


def test_a_restock_past_the_largest_stock_is_refused(client, mug):
    StockItem.objects.filter(sku="MUG-1").update(on_hand=2**31 - 10)
    headers = bearer("admin")
    before = state()

    err = error(restock(client, {"quantity": 100}, **headers), 422)

    assert "quantity" in err["fields"]
    assert state() == before


def test_restocking_unknown_stock_is_a_json_404_and_writes_nothing(client, mug):
    headers = bearer("admin")
    before = StoredEvent.objects.count()

    response = client.post(
        "/api/inventory/NOPE-1/restock", data='{"quantity": 3}', content_type="application/json", headers=headers
    )

    error(response, 404)
    assert StoredEvent.objects.count() == before and not StockItem.objects.filter(sku="NOPE-1").exists()


@pytest.mark.parametrize(
    ("flags", "status"), [(None, 401), ({"is_staff": False}, 403)], ids=["no token", "customer token"]
)
def test_only_staff_restock(client, mug, flags, status):
    headers = {} if flags is None else bearer("ann", **flags)
    before = state()

    error(restock(client, {"quantity": 5}, **headers), status)

    assert state() == before


def test_restock_only_accepts_post(client, mug):
    error(client.get(RESTOCK, headers=bearer("admin")), 405)


# Sessions and CSRF


def test_a_session_restock_without_a_csrf_token_is_forbidden(mug):
    client, _ = csrf_client(make_user("admin"))
    before = state()

    err = error(restock(client, {"quantity": 5}), 403)

    assert err["code"] == "csrf_failed"
    assert state() == before


def test_a_session_restock_without_a_csrf_cookie_is_forbidden(mug):
    client, secret = csrf_client(make_user("admin"))
    del client.cookies[settings.CSRF_COOKIE_NAME]

    error(restock(client, {"quantity": 5}, **{"X-CSRFToken": secret}), 403)

    assert state()[0][0] == 10


def test_a_session_restock_with_a_csrf_token_is_accepted(mug):
    client, secret = csrf_client(make_user("admin"))

    response = restock(client, {"quantity": 5}, **{"X-CSRFToken": secret})

    assert response.status_code == 202, response.content
    assert state()[0][0] == 15


def test_a_token_restock_needs_no_csrf_token(mug):
    client = Client(enforce_csrf_checks=True)

    assert restock(client, {"quantity": 5}, **bearer("admin")).status_code == 202


def unreadable_form(kind: str) -> str:
    """Return a form body Django refuses to parse: over the size limit, or with too many fields."""
    if kind == "too large":
        return "quantity=" + "3" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return "&".join(f"f{n}=1" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))


@pytest.mark.parametrize(("kind", "status"), [("too large", 413), ("too many fields", 400)])
def test_a_session_form_the_csrf_check_cannot_read_is_a_json_4xx(mug, kind, status):
    client, _ = csrf_client(make_user("admin"))
    before = state()

    error(client.post(RESTOCK, data=unreadable_form(kind), content_type="application/x-www-form-urlencoded"), status)

    assert state() == before
