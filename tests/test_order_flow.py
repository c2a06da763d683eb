"""An order through the real pipeline: web → outbox → relay → JetStream → workers → PostgreSQL."""

import httpx

from events.base import Line
from inventory.models import Reservation, StockItem
from shop.models import Order, StockLevel
from shop.services import order_place
from tests.pipeline import wait_for


def final(order_id) -> Order | None:
    order = Order.objects.get(id=order_id)
    return order if order.status != Order.Status.PENDING else None


def test_placed_order_is_confirmed_with_its_timeline(pipeline, make_product):
    make_product("MUG-1", stock=5)
    pipeline.start()
    base = pipeline.web()

    response = httpx.post(
        f"{base}/api/orders", json={"email": "ann@example.org", "lines": [{"sku": "MUG-1", "quantity": 2}]}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["total"] == "20.00"

    order = wait_for(lambda: final(body["id"]), message="the order to become final")
    assert order.status == Order.Status.CONFIRMED
    timeline = httpx.get(body["status_url"]).json()["timeline"]
    assert [t["type"] for t in timeline] == ["OrderPlaced", "StockReserved", "OrderConfirmed"]
    assert timeline[0]["at"] <= timeline[1]["at"] <= timeline[2]["at"]
    item = StockItem.objects.get(sku="MUG-1")
    assert (item.on_hand, item.reserved) == (5, 2)
    # The storefront's projection follows.
    wait_for(lambda: StockLevel.objects.filter(sku="MUG-1", available=3).exists(), message="the projection")
    assert httpx.get(f"{base}/api/products/MUG-1").json()["available"] == 3


def test_one_short_line_rejects_the_whole_order_and_holds_nothing(pipeline, make_product):
    make_product("TEA-1", stock=10)
    make_product("TEA-2", stock=1)
    pipeline.start()

    order = order_place(email="bo@example.org", lines=[Line("TEA-1", 3), Line("TEA-2", 2)])

    order = wait_for(lambda: final(order.id), message="the order to become final")
    assert order.status == Order.Status.REJECTED
    assert "TEA-2" in order.reason
    assert Reservation.objects.get(order_id=order.id).status == Reservation.Status.REJECTED
    assert {i.sku: i.reserved for i in StockItem.objects.all()} == {"TEA-1": 0, "TEA-2": 0}
    assert [t.type for t in order.timeline.all()] == ["OrderPlaced", "StockReservationRejected", "OrderRejected"]
