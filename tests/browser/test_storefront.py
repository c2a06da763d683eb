"""The storefront in a real browser: live stock between shoppers, checkout to a live order page, the guarded parts.

Given real web processes (WSGI pages, ASGI websockets), relay, workers, NATS and
PostgreSQL, when shoppers click through chromium, then what each of them sees.
"""

from __future__ import annotations

import time

import httpx
import pytest
from django.contrib.auth import get_user_model

from inventory.services import stock_receive
from shop.models import Order, StockLevel
from tests.pipeline import wait_for

pytestmark = pytest.mark.pipeline


def open_product(page, base: str, sku: str) -> None:
    """Open a product page and wait until its stock socket is open."""
    page.goto(f"{base}/products/{sku}/")
    page.wait_for_selector("#live-state[data-state=open]")


PLACE_ORDER = "button:has-text('Place order')"


def fill_checkout(page, base: str, sku: str, quantity: int, email: str = "ann@example.org") -> None:
    """Add to the cart and fill the checkout form, up to the button that places the order."""
    page.goto(f"{base}/products/{sku}/")
    page.fill("#id_quantity", str(quantity))
    page.click("button:has-text('Add to cart')")
    page.wait_for_url("**/cart/")
    page.click("a:has-text('Checkout')")
    page.fill("#id_email", email)


def buy(page, base: str, sku: str, quantity: int, email: str = "ann@example.org") -> str:
    """Add to the cart and check out through the forms; return the order page's URL."""
    fill_checkout(page, base, sku, quantity, email)
    page.click(PLACE_ORDER)
    page.wait_for_url("**/orders/*/")
    return page.url


def wait_available(page, sku: str, available: int) -> None:
    """Wait until the page's badge of ``sku`` shows ``available`` (without reloading)."""
    page.wait_for_function(
        "([sku, n]) => document.querySelector(`[data-sku='${sku}'][data-version]`)?.dataset.available === String(n)",
        arg=[sku, available],
    )


def projected(sku: str, available: int) -> None:
    wait_for(lambda: StockLevel.objects.filter(sku=sku, available=available).exists(), message=f"{sku} projected")


def test_a_purchase_in_one_window_changes_the_badge_in_another_without_a_reload(shop, contexts, make_product):
    make_product("LIVE-A", stock=10)
    projected("LIVE-A", 10)
    watcher, buyer = contexts(), contexts()
    open_product(watcher, shop.web, "LIVE-A")
    assert watcher.inner_text("#stock .badge") == "10 available"

    fill_checkout(buyer, shop.web, "LIVE-A", 3)
    clicked = time.monotonic()
    buyer.click(PLACE_ORDER)
    wait_available(watcher, "LIVE-A", 7)

    # Printed, not bounded: on a loaded box any bound is a guess; loadtests/live_latency.py measures it.
    lag = time.monotonic() - clicked
    print(f"click on 'Place order' → badge in the other window: {lag * 1000:.0f} ms")
    assert watcher.inner_text("#stock .badge") == "7 available"


def test_the_same_with_two_web_processes_buyer_on_one_watcher_on_the_other(
    pipeline, static_files, contexts, make_product
):
    make_product("LIVE-B", stock=10)
    pipeline.start()
    one, other = pipeline.live(1, *static_files), pipeline.live(1, *static_files)
    projected("LIVE-B", 10)
    watcher, buyer = contexts(), contexts()
    open_product(watcher, other, "LIVE-B")

    fill_checkout(buyer, one, "LIVE-B", 4)
    clicked = time.monotonic()
    buyer.click(PLACE_ORDER)
    wait_available(watcher, "LIVE-B", 6)

    lag = time.monotonic() - clicked
    print(f"click on 'Place order' → badge, across processes: {lag * 1000:.0f} ms")


def page_timeline(page) -> list[tuple[str, str]]:
    items = page.query_selector_all("#timeline li[data-event-id]")
    return [(li.get_attribute("data-event-id"), li.get_attribute("data-type")) for li in items]


def stored_timeline(order_id: str) -> list[tuple[str, str]]:
    return [(str(t.event_id), t.type) for t in Order.objects.get(id=order_id).timeline.all()]


def follow_until_decided(page, pipeline, status: str) -> None:
    """On an order page whose order waits for the workers: see it pending, start them, see ``status`` live."""
    page.wait_for_selector("#live-state[data-state=open]")
    assert page.get_attribute("#order", "data-status") == "pending"
    assert page.text_content("#order-status") == "pending"
    page.evaluate("window.sameDocument = true")  # gone if the page reloads or navigates
    workers = pipeline.workers()
    page.wait_for_selector(f"#order[data-status={status}]")
    page.wait_for_function("document.querySelectorAll('#timeline li').length === 3")
    assert page.evaluate("window.sameDocument") is True
    workers.stop()  # the next order waits for them again


def test_checkout_ends_on_a_live_order_page_confirmed_or_rejected_with_the_reason(
    pipeline, static_files, contexts, make_product, screenshots
):
    make_product("LIVE-C", stock=5, price="14.50")
    pipeline.relay()
    workers = pipeline.workers()
    live = pipeline.live(1, *static_files)
    web = pipeline.web(2, *static_files, LIVE_WS_PORT=live.rsplit(":", 1)[1])
    projected("LIVE-C", 5)
    # Orders are decided by the workers: without them an order stays pending, so a page that ends
    # decided was told so through its socket, not by the database when it was rendered.
    workers.stop()
    page = contexts()
    page.goto(web + "/")
    page.screenshot(path=screenshots / "catalog.png", full_page=True)
    open_product(page, web, "LIVE-C")
    page.screenshot(path=screenshots / "product.png", full_page=True)

    url = buy(page, web, "LIVE-C", 2)
    follow_until_decided(page, pipeline, "confirmed")
    order_id = url.rstrip("/").rsplit("/", 1)[1]
    assert page_timeline(page) == stored_timeline(order_id)
    assert [t for _, t in page_timeline(page)] == ["OrderPlaced", "StockReserved", "OrderConfirmed"]
    assert "ms" in page.inner_text("#timeline")
    page.screenshot(path=screenshots / "order-confirmed.png", full_page=True)

    # 3 left: the page lets this shopper order 3, but another order for 1 is placed first.
    fill_checkout(page, web, "LIVE-C", 3)
    other = httpx.post(
        f"{web}/api/orders", json={"email": "bo@example.org", "lines": [{"sku": "LIVE-C", "quantity": 1}]}
    )
    assert other.status_code == 202
    page.click(PLACE_ORDER)
    page.wait_for_url("**/orders/*/")
    url = page.url
    follow_until_decided(page, pipeline, "rejected")
    assert page.inner_text("#order-reason") == "Not enough stock for Product LIVE-C"
    order_id = url.rstrip("/").rsplit("/", 1)[1]
    assert page_timeline(page) == stored_timeline(order_id)
    assert [t for _, t in page_timeline(page)] == ["OrderPlaced", "StockReservationRejected", "OrderRejected"]
    page.screenshot(path=screenshots / "order-rejected.png", full_page=True)

    page.goto(web + "/orders/")
    assert page.locator("tbody tr").count() == 2


def staff_login(page, base: str):
    """Log a new staff user in through the login form; return the page, on the inventory with its socket open."""
    get_user_model().objects.create_user("clerk", password="clerk-pass", is_staff=True)
    page.goto(base + "/staff/login/?next=/staff/")
    page.fill("#id_username", "clerk")
    page.fill("#id_password", "clerk-pass")
    page.click("button:has-text('Log in')")
    page.wait_for_url(base + "/staff/")
    page.wait_for_selector("#live-state[data-state=open]")
    return page


def test_a_foreign_origin_cannot_open_a_socket_and_staff_pages_need_a_staff_login(shop, contexts, make_product):
    make_product("LIVE-D", stock=8)
    projected("LIVE-D", 8)
    socket_url = shop.live.replace("http://", "ws://") + "/ws/stock/"
    opens = "url => new Promise(done => { const ws = new WebSocket(url); ws.onopen = () => done('open'); ws.onclose = () => done('refused'); })"  # noqa: E501

    evil = contexts()
    evil.route(
        "http://evil.test/**",
        lambda route: route.fulfill(body="<html><body>elsewhere</body></html>", content_type="text/html"),
    )
    evil.goto("http://evil.test/")
    assert evil.evaluate(opens, socket_url) == "refused"
    evil.goto(shop.web + "/")
    assert evil.evaluate(opens, socket_url) == "open"

    visitor = contexts()
    visitor.goto(shop.web + "/staff/")
    assert "/staff/login/?next=/staff/" in visitor.url
    visitor.goto(shop.web + "/staff/events/")
    assert "/staff/login/" in visitor.url

    staff = staff_login(visitor, shop.web)
    row = "tr[data-row-sku='LIVE-D']"
    assert staff.inner_text(f"{row} [data-field=available]") == "8"

    buy(contexts(), shop.web, "LIVE-D", 3)
    staff.wait_for_function(f"document.querySelector(\"{row} [data-field=reserved]\").textContent === '3'")
    assert staff.inner_text(f"{row} [data-field=available]") == "5"

    staff.fill("#restock-LIVE-D", "10")
    staff.click(f"{row} button:has-text('Restock')")
    staff.wait_for_function(f"document.querySelector(\"{row} [data-field=on_hand]\").textContent === '18'")
    assert "Received 10 × LIVE-D" in staff.inner_text(".messages")

    staff.goto(shop.web + "/staff/events/?type=OrderPlaced")
    staff.click("td a")
    staff.wait_for_selector("#chain")
    types = [t.strip() for t in staff.locator("#chain tbody td:first-child strong").all_inner_texts()]
    assert types[:2] == ["OrderPlaced", "StockReserved"] and "OrderConfirmed" in types


def test_a_page_whose_socket_dropped_reconnects_and_shows_what_changed_meanwhile(
    pipeline, static_files, contexts, make_product
):
    make_product("LIVE-E", stock=10)
    pipeline.start()
    live = pipeline.live(1, *static_files)
    port = int(live.rsplit(":", 1)[1])
    web = pipeline.web(1, *static_files, LIVE_WS_PORT=str(port))
    projected("LIVE-E", 10)
    watcher = contexts()
    open_product(watcher, web, "LIVE-E")
    staff = staff_login(contexts(), web)
    on_hand = "tr[data-row-sku='LIVE-E'] [data-field=on_hand]"
    assert staff.inner_text(on_hand) == "10"

    asgi = next(proc for proc in pipeline.procs if proc.name == "live")
    asgi.stop()  # the ASGI process goes away: the pages' sockets drop
    for page in (watcher, staff):
        page.wait_for_selector("#live-state[data-state=closed]")
    stock_receive(sku="LIVE-E", quantity=5)
    projected("LIVE-E", 15)
    pipeline.live(1, *static_files, port=port)

    watcher.wait_for_selector("#live-state[data-state=open]")
    wait_available(watcher, "LIVE-E", 15)
    staff.wait_for_function(f"document.querySelector(\"{on_hand}\").textContent === '15'")
