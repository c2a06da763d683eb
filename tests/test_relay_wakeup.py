"""How the relay and the consumers pace their rounds: wake-up by LISTEN/NOTIFY, and the linger after a partial round."""

from django.test import override_settings

from events.base import Line
from events.models import ProcessedEvent, StoredEvent
from shop.models import Order
from shop.services import order_place
from tests.pipeline import wait_for


def test_notify_wakes_the_relay_for_each_hop(pipeline, make_product):
    make_product("MUG-1", stock=5)
    # Poll only once in ten minutes: an order confirmed well within that proves each hop's NOTIFY woke the relay.
    # The relay publishes every event (no publish after commit), so every hop depends on its wake-up.
    env = {
        "RELAY_WAKEUP": "notify",
        "RELAY_NOTIFY_FALLBACK": "600",
        "RELAY_POLL_INTERVAL": "600",
        "EVENT_PUBLISH_AFTER_COMMIT": "0",
    }
    relay = pipeline.relay(**env)
    pipeline.workers(**env)
    wait_for(lambda: "wake-up by notify" in relay.tail(), 30, "the relay to listen")

    with override_settings(RELAY_WAKEUP="notify"):
        order = order_place(email="ann@example.org", lines=[Line("MUG-1", 2)])

    wait_for(lambda: Order.objects.get(id=order.id).status == Order.Status.CONFIRMED, 120, "the order to be confirmed")
    order.refresh_from_db()
    assert [t.type for t in order.timeline.all()] == ["OrderPlaced", "StockReserved", "OrderConfirmed"]


def test_lingering_relay_and_consumers_still_carry_every_order_once(pipeline, make_product):
    make_product("MUG-1", stock=40)
    # Long lingers: every round and batch after a partial one waits 50 ms, so orders placed meanwhile share it.
    env = {"RELAY_LINGER": "0.05", "EVENT_FETCH_LINGER": "0.05", "EVENT_PUBLISH_AFTER_COMMIT": "0"}
    pipeline.relay(**env)
    pipeline.workers(**env)
    orders = [order_place(email=f"c{i}@example.org", lines=[Line("MUG-1", 1)]).id for i in range(30)]
    orders += [order_place(email="big@example.org", lines=[Line("MUG-1", 20)]).id]

    wait_for(lambda: not Order.objects.filter(status=Order.Status.PENDING).exists(), 60, "every order final")
    statuses = [Order.objects.get(id=i).status for i in orders]
    assert statuses == [Order.Status.CONFIRMED] * 30 + [Order.Status.REJECTED]
    # Each of the 31 OrderPlaced and the 31 decisions was applied once by its consumer, each level too.
    assert ProcessedEvent.objects.filter(consumer="inventory").count() == 31
    decisions = StoredEvent.objects.filter(type__in=["StockReserved", "StockReservationRejected"])
    levels = StoredEvent.objects.filter(type="StockLevelChanged")
    shop = ProcessedEvent.objects.filter(consumer="shop")
    assert shop.filter(event_id__in=decisions.values("event_id")).count() == decisions.count() == 31
    assert shop.filter(event_id__in=levels.values("event_id")).count() == levels.count()
    assert shop.count() == decisions.count() + levels.count()
