"""The flash-sale crowd: many buyers hammering one scarce SKU at once.

Every one of them looks at the product and orders it, sold out or not:
most orders must end rejected, none may oversell (``verify_invariants``
checks that after the run). The SKU is ``--flash-sku`` (``LOCUST_FLASH_SKU``),
which ``make loadtest`` sets to the shop's limited lot ``LTD-001`` after
making it scarce (``manage.py prepare_flash_sale``); unset, it is that lot if
the catalog has it, else the catalog's first product. The ``flash-sale``
shape (``loadtests/shapes.py``) sends a spike of these users on top of the
usual mix.
"""

from __future__ import annotations

from locust import FastHttpUser, between, task

from loadtests import check

from .common import await_final, catalog, checked, flash_sku, place_order


class FlashSaleBuyer(FastHttpUser):
    # Only the flash-sale shape runs this persona; when it does, the crowd should outnumber everyone else.
    weight = 30
    wait_time = between(0.2, 1)

    def on_start(self) -> None:
        self.sku = flash_sku(self, [])  # the catalog only when no SKU was named: a crowd should not page through it
        if not self.sku:
            self.sku = flash_sku(self, catalog(self))

    @task
    def grab(self) -> None:
        if not self.sku:
            return
        sku = self.sku
        checked(
            self,
            "GET",
            f"/api/products/{sku}",
            lambda s, d: check.product_answer_problem(s, d, sku),
            name="/api/products/[flash sku]",
        )
        order = place_order(self, [{"sku": sku, "quantity": 1}], name="/api/orders (flash sale)")
        if order:
            await_final(self, order["id"])
