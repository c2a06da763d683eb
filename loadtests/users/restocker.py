"""The staff restocker: checks stock levels through the staff API and restocks what runs low.

One of them at a time (``fixed_count = 1``). It needs a staff API token in
``--staff-token`` / ``LOCUST_STAFF_TOKEN`` (``python manage.py issue_token
admin``; ``make loadtest`` gets one itself); without one it stops at once.

It never restocks the flash sale's SKU, so that one stays scarce: the same
SKU the flash-sale crowd buys (``common.flash_sku``), whether named by
``--flash-sku`` / ``LOCUST_FLASH_SKU`` (as ``make loadtest`` does) or left to
the default.
"""

from __future__ import annotations

import logging
import random

from locust import FastHttpUser, between, task
from locust.exception import StopUser

from loadtests import check

from .common import catalog, checked, flash_sku

LOW = 20  # restock a product when fewer than this many are available
QUANTITY = 50

log = logging.getLogger(__name__)


class Restocker(FastHttpUser):
    fixed_count = 1
    wait_time = between(2, 5)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        token = getattr(options, "staff_token", "") if options else ""
        if not token:
            log.warning("Restocker: no --staff-token / LOCUST_STAFF_TOKEN; the restocker does not run")
            raise StopUser()
        self.headers = {"Authorization": f"Bearer {token}"}
        products = catalog(self)
        flash = flash_sku(self, products)
        self.skus = [p["sku"] for p in products if p["sku"] != flash]

    @task
    def check_and_restock(self) -> None:
        if not self.skus:
            return
        sku = random.choice(self.skus)
        stock = checked(
            self,
            "GET",
            f"/api/inventory/{sku}",
            lambda s, d: check.stock_problem(s, d, sku),
            headers=self.headers,
            name="/api/inventory/[sku]",
        )
        if stock and stock["available"] < LOW:
            checked(
                self,
                "POST",
                f"/api/inventory/{sku}/restock",
                lambda s, d: check.restock_problem(s, d, sku, stock, QUANTITY),
                json={"quantity": QUANTITY},
                headers=self.headers,
                name="/api/inventory/[sku]/restock",
            )
