"""Storefront pages: given a catalog and its projected stock, when a shopper browses and buys, then what they see."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from events.models import StoredEvent
from shop import forms
from shop.models import Category, Order, Product, StockLevel

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def product(sku: str, name: str = "", price: str = "10.00", category: str = "coffee", available: int | None = 10):
    cat, _ = Category.objects.get_or_create(slug=category, defaults={"name": category.title()})
    made = Product.objects.create(
        sku=sku,
        name=name or f"Product {sku}",
        price=Decimal(price),
        category=cat,
        image_url=f"/static/shop/products/{category}.svg",
    )
    if available is not None:
        now = timezone.now()
        StockLevel.objects.create(
            sku=sku, on_hand=available, reserved=0, available=available, version=1, changed_at=now, updated_at=now
        )
    return made


def test_catalog_shows_products_with_their_stock_badges(client):
    product("COF-1", "Kenya Nyeri", available=50)
    product("COF-2", "Brazil Cerrado", available=3)
    product("COF-3", "Decaf Peru", available=0)
    html = client.get("/").content.decode()
    assert "Kenya Nyeri" in html and "Brazil Cerrado" in html
    assert re.search(r'class="badge in_stock" data-sku="COF-1" data-version="1"', html)
    assert re.search(r'class="badge low_stock" data-sku="COF-2"', html)
    assert re.search(r'class="badge sold_out" data-sku="COF-3"[^>]*>Sold out', html)


def test_catalog_filters_by_category_and_search_and_paginates(client):
    for i in range(25):
        product(f"TEA-{i:02d}", f"Green tea {i:02d}", category="tea")
    product("MUG-1", "Stoneware Mug", category="mugs")
    page1 = client.get("/?category=tea").content.decode()
    assert "Green tea 00" in page1 and "Stoneware Mug" not in page1 and "Page 1 of 2" in page1
    page2 = client.get("/?category=tea&page=2").content.decode()
    assert "Green tea 24" in page2 and "Green tea 00" not in page2
    found = client.get("/?q=stoneware").content.decode()
    assert "Stoneware Mug" in found and "Green tea" not in found
    assert "Nothing matches" in client.get("/?q=zzz").content.decode()


@pytest.mark.parametrize(
    "query", ["?page=abc", "?page=0", "?page=%C2%B2", "?page=999999999", "?q=%00", "?category=%00x"]
)
def test_catalog_survives_odd_parameters(client, query):
    product("COF-1")
    assert client.get("/" + query).status_code == 200


def test_an_empty_catalog_speaks_to_shoppers_not_developers(client):
    html = client.get("/").content.decode()
    assert "Nothing is on sale yet" in html and "manage.py" not in html


def test_a_page_past_the_last_is_a_404_that_says_how_many_there_are(client):
    for i in range(25):
        product(f"TEA-{i:02d}", category="tea")
    response = client.get("/?page=99")
    html = response.content.decode()
    assert response.status_code == 404
    assert "There is no page 99: there are 2 pages." in html and 'href="?page=2"' in html
    assert "Nothing is on sale" not in html
    one = client.get("/?page=3&category=tea").content.decode()
    assert "There is no page 3 of these results: there are 2 pages." in one


@pytest.mark.parametrize("count", [5, 20])
def test_a_catalog_page_makes_a_bounded_number_of_queries(client, django_assert_max_num_queries, count):
    for i in range(count):
        product(f"COF-{i:02d}")
    client.get("/")  # a session exists from here on, as for a returning shopper
    with django_assert_max_num_queries(5):
        response = client.get("/")
    assert response.content.decode().count('class="card"') == count


def test_product_page_shows_the_exact_number_available(client):
    product("COF-1", "Kenya Nyeri", available=7)
    response = client.get("/products/COF-1/")
    assert response.status_code == 200
    assert re.search(
        r'data-sku="COF-1" data-version="1" data-available="7" data-exact="1"[^>]*>7 available',
        response.content.decode(),
    )


def test_product_page_url_is_the_one_the_api_gives(client):
    product("COF-1")
    url = client.get("/api/products/COF-1").json()["url"]
    assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    "path", ["/products/NOPE/", "/products/bad%20sku/", "/orders/" + str(uuid.uuid4()) + "/", "/orders/1/"]
)
def test_unknown_pages_are_a_404_page(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "text/html" in response["Content-Type"]


def test_add_to_cart_validates_the_quantity_next_to_the_field(client):
    product("COF-1")
    for bad in ["0", "-1", "abc", "1001", ""]:
        response = client.post("/products/COF-1/", {"quantity": bad})
        assert response.status_code == 400
        assert re.search(r'id="buy-note" class="line-note" role="status">\S', response.content.decode())
    assert client.session.get("cart") is None


def test_cart_and_checkout_place_an_order_at_catalog_prices(client):
    product("COF-1", "Kenya Nyeri", price="16.00")
    product("MUG-1", "Stoneware Mug", price="12.50", category="mugs")
    client.post("/products/COF-1/", {"quantity": "2"})
    client.post("/products/MUG-1/", {"quantity": "1"})
    client.post("/products/COF-1/", {"quantity": "1"})
    cart = client.get("/cart/").content.decode()
    assert "Cart (4)" in cart and "60.50 EUR" in cart
    client.post("/cart/", {"sku": "MUG-1", "quantity": "0"})
    assert "Cart (3)" in client.get("/cart/").content.decode()

    token = re.search(r'name="token" value="([^"]+)"', client.get("/checkout/").content.decode()).group(1)
    response = client.post("/checkout/", {"email": "ann@example.org", "token": token, "price": "0.01"})
    assert response.status_code == 302
    order = Order.objects.get()
    assert response["Location"] == f"/orders/{order.id}/"
    assert (order.email, order.total, order.status) == ("ann@example.org", Decimal("48.00"), "pending")
    assert [(ln.sku, ln.quantity) for ln in order.lines.all()] == [("COF-1", 3)]
    assert StoredEvent.objects.filter(type="OrderPlaced", aggregate_id=str(order.id)).count() == 1
    assert "Cart (0)" in client.get("/cart/").content.decode()
    page = client.get(response["Location"]).content.decode()
    assert 'data-type="OrderPlaced"' in page and "pending" in page
    assert str(order.id)[:8] in client.get("/orders/").content.decode()


def test_submitting_the_same_checkout_twice_places_one_order(client):
    product("COF-1")
    client.post("/products/COF-1/", {"quantity": "1"})
    token = str(uuid.uuid4())
    first = client.post("/checkout/", {"email": "ann@example.org", "token": token})
    client.post("/products/COF-1/", {"quantity": "1"})
    client.post("/products/COF-1/", {"quantity": "-1"})  # refused, the cart keeps 1
    session = client.session
    session["cart"] = {"COF-1": 1}
    session.save()
    second = client.post("/checkout/", {"email": "ann@example.org", "token": token})
    assert first["Location"] == second["Location"]
    assert Order.objects.count() == 1


def test_checkout_errors_are_shown_next_to_the_field_and_nothing_is_placed(client):
    product("COF-1")
    empty = client.post("/checkout/", {"email": "ann@example.org", "token": str(uuid.uuid4())})
    assert empty.status_code == 400 and "Your cart is empty" in empty.content.decode()
    client.post("/products/COF-1/", {"quantity": "1"})
    for data in [
        {"email": "not-an-email", "token": str(uuid.uuid4())},
        {"email": "", "token": str(uuid.uuid4())},
        {"email": "a@example.org\x00", "token": str(uuid.uuid4())},
        {"email": "a@example.org", "token": "x"},
        {"email": "x" * 300 + "@example.org", "token": str(uuid.uuid4())},
    ]:
        response = client.post("/checkout/", data)
        assert response.status_code == 400, data
    assert (
        'id="email-errors"' in client.post("/checkout/", {"email": "nope", "token": str(uuid.uuid4())}).content.decode()
    )
    assert Order.objects.count() == 0


def test_checkout_needs_the_csrf_token(client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    product("COF-1")
    assert strict.post("/checkout/", {"email": "ann@example.org", "token": str(uuid.uuid4())}).status_code == 403


def test_a_product_that_left_the_catalog_is_reported_at_checkout(client):
    product("COF-1")
    client.post("/products/COF-1/", {"quantity": "1"})
    session = client.session
    session["cart"] = {"COF-1": 1, "GONE-1": 2}
    session.save()
    response = client.post("/checkout/", {"email": "ann@example.org", "token": str(uuid.uuid4())})
    assert response.status_code == 400 and "GONE-1" in response.content.decode()


def test_bad_cart_updates_are_refused_with_a_message(client):
    product("COF-1")
    client.post("/products/COF-1/", {"quantity": "2"})
    for data in [{"sku": "COF-1", "quantity": "x"}, {"sku": "NOPE", "quantity": "1"}, {"sku": "", "quantity": "1"}]:
        assert client.post("/cart/", data).status_code == 302
    assert client.session["cart"] == {"COF-1": 2}


def test_cart_limits_match_the_order_limits():
    assert forms.MAX_QUANTITY == settings.ORDER_MAX_QUANTITY


def test_order_urls_carry_no_sequential_id(client):
    product("COF-1")
    client.post("/products/COF-1/", {"quantity": "1"})
    location = client.post("/checkout/", {"email": "ann@example.org", "token": str(uuid.uuid4())})["Location"]
    assert re.fullmatch(r"/orders/[0-9a-f-]{36}/", location)


def add(client, sku: str, quantity) -> object:
    return client.post(f"/products/{sku}/", {"quantity": str(quantity)})


def set_available(sku: str, available: int) -> None:
    StockLevel.objects.filter(sku=sku).update(available=available, on_hand=available, version=2)


def test_a_sold_out_product_offers_no_add_to_cart_and_says_why(client):
    product("LTD-1", "Limited lot", available=0)
    html = client.get("/products/LTD-1/").content.decode()
    assert re.search(r'<button type="submit" id="add-to-cart" disabled>', html)
    assert "Limited lot is sold out: it can be ordered again once it is restocked." in html
    refused = add(client, "LTD-1", 1)
    assert refused.status_code == 409 and "Limited lot is sold out" in refused.content.decode()
    assert client.session.get("cart") is None


def test_more_than_the_stock_never_goes_into_the_cart(client):
    product("BRE-1", "Hand grinder", available=100)
    refused = add(client, "BRE-1", 1000)
    assert refused.status_code == 409
    assert "Only 100 of Hand grinder available: you can add up to 100." in refused.content.decode()
    assert add(client, "BRE-1", 98).status_code == 302
    again = add(client, "BRE-1", 5)
    assert again.status_code == 409
    assert "Only 100 of Hand grinder available (98 already in your cart): you can add up to 2." in (
        again.content.decode()
    )
    assert client.session["cart"] == {"BRE-1": 98}
    client.post("/cart/", {"sku": "BRE-1", "quantity": "101"})
    assert client.session["cart"] == {"BRE-1": 98}
    assert "Only 100 of Hand grinder available: lower the quantity to 100." in client.get("/cart/").content.decode()


def test_a_cart_line_beyond_the_stock_holds_the_checkout_back_with_the_reason(client):
    product("COF-1", "Kenya Nyeri", available=10)
    add(client, "COF-1", 4)
    set_available("COF-1", 2)  # others bought meanwhile
    cart = client.get("/cart/").content.decode()
    assert "Only 2 of Kenya Nyeri available: lower the quantity to 2." in cart
    assert 'id="checkout" data-gate href="/checkout/" aria-disabled="true"' in cart
    page = client.get("/checkout/").content.decode()
    assert re.search(r'<button type="submit" data-gate disabled>Place order</button>', page)
    response = client.post("/checkout/", {"email": "ann@example.org", "token": str(uuid.uuid4())})
    assert response.status_code == 409 and "Change the quantity in your cart." in response.content.decode()
    assert Order.objects.count() == 0


def test_the_cart_removes_a_line_and_says_so(client):
    product("COF-1", "Kenya Nyeri")
    product("MUG-1", "Stoneware Mug", category="mugs")
    add(client, "COF-1", 1)
    add(client, "MUG-1", 1)
    assert "Remove" in client.get("/cart/").content.decode()
    client.post("/cart/", {"sku": "MUG-1", "quantity": "1", "action": "remove"})
    assert client.session["cart"] == {"COF-1": 1}
    client.post("/cart/", {"sku": "COF-1", "quantity": "0", "action": "update"})
    html = client.get("/cart/").content.decode()
    assert "Removed Kenya Nyeri from your cart." in html and "Your cart is empty." in html


def test_checkout_with_an_empty_cart_offers_no_button(client):
    html = client.get("/checkout/").content.decode()
    assert "Place order" not in html and "Your cart is empty" in html


def place(client, sku: str = "COF-1") -> Order:
    add(client, sku, 1)
    client.post("/checkout/", {"email": "ann@example.org", "token": str(uuid.uuid4())})
    return Order.objects.latest("created_at")


def test_the_order_page_cancels_an_order_placed_from_this_browser(client):
    from django.test import Client

    product("COF-1", "Kenya Nyeri")
    order = place(client)
    page = client.get(f"/orders/{order.id}/").content.decode()
    assert 'id="cancel-order"' in page and 'href="/orders/"' in page and "only way back" not in page
    assert "catalog prices" not in page
    assert Client().get(f"/orders/{order.id}/").content.decode().count('id="cancel-order"') == 0
    assert Client().post(f"/orders/{order.id}/cancel/").status_code == 403
    assert client.get(f"/orders/{order.id}/cancel/").status_code == 405
    assert client.post(f"/orders/{uuid.uuid4()}/cancel/").status_code == 404

    done = client.post(f"/orders/{order.id}/cancel/")
    assert done.status_code == 302 and done["Location"] == f"/orders/{order.id}/"
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert StoredEvent.objects.filter(type="OrderCancelled", aggregate_id=str(order.id)).count() == 1
    page = client.get(f"/orders/{order.id}/").content.decode()
    assert "Your order is cancelled" in page and 'id="cancel-form" class="actions" hidden' in page
    client.post(f"/orders/{order.id}/cancel/")
    assert (
        "This order can no longer be cancelled: it is cancelled." in client.get(f"/orders/{order.id}/").content.decode()
    )


def test_a_rejection_names_the_products_not_their_skus(client):
    product("BRE-015", "Gooseneck kettle")
    order = place(client, "BRE-015")
    Order.objects.filter(id=order.id).update(status="rejected", reason="not enough stock for BRE-015")
    page = client.get(f"/orders/{order.id}/").content.decode()
    assert "Not enough stock for Gooseneck kettle" in page and "stock for BRE-015" not in page
