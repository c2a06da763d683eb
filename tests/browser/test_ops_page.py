"""The ops page in a real browser: its history outlives the page, its latency panel says nothing when nothing happens.

Given real web processes (which sample the figures every second), relay, workers,
NATS and PostgreSQL, when staff open the ops page before, during and after a
short burst of orders, then what it draws.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from ops.models import Sample
from tests.browser.test_storefront import staff_login
from tests.pipeline import wait_for

pytestmark = pytest.mark.pipeline


def points(page, chart: str) -> int:
    return int(page.get_attribute(f"#{chart}", "data-points") or 0)


def test_the_ops_page_keeps_its_history_and_shows_no_latency_when_idle(shop, contexts, make_product, screenshots):
    make_product("OPS-1", stock=500)
    page = staff_login(contexts(), shop.web)
    expect(page.locator("a:has-text('Ops')")).to_be_visible()
    page.click("nav a:has-text('Ops')")
    page.wait_for_url(shop.web + "/ops/")
    expect(page.locator("#status")).to_have_text(re.compile(r"^live · \d\d:\d\d:\d\d UTC"))

    # Idle: no order confirmed, so no quantile, and the panel says so rather than keeping an old value.
    wait_for(lambda: Sample.objects.count() >= 3, 30, "three samples of the history")
    expect(page.locator("#latency-empty")).to_have_text("No order confirmed in the last 10 s.")
    assert points(page, "latency") == 0
    expect(page.locator("#latency-legend")).to_have_text("p50: –p99: –")
    expect(page.locator("#dl-empty")).to_have_text("No dead letters: every message so far was handled.")
    # Legends in the page's text size, a hit rate that tops at 100 %.
    assert page.evaluate("parseFloat(getComputedStyle(document.getElementById('orders-legend')).fontSize)") >= 13
    expect(page.locator("#cache text").first).to_have_text("100 %")

    # A short burst of orders: the panel shows real quantiles while they are recent.
    for i in range(12):
        order = {"email": f"load{i}@example.org", "lines": [{"sku": "OPS-1", "quantity": 1}]}
        assert httpx.post(f"{shop.web}/api/orders", json=order).status_code == 202
    page.wait_for_function("Number(document.getElementById('latency').dataset.points) > 0")
    expect(page.locator("#latency-empty")).to_be_hidden()
    expect(page.locator("#latency-legend")).to_have_text(re.compile(r"p50: [\d.]+ msp99: [\d.]+ ms"))
    page.wait_for_function("Number(document.getElementById('orders').dataset.points) > 0")
    page.screenshot(path=screenshots / "ops-during-load.png", full_page=True)

    # The orders age out of the window: the panel empties again (no last value kept).
    expect(page.locator("#latency-empty")).to_be_visible(timeout=30_000)
    expect(page.locator("#latency-legend")).to_have_text("p50: –p99: –")
    assert points(page, "latency") > 0  # the burst is still drawn where it happened
    page.screenshot(path=screenshots / "ops-after-load.png", full_page=True)

    # A reload draws the history the server kept, from before this page was opened.
    oldest = int(page.get_attribute("#orders", "data-oldest"))
    page.reload()
    page.wait_for_function(
        "n => Number(document.getElementById('orders').dataset.oldest) <= n"
        " && Number(document.getElementById('latency').dataset.points) > 0",
        arg=oldest,
    )

    page.click("nav a:has-text('Inventory')")
    page.wait_for_url(shop.web + "/staff/")
