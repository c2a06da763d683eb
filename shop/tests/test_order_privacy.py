"""Order privacy (shop/owners.py): given an order, whoever placed it and staff see its e-mail, anyone else masked."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tokens import token_issue
from shop.models import StockLevel
from shop.owners import mask_email

pytestmark = pytest.mark.django_db

EMAIL = "rosa.tanaka@example.com"
MASKED = "r***@example.com"
BODY = {"email": EMAIL, "lines": [{"sku": "MUG-1", "quantity": 1}]}


@pytest.fixture
def catalog(make_product) -> None:
    make_product("MUG-1", stock=10)
    now = timezone.now()
    StockLevel.objects.create(
        sku="MUG-1", on_hand=10, reserved=0, available=10, version=1, changed_at=now, updated_at=now
    )


def bearer(username: str, *, is_staff: bool = False) -> dict[str, str]:
    get_user_model().objects.create_user(username, is_staff=is_staff)
    return {"Authorization": f"Bearer {token_issue(username=username)}"}


def place(client: Client, **headers: str) -> dict:
    response = client.post("/api/orders", json.dumps(BODY), "application/json", headers=headers)
    assert response.status_code == 202, response.content
    return response.json()


def checkout(client: Client) -> str:
    """Order one mug through the storefront's pages; return the order's id."""
    client.post("/products/MUG-1/", {"quantity": 1})
    response = client.post("/checkout/", {"email": EMAIL, "token": str(uuid.uuid4())})
    assert response.status_code == 302, response.content
    return re.fullmatch(r"/orders/([0-9a-f-]{36})/", response["Location"]).group(1)


def api_email(client: Client, order_id: str, **headers: str) -> str:
    return client.get(f"/api/orders/{order_id}", headers=headers).json()["email"]


def page_shows(client: Client, order_id: str) -> str:
    page = client.get(f"/orders/{order_id}/").content.decode()
    return EMAIL if EMAIL in page else MASKED if MASKED in page else "neither"


def test_an_api_order_shows_its_email_to_its_placer_once_and_masked_to_anyone_with_the_id(client, catalog):
    order = place(client)

    assert order["email"] == EMAIL  # the answer to the one who just sent it
    assert api_email(Client(), order["id"]) == MASKED
    assert page_shows(Client(), order["id"]) == MASKED
    assert api_email(client, order["id"]) == MASKED  # no session, no token: nothing proves who placed it


def test_the_token_that_placed_an_order_sees_its_email_and_another_token_does_not(client, catalog):
    mine, theirs = bearer("rosa"), bearer("mallory")
    order = place(client, **mine)

    assert api_email(Client(), order["id"], **mine) == EMAIL
    assert api_email(Client(), order["id"], **theirs) == MASKED


def test_the_browser_that_checked_out_sees_the_email_and_another_browser_does_not(client, catalog):
    order_id = checkout(client)

    assert page_shows(client, order_id) == EMAIL
    assert api_email(client, order_id) == EMAIL
    assert page_shows(Client(), order_id) == MASKED
    assert api_email(Client(), order_id) == MASKED


def test_staff_see_every_email_by_token_or_session(client, catalog):
    order = place(client)
    staff = Client()
    staff.force_login(get_user_model().objects.create_user("boss", is_staff=True))

    assert api_email(Client(), order["id"], **bearer("ops", is_staff=True)) == EMAIL
    assert api_email(staff, order["id"]) == EMAIL and page_shows(staff, order["id"]) == EMAIL


def test_reading_an_order_without_cookie_or_token_costs_no_query_for_privacy(client, catalog):
    order = place(client)
    reader = Client()

    with CaptureQueriesContext(connection) as queries:
        assert reader.get(f"/api/orders/{order['id']}").json()["status"] == "pending"

    assert not any("session" in q["sql"] or "auth_user" in q["sql"] for q in queries.captured_queries)


def test_anonymous_placement_writes_no_owner(client, catalog):
    with CaptureQueriesContext(connection) as queries:
        place(client)

    assert not any("placed_by_user_id" in q["sql"] for q in queries.captured_queries)


@pytest.mark.parametrize(
    ("email", "masked"),
    [(EMAIL, MASKED), ("a@b.org", "a***@b.org"), ('"x@y"@example.org', '"***@example.org'), ("nope", "***")],
)
def test_a_masked_email_keeps_its_first_character_and_its_domain(email, masked):
    assert mask_email(email) == masked
