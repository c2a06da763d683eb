"""The flash-sale crowd: many buyers hammering one scarce SKU at once.

Every one of them looks at the product and orders it, sold out or not:
most orders must end rejected, none may oversell (``verify_invariants``
checks that after the run). The SKU is ``--flash-sku`` (``LOCUST_FLASH_SKU``),
by default the first product of the catalog. The ``flash-sale`` shape
(``loadtests/shapes.py``) sends a spike of these users on top of the usual mix.
"""

from __future__ import annotations

from locust import FastHttpUser, between, task

from loadtests import check

from .common import await_final, checked, place_order


class FlashSaleBuyer(FastHttpUser):
    # Only the flash-sale shape runs this persona; when it does, the crowd should outnumber everyone else.
    weight = 30
    wait_time = between(0.2, 1)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.sku = getattr(options, "flash_sku", "") if options else ""
        if not self.sku:
            first = checked(self, "GET", "/api/products?page=1", check.product_list_problem,
                            name="/api/products?page=[n]")  # fmt: skip
            self.sku = first["items"][0]["sku"] if first and first["items"] else ""

    @task
    def grab(self) -> None:
        if not self.sku:
            return
        sku = self.sku
        checked(self, "GET", f"/api/products/{sku}", lambda s, d: check.product_answer_problem(s, d, sku),
                name="/api/products/[flash sku]")  # fmt: skip
        order = place_order(self, [{"sku": sku, "quantity": 1}], name="/api/orders (flash sale)")
        if order:
            await_final(self, order["id"])
