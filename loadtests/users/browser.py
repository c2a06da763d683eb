"""The browser: looks at the catalog, searches, opens product pages; buys nothing.

Most of real traffic (weight 10 against the buyer's 3). It uses the
storefront's HTML pages where they exist (the catalog ``/`` and a product
page ``/products/<sku>/``) and the JSON API for search (``/api/products?q=``)
and product details. Run it alone with ``locust -f loadtests/locustfile.py Browser``.
"""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task

from loadtests import check

from .common import catalog, checked, page

SEARCHES = ["coffee", "tea", "mug", "kenya", "grinder", "jasmine", "espresso", "filter"]


class Browser(FastHttpUser):
    weight = 10
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.products = catalog(self)

    @task(4)
    def catalog_page(self) -> None:
        page(self, "/", "Catalog")

    @task(1)
    def catalog_next_page(self) -> None:
        page(self, "/?page=2", "Catalog", name="/?page=[n]")

    @task(3)
    def search(self) -> None:
        q = random.choice(SEARCHES)
        checked(
            self,
            "GET",
            f"/api/products?q={q}",
            lambda s, d: check.product_list_problem(s, d, q),
            name="/api/products?q=[term]",
        )

    @task(4)
    def product_page(self) -> None:
        if self.products:
            product = random.choice(self.products)
            page(self, f"/products/{product['sku']}/", product["name"], name="/products/[sku]/")

    @task(2)
    def product_api(self) -> None:
        if self.products:
            sku = random.choice(self.products)["sku"]
            checked(
                self,
                "GET",
                f"/api/products/{sku}",
                lambda s, d: check.product_answer_problem(s, d, sku),
                name="/api/products/[sku]",
            )
