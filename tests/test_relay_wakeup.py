"""The relay's wake-up by LISTEN/NOTIFY: events move at once, with no polling to find them."""

from django.test import override_settings

from shop.models import Order
from shop.services import LineRequest, order_place
from tests.pipeline import wait_for


def test_notify_wakes_the_relay_for_each_hop(pipeline, make_product):
    make_product("MUG-1", stock=5)
    # Poll only once a minute: an order confirmed well within that proves each hop's NOTIFY woke the relay.
    env = {"RELAY_WAKEUP": "notify", "RELAY_NOTIFY_FALLBACK": "60", "RELAY_POLL_INTERVAL": "60"}
    relay = pipeline.relay(**env)
    pipeline.workers(**env)
    wait_for(lambda: "wake-up by notify" in relay.tail(), 30, "the relay to listen")

    with override_settings(RELAY_WAKEUP="notify"):
        order, _ = order_place(email="ann@example.org", lines=[LineRequest("MUG-1", 2)])

    wait_for(lambda: Order.objects.get(id=order.id).status == Order.Status.CONFIRMED, 20, "the order to be confirmed")
    order.refresh_from_db()
    assert [t.type for t in order.timeline.all()] == ["OrderPlaced", "StockReserved", "OrderConfirmed"]
