"""The storefront as a shopper meets it: at phone width, with stock that runs out and comes back, and a change of mind.

Given real web processes (WSGI pages, ASGI websockets), relay, workers, NATS and
PostgreSQL, when a shopper clicks through chromium, then what they can and cannot do.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from inventory.services import stock_receive
from shop.models import StockLevel
from tests.browser.conftest import PHONE
from tests.pipeline import wait_for

pytestmark = pytest.mark.pipeline


def projected(sku: str, available: int) -> None:
    wait_for(lambda: StockLevel.objects.filter(sku=sku, available=available).exists(), message=f"{sku} projected")


def fits(page, selector: str) -> None:
    """Assert the element is on screen horizontally: nothing to scroll sideways to find it."""
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"{selector} is off-screen: {box}"


def no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def add_to_cart(page, base: str, sku: str, quantity: int) -> None:
    page.goto(f"{base}/products/{sku}/")
    page.fill("#id_quantity", str(quantity))
    page.click("#add-to-cart")
    page.wait_for_url("**/cart/")


def test_at_phone_width_the_catalog_cart_and_order_fit_with_their_totals_in_view(
    shop, contexts, make_product, screenshots
):
    for i in range(6):
        make_product(f"PHONE-{i}", stock=40, price="1249.50")
    projected("PHONE-5", 40)
    page = contexts(phone=True)

    page.goto(shop.web + "/")
    first, second = (page.locator(".card").nth(i).bounding_box() for i in (0, 1))
    assert first["y"] == second["y"], "two cards a row"
    search, button = page.locator("#q").bounding_box(), page.locator("button:has-text('Search')").bounding_box()
    assert abs(search["y"] - button["y"]) < 8, "the search button beside its field"
    no_sideways_scroll(page)
    page.screenshot(path=screenshots / "phone-catalog.png", full_page=True)

    page.goto(f"{shop.web}/products/PHONE-0/")
    page.wait_for_selector("#live-state[data-state=open]")
    no_sideways_scroll(page)
    page.screenshot(path=screenshots / "phone-product.png", full_page=True)
    add_to_cart(page, shop.web, "PHONE-0", 12)
    add_to_cart(page, shop.web, "PHONE-1", 3)
    add_to_cart(page, shop.web, "PHONE-2", 1)

    page.click("button[aria-label='Remove Product PHONE-2']")
    expect(page.locator(".messages")).to_contain_text("Removed Product PHONE-2 from your cart.")
    assert page.locator("#cart tbody tr").count() == 2
    expect(page.locator("#cart-total")).to_have_text("18742.50 EUR")
    for selector in [
        "#cart-total",
        "#cart tbody tr:nth-child(2) td[data-label=Subtotal]",
        "button:has-text('Update')",
        "button:has-text('Remove')",
        "#checkout",
    ]:
        fits(page, selector)
    no_sideways_scroll(page)
    page.screenshot(path=screenshots / "phone-cart.png", full_page=True)

    page.click("#checkout")
    fits(page, "#checkout-total")
    page.fill("#id_email", "ann@example.org")
    page.click("button:has-text('Place order')")
    page.wait_for_url("**/orders/*/")
    page.wait_for_selector("#order[data-status=confirmed]")
    fits(page, "#order-total")
    no_sideways_scroll(page)
    page.screenshot(path=screenshots / "phone-order.png", full_page=True)

    page.goto(shop.web + "/orders/")
    fits(page, "#my-orders td[data-label=Total]")
    no_sideways_scroll(page)
    page.screenshot(path=screenshots / "phone-my-orders.png", full_page=True)


def test_a_sold_out_product_cannot_be_added_until_a_restock_reaches_the_page(shop, contexts, make_product, screenshots):
    make_product("LTD-9", stock=0)
    page = contexts(phone=True)
    page.goto(f"{shop.web}/products/LTD-9/")
    page.wait_for_selector("#live-state[data-state=open]")
    add = page.locator("#add-to-cart")
    expect(add).to_be_disabled()
    expect(page.locator("#buy-note")).to_have_text(
        "Product LTD-9 is sold out: it can be ordered again once it is restocked."
    )
    page.screenshot(path=screenshots / "phone-product-sold-out.png", full_page=True)

    stock_receive(sku="LTD-9", quantity=3, create=True)  # the staff restock, through inventory's events
    expect(add).to_be_enabled()  # without a reload
    expect(page.locator("#stock .badge")).to_have_text("3 available")
    expect(page.locator("#buy-note")).to_be_hidden()

    page.fill("#id_quantity", "1000")
    expect(add).to_be_disabled()
    expect(page.locator("#buy-note")).to_have_text("Only 3 of Product LTD-9 available: you can add up to 3.")
    page.locator("#id_quantity").blur()  # leaving the field caps it at what can be added
    expect(page.locator("#id_quantity")).to_have_value("3")
    expect(add).to_be_enabled()
    add.click()
    page.wait_for_url("**/cart/")
    expect(page.locator("#cart-total")).to_have_text("30.00 EUR")

    page.goto(f"{shop.web}/products/LTD-9/")  # all three are in the cart now: nothing more to add
    expect(add).to_be_disabled()
    expect(page.locator("#buy-note")).to_have_text(
        "Only 3 of Product LTD-9 available, all of them already in your cart."
    )


def test_an_order_is_cancelled_from_its_page_and_its_stock_goes_back(shop, contexts, make_product):
    make_product("CXL-1", stock=10)
    projected("CXL-1", 10)
    page = contexts()
    add_to_cart(page, shop.web, "CXL-1", 4)
    page.click("#checkout")
    page.fill("#id_email", "ann@example.org")
    page.click("button:has-text('Place order')")
    page.wait_for_url("**/orders/*/")
    page.wait_for_selector("#order[data-status=confirmed]")
    projected("CXL-1", 6)

    page.click("#cancel-order")
    page.wait_for_selector("#order[data-status=cancelled]")
    expect(page.locator(".messages")).to_contain_text("Your order is cancelled")
    expect(page.locator("#cancel-form")).to_be_hidden()
    projected("CXL-1", 10)
    # live, from the inventory
    expect(page.locator("#timeline li[data-type=StockReleased]")).to_have_count(1, timeout=30_000)
    assert re.search(r"OrderCancelled", page.inner_text("#timeline"))
