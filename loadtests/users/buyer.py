"""The buyer: looks at a product or two, places an order through the JSON API, waits for its decision.

Each order is also timed end to end, place → confirmed or rejected, and
reported as its own request type ``E2E`` (see ``common.await_final``).
Now and then a buyer changes their mind and cancels at once (202, or 409
when the order can no longer be cancelled); that order is not timed.

Some buyers shop as a person does, through the storefront's HTML forms: the
product page's "add to cart" form, then the checkout form (each with its
CSRF token and the session cookie), then the order page it redirects to.
"""

from __future__ import annotations

from locust import FastHttpUser, between, task

from loadtests import check

from .common import await_final, catalog, checked, form_post, place_order, random_lines

REFRESH_EVERY = 10  # orders between two looks at the whole catalog (to see what is in stock)


class Buyer(FastHttpUser):
    weight = 3
    wait_time = between(1, 4)

    def on_start(self) -> None:
        self.products = catalog(self)
        self.orders = 0

    def _lines(self) -> list[dict]:
        self.orders += 1
        if self.orders % REFRESH_EVERY == 0:
            self.products = catalog(self) or self.products
        return random_lines(self.products)

    @task(5)
    def buy(self) -> None:
        if not self.products:
            return
        lines = self._lines()
        for line in lines:
            sku = line["sku"]
            checked(
                self,
                "GET",
                f"/api/products/{sku}",
                lambda s, d, sku=sku: check.product_answer_problem(s, d, sku),
                name="/api/products/[sku]",
            )
        order = place_order(self, lines)
        if order:
            await_final(self, order["id"])

    @task(1)
    def buy_then_cancel(self) -> None:
        if not self.products:
            return
        order = place_order(self, self._lines())
        if order:
            checked(
                self, "POST", f"/api/orders/{order['id']}/cancel", check.cancel_problem, name="/api/orders/[id]/cancel"
            )

    @task(2)
    def checkout_through_the_pages(self) -> None:
        if not self.products:
            return
        line = self._lines()[0]
        product = f"/products/{line['sku']}/"
        if not form_post(self, product, {"quantity": str(line["quantity"])}, "/cart/", name="/products/[sku]/"):
            return
        email = f"{type(self).__name__.lower()}@loadtest.example.org"
        location = form_post(self, "/checkout/", {"email": email}, check.ORDER_PAGE, keep=("token",))
        if location:
            await_final(self, check.ORDER_PAGE.search(location).group(1))
