"""Text the database cannot store, sent to every endpoint and form: given a catalog, then a 4xx and nothing written.

A NUL character and a lone surrogate (``"\\ud800"`` in JSON, or the raw bytes
``\\xed\\xa0\\x80`` that ``json.loads`` lets through) reached PostgreSQL and
failed there with a 500; ``web.text`` refuses them first.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.tokens import token_issue
from events.models import StoredEvent
from inventory.models import StockItem
from shop.forms import CheckoutForm
from shop.models import Order, StockLevel
from staff.forms import EventFilterForm, RestockForm
from web.text import unstorable, unstorable_paths, validate_email_address

pytestmark = pytest.mark.django_db

LINES = [{"sku": "MUG-1", "quantity": 1}]


@pytest.fixture
def catalog(make_product) -> None:
    make_product("MUG-1", stock=5)


@pytest.fixture
def staff_token(db) -> dict[str, str]:
    get_user_model().objects.create_user("boss", is_staff=True)
    return {"Authorization": f"Bearer {token_issue(username='boss')}"}


def written() -> tuple[int, int, list]:
    """Return the orders, the stored events and the stock, which a refused request must leave alone."""
    return Order.objects.count(), StoredEvent.objects.count(), list(StockItem.objects.values_list("on_hand"))


def refused(response, status: int = 400) -> dict:
    """Assert ``response`` is the JSON error of DESIGN §7 with ``status``; return its ``error`` object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


# JSON text as a client sends it: json.dumps writes a lone surrogate as the escape \ud800.
ORDER_BODIES = {
    "surrogate escape in the e-mail's domain": (
        json.dumps({"email": "rt@\ud800.example.com", "lines": LINES}),
        "email",
    ),
    "surrogate escape in the e-mail's local part": (
        json.dumps({"email": "r\udfffx@example.com", "lines": LINES}),
        "email",
    ),
    "raw surrogate bytes in the e-mail": (
        b'{"email": "rt@\xed\xa0\x80.example.com", "lines": [{"sku": "MUG-1", "quantity": 1}]}',
        "email",
    ),
    "NUL in the e-mail": (json.dumps({"email": "rt\x00@example.com", "lines": LINES}), "email"),
    "surrogate in a SKU": (
        json.dumps({"email": "rt@example.com", "lines": [{"sku": "\ud800", "quantity": 1}]}),
        "lines[0].sku",
    ),
    "surrogate in an unknown key": (json.dumps({"email": "rt@example.com", "lines": LINES, "\ud800": 1}), "body"),
    "NUL in a nested value": (
        json.dumps({"email": "rt@example.com", "lines": [{"sku": "MUG-1", "quantity": ["\x00"]}]}),
        "lines[0].quantity[0]",
    ),
}


@pytest.mark.parametrize(("body", "field"), ORDER_BODIES.values(), ids=ORDER_BODIES.keys())
def test_an_order_with_unstorable_text_is_refused_with_its_field_and_writes_nothing(client, catalog, body, field):
    before = written()

    err = refused(client.post("/api/orders", data=body, content_type="application/json"))

    assert err["code"] == "invalid_text" and field in err["fields"], err
    assert written() == before


def test_a_restock_with_unstorable_text_is_refused_and_writes_nothing(client, catalog, staff_token):
    before = written()

    body = json.dumps({"quantity": 1, "note": "\ud800"})
    err = refused(client.post("/api/inventory/MUG-1/restock", body, "application/json", headers=staff_token))

    assert err["fields"] == {"note": "must not contain NUL characters or lone surrogates"}
    assert written() == before


@pytest.mark.parametrize("param", ["q", "category"])
def test_a_catalog_search_with_a_nul_is_a_400_naming_it(client, catalog, param):
    err = refused(client.get("/api/products", {param: "mug\x00"}))

    assert list(err["fields"]) == [param]


def test_surrogate_bytes_in_a_query_string_are_decoded_as_replacement_characters(client, catalog):
    response = client.get("/api/products?q=%ED%A0%80")

    assert response.status_code == 200 and response.json()["items"] == []


def test_an_event_chain_path_with_a_nul_is_a_404(client):
    get_user_model().objects.create_user("boss", is_staff=True)
    client.force_login(get_user_model().objects.get(username="boss"))

    assert client.get("/staff/events/chain/a%00b/").status_code == 404


def test_a_checkout_with_a_control_character_in_the_email_places_no_order(client, catalog):
    now = timezone.now()  # the shop's read model of stock, which the cart consults
    StockLevel.objects.create(
        sku="MUG-1", on_hand=5, reserved=0, available=5, version=1, changed_at=now, updated_at=now
    )
    client.post("/products/MUG-1/", {"quantity": 1})
    before = written()

    response = client.post("/checkout/", {"email": '"rt\x01x"@example.com', "token": str(uuid.uuid4())})

    assert response.status_code == 400
    assert "control characters" in response.content.decode()
    assert written() == before


CONTROL = ['"rt\x01x"@example.com', '"a\x7fb"@example.com', "rt@exam\x0bple.com", '"rt\x1f"@example.com']


@pytest.mark.parametrize("email", CONTROL)
def test_an_api_order_with_a_control_character_in_the_email_is_refused(client, catalog, email):
    before = written()

    body = json.dumps({"email": email, "lines": LINES})
    err = refused(client.post("/api/orders", body, "application/json"), 422)

    assert list(err["fields"]) == ["email"]
    assert written() == before


def test_an_address_with_an_ordinary_quoted_local_part_is_still_accepted():
    validate_email_address('"ann#smith"@example.org')
    validate_email_address("zoe@exämple.org")


FORMS = [
    (CheckoutForm, {"email": "rt@\ud800.example.com", "token": str(uuid.uuid4())}, "email"),
    (EventFilterForm, {"type": "\ud800"}, "type"),
    (EventFilterForm, {"correlation": "a\x00"}, "correlation"),
    (RestockForm, {"quantity": "\ud8001"}, "quantity"),
]


@pytest.mark.parametrize(("form_class", "data", "field"), FORMS, ids=lambda v: getattr(v, "__name__", None))
def test_every_form_refuses_unstorable_text(form_class, data, field):
    form = form_class(data)

    assert not form.is_valid() and field in form.errors


@pytest.mark.parametrize(
    ("text", "bad"),
    [("", False), ("plain", False), ("zoë 😀", False), ("\x00", True), ("a\ud800", True), ("\udc00b", True)],
)
def test_unstorable_text_is_a_nul_or_a_lone_surrogate(text, bad):
    assert unstorable(text) is bad


def test_unstorable_paths_name_each_field():
    body = {"email": "\x00", "lines": [{"sku": "ok"}, {"sku": "\ud800"}], "ok": ["fine", 1, None]}

    assert list(unstorable_paths(body)) == ["email", "lines[1].sku"]
