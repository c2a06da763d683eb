"""Staff pages: given stock and events, when staff (or someone else) asks, then what is shown or refused."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from events.base import Line
from events.models import StoredEvent
from inventory.models import StockItem
from shop.services import order_place

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("clerk", password="pw-clerk-1", is_staff=True)
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["/staff/", "/staff/events/", "/staff/events/chain/x/"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/staff/login/?next={path}"


def test_a_customer_account_is_not_staff(client):
    client.force_login(get_user_model().objects.create_user("ann", password="pw-ann-12"))
    assert client.get("/staff/")["Location"].startswith("/staff/login/")
    assert client.post("/staff/stock/A-1/restock/", {"quantity": "5"}).status_code == 302


def test_staff_log_in_with_the_login_form(client):
    get_user_model().objects.create_user("clerk", password="pw-clerk-1", is_staff=True)
    bad = client.post("/staff/login/", {"username": "clerk", "password": "wrong"})
    assert bad.status_code == 200 and "errorlist" in bad.content.decode()
    good = client.post("/staff/login/", {"username": "clerk", "password": "pw-clerk-1", "next": "/staff/events/"})
    assert good["Location"] == "/staff/events/"


def test_inventory_lists_stock_and_restock_records_the_events(staff_client, make_product):
    make_product("A-1", stock=4)
    html = staff_client.get("/staff/").content.decode()
    assert 'data-row-sku="A-1"' in html and "Product A-1" in html
    response = staff_client.post("/staff/stock/A-1/restock/", {"quantity": "6"}, follow=True)
    assert "Received 6 × A-1: 10 on hand." in response.content.decode()
    assert StockItem.objects.get(sku="A-1").on_hand == 10
    assert StoredEvent.objects.filter(type="StockReceived", aggregate_id="A-1").count() == 2


@pytest.mark.parametrize("quantity", ["0", "-3", "x", "", "1000001", "1e3"])
def test_a_bad_restock_is_refused_with_a_message_and_changes_nothing(staff_client, make_product, quantity):
    make_product("A-1", stock=4)
    response = staff_client.post("/staff/stock/A-1/restock/", {"quantity": quantity}, follow=True)
    assert "Restock A-1:" in response.content.decode()
    assert StockItem.objects.get(sku="A-1").on_hand == 4


def test_restock_of_an_unknown_or_malformed_sku_is_a_404(staff_client):
    assert staff_client.post("/staff/stock/NOPE/restock/", {"quantity": "1"}).status_code == 404
    assert staff_client.post("/staff/stock/bad%20sku/restock/", {"quantity": "1"}).status_code == 404
    assert staff_client.get("/staff/stock/NOPE/restock/").status_code == 405


def test_restock_past_the_integer_range_is_refused(staff_client, make_product):
    make_product("A-1", stock=2**31 - 10)
    response = staff_client.post("/staff/stock/A-1/restock/", {"quantity": "100"}, follow=True)
    assert "would be too large" in response.content.decode()


def test_event_explorer_lists_and_filters_and_shows_an_orders_chain(staff_client, make_product):
    make_product("A-1", stock=4)
    order = order_place(email="ann@example.org", lines=[Line("A-1", 1)])
    html = staff_client.get("/staff/events/").content.decode()
    assert "OrderPlaced" in html and "StockReceived" in html
    only = staff_client.get("/staff/events/?type=OrderPlaced").content.decode()
    assert "StockReceived</td>" not in only
    assert staff_client.get(f"/staff/events/?correlation={order.id}").status_code == 200
    chain = staff_client.get(f"/staff/events/chain/{order.id}/").content.decode()
    assert "OrderPlaced" in chain and 'data-depth="0"' in chain
    assert staff_client.get("/staff/events/chain/nothing-here/").status_code == 404
    for query in ["?page=0", "?page=x", "?type=" + "x" * 200, "?correlation=%00"]:
        assert staff_client.get("/staff/events/" + query).status_code == 200


def test_the_chain_follows_causation_with_timings():
    from datetime import timedelta

    from django.utils import timezone

    from staff.selectors import event_chain

    now = timezone.now()

    def stored(event_id: str, type_: str, cause: str | None, ms: int) -> None:
        StoredEvent.objects.create(
            event_id=event_id,
            type=type_,
            version=1,
            subject="s",
            aggregate_id="o",
            correlation_id="o",
            causation_id=cause,
            occurred_at=now + timedelta(milliseconds=ms),
            payload=b"{}",
        )

    a, b, c = (
        "00000000-0000-0000-0000-00000000000a",
        "00000000-0000-0000-0000-00000000000b",
        "00000000-0000-0000-0000-00000000000c",
    )  # noqa: E501
    stored(a, "OrderPlaced", None, 0)
    stored(b, "StockReserved", a, 20)
    stored(c, "OrderConfirmed", b, 50)
    nodes = event_chain(correlation_id="o")
    assert [(n.event.type, n.depth, n.ms_since_first, n.ms_since_cause) for n in nodes] == [
        ("OrderPlaced", 0, 0, None),
        ("StockReserved", 1, 20, 20),
        ("OrderConfirmed", 2, 50, 30),
    ]
