"""The catalog API (DESIGN §7): given products and the stock projection, when a client reads, then the answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.utils import timezone

from shop.models import Category, Product, StockLevel

pytestmark = pytest.mark.django_db

PRODUCT_KEYS = {
    "sku",
    "name",
    "description",
    "price",
    "currency",
    "category",
    "url",
    "image_url",
    "available",
    "stock_status",
}


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    """Start and end with an empty cache: products are cached, and each test rolls its rows back."""
    cache.clear()
    yield
    cache.clear()


def error(response, status: int) -> dict:
    """Assert ``response`` is the JSON error of DESIGN §7 with ``status``; return its ``error`` object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    err = response.json()["error"]
    assert isinstance(err["code"], str) and isinstance(err["message"], str) and isinstance(err["fields"], dict)
    return err


def level(sku: str, available: int) -> None:
    """Set the shop's projected stock of ``sku`` (what StockLevelChanged events would have done)."""
    now = timezone.now()
    StockLevel.objects.update_or_create(
        sku=sku,
        defaults={
            "on_hand": max(available, 0),
            "reserved": 0,
            "available": available,
            "version": 1,
            "changed_at": now,
            "updated_at": now,
        },
    )


def skus(response) -> list[str]:
    """Return the SKUs of a product list answer, after checking it is one."""
    assert response.status_code == 200, response.content
    return [item["sku"] for item in response.json()["items"]]


@pytest.fixture
def shelf(make_product) -> None:
    """Twenty-five mugs (category ``test``) and two teas (category ``tea``)."""
    for n in range(25):
        make_product(f"MUG-{n:02d}", stock=0)
    tea = Category.objects.create(slug="tea", name="Tea")
    for sku, name in [("TEA-1", "Green tea"), ("TEA-2", "Black tea")]:
        Product.objects.create(sku=sku, name=name, description="loose leaf", price="4.00", category=tea)


# The list


def test_products_are_listed_a_page_at_a_time(client, shelf):
    first = client.get("/api/products")
    second = client.get("/api/products?page=2")

    assert (first.json()["page"], first.json()["pages"]) == (1, 2)
    assert (second.json()["page"], second.json()["pages"]) == (2, 2)
    assert len(skus(first)) == 20 and len(skus(second)) == 7
    assert set(skus(first)) | set(skus(second)) == set(Product.objects.values_list("sku", flat=True))


def test_a_page_past_the_end_is_empty(client, shelf):
    response = client.get("/api/products?page=3")

    assert skus(response) == [] and response.json()["pages"] == 2


def test_a_search_finds_names_descriptions_and_skus(client, shelf):
    assert sorted(skus(client.get("/api/products?q=green"))) == ["TEA-1"]
    assert sorted(skus(client.get("/api/products?q=LOOSE"))) == ["TEA-1", "TEA-2"]
    assert skus(client.get("/api/products?q=mug-07")) == ["MUG-07"]
    assert skus(client.get("/api/products?q=nothing-like-it")) == []


def test_a_category_filters_the_list(client, shelf):
    response = client.get("/api/products?category=tea")

    assert sorted(skus(response)) == ["TEA-1", "TEA-2"] and response.json()["pages"] == 1
    assert len(skus(client.get("/api/products?category=test"))) == 20
    assert skus(client.get("/api/products?category=coffee")) == []


def test_a_search_and_a_category_combine(client, shelf):
    assert skus(client.get("/api/products?category=tea&q=black")) == ["TEA-2"]
    assert skus(client.get("/api/products?category=test&q=black")) == []


def test_listed_products_carry_their_stock(client, shelf):
    level("TEA-1", 3)

    items = {item["sku"]: item for item in client.get("/api/products?category=tea").json()["items"]}

    assert (items["TEA-1"]["available"], items["TEA-1"]["stock_status"]) == (3, "low_stock")
    assert (items["TEA-2"]["available"], items["TEA-2"]["stock_status"]) == (0, "sold_out")
    assert set(items["TEA-1"]) == PRODUCT_KEYS


BAD_PAGES = {
    "0": "0",
    "-1": "-1",
    "abc": "abc",
    "1.5": "1.5",
    "empty": "",
    "superscript two": "²",
    "arabic-indic one": "١",
    "past the last allowed": "100001",
    "5000 digits": "9" * 5000,
}


@pytest.mark.parametrize("page", BAD_PAGES.values(), ids=BAD_PAGES.keys())
def test_a_bad_page_is_a_json_400(client, shelf, page):
    err = error(client.get("/api/products", {"page": page}), 400)

    assert "page" in err["fields"]


@pytest.mark.parametrize("param", ["q", "category"])
def test_a_nul_in_a_search_is_a_json_400(client, shelf, param):
    err = error(client.get("/api/products", {param: "mug\x00"}), 400)

    assert param in err["fields"]


def test_products_only_answer_get(client):
    error(client.post("/api/products", data="{}", content_type="application/json"), 405)


def test_a_disallowed_host_is_a_json_400(client, shelf):
    assert error(client.get("/api/products", headers={"Host": "evil.example"}), 400)["code"] == "bad_request"


# One product


def test_a_product_has_the_shape_of_the_contract(client, make_product):
    make_product("MUG-1", stock=0, price="12.5")
    Product.objects.filter(sku="MUG-1").update(description="Stoneware", image_url="/static/mug.png")
    level("MUG-1", 40)

    response = client.get("/api/products/MUG-1")

    assert response.status_code == 200
    assert response.json() == {
        "sku": "MUG-1",
        "name": "Product MUG-1",
        "description": "Stoneware",
        "price": "12.50",
        "currency": "EUR",
        "category": "test",
        "url": "http://testserver/products/MUG-1/",
        "image_url": "http://testserver/static/mug.png",
        "available": 40,
        "stock_status": "in_stock",
    }


def test_the_product_url_is_its_storefront_page(client, make_product):
    make_product("MUG-1", stock=0)

    url = client.get("/api/products/MUG-1").json()["url"]

    assert client.get(url.removeprefix("http://testserver")).status_code == 200


@pytest.mark.parametrize(
    ("available", "expected"),
    [
        (None, (0, "sold_out")),
        (0, (0, "sold_out")),
        (-2, (0, "sold_out")),
        (1, (1, "low_stock")),
        (5, (5, "low_stock")),
        (6, (6, "in_stock")),
    ],
)
def test_a_product_shows_the_projected_stock(client, make_product, available, expected):
    make_product("MUG-1", stock=0)
    if available is not None:
        level("MUG-1", available)

    body = client.get("/api/products/MUG-1").json()

    assert (body["available"], body["stock_status"]) == expected


@pytest.mark.parametrize("sku", ["NOPE-1", "a.b", "a%20b", "MUG-1%0A", "A" * 65])
def test_an_unknown_product_is_a_json_404(client, make_product, sku):
    make_product("MUG-1", stock=0)

    assert error(client.get(f"/api/products/{sku}"), 404)["code"] == "not_found"
