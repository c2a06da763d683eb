"""The personas' response checks (loadtests/check.py): a wrong status or body is a failure, a right one is not.

Pure functions, no Locust in this process (importing it would monkey-patch
the test run with gevent).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests import check

PRODUCT = {
    "sku": "COF-001",
    "name": "Kenya",
    "description": "Blackcurrant",
    "price": "16.00",
    "available": 3,
    "stock_status": "low_stock",
    "url": "http://x/products/COF-001/",
}
ORDER_ID = "5d0c6a1e-1c43-4a53-9a5e-2a3c1f0c9b11"


def order(status: str = "pending", timeline: list | None = None, **extra) -> dict:
    return {
        "id": ORDER_ID,
        "status": status,
        "lines": [{"sku": "COF-001", "quantity": 2}],
        "total": "32.00",
        "status_url": "http://x",
        "created_at": "2026-01-01T10:00:00+00:00",
        "timeline": timeline or [],
        **extra,
    }


def test_a_right_product_passes_and_each_wrong_field_fails():
    assert check.product_answer_problem(200, PRODUCT, "COF-001") is None
    assert "HTTP 500" in check.product_answer_problem(500, PRODUCT, "COF-001")
    assert "asked for TEA-001" in check.product_answer_problem(200, PRODUCT, "TEA-001")
    assert "not JSON" in check.product_answer_problem(200, check.decode("<html>"), "COF-001")
    assert "lacks" in check.product_answer_problem(200, {"sku": "COF-001"}, "COF-001")
    assert "price" in check.product_answer_problem(200, {**PRODUCT, "price": 16.0}, "COF-001")
    assert "available" in check.product_answer_problem(200, {**PRODUCT, "available": -1}, "COF-001")
    assert "sold_out" in check.product_answer_problem(200, {**PRODUCT, "stock_status": "sold_out"}, "COF-001")


def test_a_search_answer_must_match_the_search():
    page = {"items": [PRODUCT], "page": 1, "pages": 1}
    assert check.product_list_problem(200, page, "kenya") is None
    assert "does not match" in check.product_list_problem(200, page, "jasmine")
    assert "items is not a list" in check.product_list_problem(200, {**page, "items": {}})


def test_a_page_must_hold_its_text():
    assert check.page_problem(200, "<h1>Catalog</h1>", "Catalog") is None
    assert "lacks 'Catalog'" in check.page_problem(200, "<h1>Oops</h1>", "Catalog")
    assert "HTTP 404" in check.page_problem(404, "Catalog", "Catalog")


def test_a_placed_order_must_be_pending_with_the_lines_sent():
    sent = [{"sku": "COF-001", "quantity": 2}]
    assert check.order_placed_problem(202, order(), sent) is None
    assert "HTTP 200" in check.order_placed_problem(200, order(), sent)
    assert "not pending" in check.order_placed_problem(202, order("confirmed"), sent)
    assert "was sent" in check.order_placed_problem(202, order(), [{"sku": "COF-001", "quantity": 1}])
    assert "total" in check.order_placed_problem(202, order(total="32"), sent)


def test_an_order_status_must_agree_with_its_timeline():
    confirmed = [
        {"type": "OrderPlaced", "at": "2026-01-01T10:00:00+00:00"},
        {"type": "OrderConfirmed", "at": "2026-01-01T10:00:00.250000+00:00"},
    ]
    assert check.order_status_problem(200, order("confirmed", confirmed), ORDER_ID) is None
    assert "does not say so" in check.order_status_problem(200, order("confirmed"), ORDER_ID)
    assert "unknown order status" in check.order_status_problem(200, order("lost"), ORDER_ID)
    assert "asked for order" in check.order_status_problem(200, order(id="other"), ORDER_ID)
    assert check.final_latency(order("confirmed", confirmed)) == ("confirmed", 0.25)
    assert check.final_latency(order("pending")) is None


def test_a_cancel_is_202_cancelled_or_409_cannot_cancel():
    assert check.cancel_problem(202, {"status": "cancelled"}) is None
    assert check.cancel_problem(409, {"error": {"code": "cannot_cancel"}}) is None
    assert "409" in check.cancel_problem(409, {"error": {"code": "other"}})
    assert "is 'confirmed'" in check.cancel_problem(202, {"status": "confirmed"})


def test_stock_counts_must_add_up_and_a_restock_must_add():
    stock = {"sku": "COF-001", "on_hand": 10, "reserved": 4, "available": 6, "version": 3}
    assert check.stock_problem(200, stock, "COF-001") is None
    assert "do not add up" in check.stock_problem(200, {**stock, "available": 7}, "COF-001")
    assert "do not add up" in check.stock_problem(200, {**stock, "reserved": 11, "available": -1}, "COF-001")
    after = {**stock, "on_hand": 60, "available": 56}
    assert check.restock_problem(202, after, "COF-001", stock, 50) is None
    assert "after adding 50" in check.restock_problem(202, stock, "COF-001", stock, 50)
    assert "HTTP 403" in check.restock_problem(403, {}, "COF-001", stock, 50)


def test_the_verdict_reads_locusts_csv_and_fails_over_the_error_budget(tmp_path: Path):
    stats = tmp_path / "stats_stats.csv"
    stats.write_text(
        "Type,Name,Request Count,Failure Count,Median Response Time\n"
        "GET,/,90,1,10\nE2E,place→confirmed,10,0,50\n,Aggregated,100,1,12\n"
    )
    totals = check.read_totals(stats)
    assert (totals.requests, totals.failures) == (100, 1)
    assert totals.by_name[("E2E", "place→confirmed")] == (10, 0)
    assert check.verdict_problems(totals, 0.01, invariants_ok=True) == []
    assert "1 of 100 requests failed" in check.verdict_problems(totals, 0.005, invariants_ok=True)[0]
    assert "verify_invariants" in check.verdict_problems(totals, 0.01, invariants_ok=False)[0]
    assert "no request" in check.verdict_problems(check.Totals(0, 0), 0.01, invariants_ok=True)[0]


def test_a_locust_crash_fails_the_verdict_but_its_failed_requests_code_does_not():
    totals = check.Totals(100, 1)
    assert check.verdict_problems(totals, 0.01, invariants_ok=True, locust_code=1) == []
    for code in (2, -9, 255):
        (problem,) = check.verdict_problems(totals, 0.01, invariants_ok=True, locust_code=code)
        assert problem.startswith(f"Locust crashed (exit code {code})")


def test_form_fields_are_read_and_a_form_must_redirect_where_it_should():
    html = (
        f'<form><input type="hidden" name="csrfmiddlewaretoken" value="abc123">'
        f'<input type="hidden" name="token" value="{ORDER_ID}" id="id_token"></form>'
    )
    assert check.form_field(html, "csrfmiddlewaretoken") == "abc123"
    assert check.form_field(html, "token") == ORDER_ID
    assert check.form_field(html, "email") is None
    assert check.form_page_problem(200, html, "csrfmiddlewaretoken", "token") is None
    assert "lacks email" in check.form_page_problem(200, html, "email")
    assert check.redirect_problem(302, "/cart/", "/cart/") is None
    assert check.redirect_problem(302, f"/orders/{ORDER_ID}/", check.ORDER_PAGE) is None
    assert "expected a redirect" in check.redirect_problem(400, "", check.ORDER_PAGE)  # the form came back with errors
    assert "redirected to '/login/'" in check.redirect_problem(302, "/login/", "/cart/")


def test_the_flash_sale_sku_is_the_one_named_else_the_limited_lot_else_the_first_product():
    catalog = [{"sku": "COF-001"}, {"sku": check.FLASH_SKU}]
    assert check.flash_sale_sku("TEA-002", catalog) == "TEA-002"
    assert check.flash_sale_sku("", catalog) == check.FLASH_SKU
    assert check.flash_sale_sku("", catalog[:1]) == "COF-001"
    assert check.flash_sale_sku("", []) == ""


def test_a_form_refused_for_the_stock_must_say_what_the_stock_allows():
    assert (
        check.stock_refusal_problem("<p>Limited lot is sold out: it can be ordered again once restocked.</p>") is None
    )
    assert check.stock_refusal_problem("<p>Only 3 of Hand grinder available: you can add up to 3.</p>") is None
    assert check.stock_refusal_problem("<p>Conflict</p>") == "HTTP 409 without saying what the stock allows"


@pytest.mark.parametrize(
    ("value", "said"),
    [(None, "rate limits: ON (unset, so on"), ("1", "rate limits: ON (RATE_LIMITS=1"), ("0", "rate limits: off")],
)
def test_a_run_says_whether_the_shop_had_its_rate_limits(value, said):
    assert check.rate_limits_line(value, "the devstack's").startswith(said)
