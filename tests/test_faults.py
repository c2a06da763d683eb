"""Nothing lost, nothing doubled, nothing oversold: the guarantees of DESIGN §5 under faults.

Each test runs the real relay and worker processes against real NATS and
PostgreSQL, breaks something the way production breaks, and checks the end
state: every order final, each effect applied once.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import nats
import psycopg
import pytest
from django.db import connection
from django.db.models import Sum

from devstack.embedded import EmbeddedNats
from events.base import Line
from events.bus import publish_rows
from events.models import DeadLetter, StoredEvent
from events.pg import database_conninfo
from events.relay import CLAIM, Relay
from inventory.models import Reservation, StockItem
from shop.models import Order, OrderLine
from shop.services import order_place
from tests.pipeline import Pipeline, pending, publish_raw, reset_streams, run_async, stream_messages, wait_for

pytestmark = pytest.mark.pipeline


def place_many(count: int, sku: str = "A", quantity: int = 1) -> list[str]:
    return [str(order_place(email=f"c{i}@example.org", lines=[Line(sku, quantity)]).id) for i in range(count)]


def all_final(timeout: float = 60) -> None:
    wait_for(lambda: not Order.objects.filter(status=Order.Status.PENDING).exists(), timeout, "every order final")


def assert_each_effect_once() -> None:
    """Stock held equals what confirmed orders asked for, and each order was decided once."""
    confirmed = Order.objects.filter(status=Order.Status.CONFIRMED)
    asked = OrderLine.objects.filter(order__in=confirmed).aggregate(n=Sum("quantity"))["n"] or 0
    held = StockItem.objects.aggregate(n=Sum("reserved"))["n"] or 0
    assert held == asked
    assert Reservation.objects.count() == Order.objects.count()
    decisions = StoredEvent.objects.filter(type__in=["StockReserved", "StockReservationRejected"]).count()
    assert decisions == Order.objects.count()
    for item in StockItem.objects.all():
        assert 0 <= item.reserved <= item.on_hand


def test_the_same_event_delivered_twice_has_one_effect(pipeline, make_product):
    make_product("A", stock=10)
    pipeline.start()
    (order_id,) = place_many(1, quantity=3)
    all_final()

    # A producer retries with a new message id: the stream now holds the event twice.
    payload = bytes(StoredEvent.objects.get(type="OrderPlaced").payload)
    run_async(publish_raw(pipeline.nats_url, "shop.order.placed", payload, msg_id=str(uuid.uuid4())))
    wait_for(lambda: run_async(pending(pipeline.nats_url, "SHOP", "inventory")) == (0, 0), message="the redelivery")

    assert StockItem.objects.get(sku="A").reserved == 3
    assert StoredEvent.objects.filter(type="StockReserved").count() == 1
    assert Order.objects.get(id=order_id).status == Order.Status.CONFIRMED


def lock_waits() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0]


def test_killing_a_worker_mid_batch_loses_and_doubles_nothing(pipeline, make_product):
    make_product("A", stock=1000)
    make_product("B", stock=150)
    place_many(100, sku="A")
    place_many(150, sku="B", quantity=2)  # only 75 of these fit
    place_many(50, sku="A")
    # Hold B's stock row so the worker is stopped in the middle of a batch, inside its transaction.
    blocker = psycopg.connect(**database_conninfo())
    blocker.execute("SELECT * FROM inventory_stockitem WHERE sku = 'B' FOR UPDATE")
    try:
        pipeline.relay()
        first = pipeline.workers(EVENT_BATCH_SIZE="10")
        # A batch may hold the last A orders and the first B ones: it blocks before committing any of them.
        wait_for(lambda: Order.objects.filter(lines__sku="A").exclude(status="pending").count() >= 50, 60, "A")
        wait_for(lambda: lock_waits() > 0, 30, "the worker to wait inside its batch")

        first.kill()  # fetched, partly applied, not committed, not acked
    finally:
        blocker.rollback()
        blocker.close()
    pipeline.workers()
    all_final()

    assert_each_effect_once()
    assert Order.objects.filter(status=Order.Status.CONFIRMED, lines__sku="B").count() == 75
    assert Order.objects.filter(status=Order.Status.CONFIRMED, lines__sku="A").count() == 150


def test_concurrent_http_orders_never_oversell(pipeline, make_product):
    make_product("HOT", stock=50)
    pipeline.relay()
    pipeline.workers()
    pipeline.workers()  # two workers compete for the same durable consumers
    base = pipeline.web()

    def buy(i: int) -> int:
        body = {"email": f"fan{i}@example.org", "lines": [{"sku": "HOT", "quantity": 1}]}
        return client.post(f"{base}/api/orders", json=body).status_code

    with httpx.Client(limits=httpx.Limits(max_connections=64), timeout=30) as client, ThreadPoolExecutor(64) as pool:
        statuses = list(pool.map(buy, range(240)))
    assert statuses == [202] * 240
    all_final()

    assert Order.objects.filter(status=Order.Status.CONFIRMED).count() == 50
    assert Order.objects.filter(status=Order.Status.REJECTED).count() == 190
    item = StockItem.objects.get(sku="HOT")
    assert (item.on_hand, item.reserved, item.available) == (50, 50, 0)
    assert_each_effect_once()


def test_relay_crash_between_publish_and_mark_published_duplicates_nothing(pipeline, make_product):
    make_product("A", stock=100)
    place_many(20)

    async def publish_then_crash() -> int:
        """Do what the relay does, then die before marking the rows published."""
        nc = await nats.connect(pipeline.nats_url)
        js = nc.jetstream()
        relay = Relay()
        async with await psycopg.AsyncConnection.connect(**database_conninfo()) as db, db.transaction():
            rows = await (await db.execute(CLAIM, [1000])).fetchall()
            from events import bus

            await bus.ensure_streams(js)
            acked = (await publish_rows(js, rows, relay.max_in_flight, relay.publish_timeout, nc.max_payload)).acked
            raise psycopg.Rollback  # the crash: the outbox rows stay
        await nc.close()
        return len(acked)

    run_async(publish_then_crash())
    assert StoredEvent.objects.filter(unpublished__isnull=False).count() == StoredEvent.objects.count()
    published_before = run_async(stream_messages(pipeline.nats_url, "SHOP"))
    assert published_before == 20

    pipeline.start()  # the restarted relay publishes every row again
    all_final()
    wait_for(lambda: not StoredEvent.objects.filter(unpublished__isnull=False).exists(), message="outbox empty")

    orders = Order.objects.count()
    shop_events = StoredEvent.objects.filter(subject__startswith="shop.").count()
    assert run_async(stream_messages(pipeline.nats_url, "SHOP")) == shop_events == orders * 2  # placed + confirmed
    assert_each_effect_once()


def order_placed_raw(order_id: str, lines: list) -> bytes:
    """Return an OrderPlaced as a misbehaving producer might publish it, bypassing the shop's types."""
    body = {
        "event_id": str(uuid.uuid4()),
        "type": "OrderPlaced",
        "version": 1,
        "occurred_at": "2026-01-01T00:00:00+00:00",
        "aggregate_id": order_id,
        "correlation_id": order_id,
        "causation_id": None,
        "data": {"order_id": order_id, "lines": lines},
    }
    return json.dumps(body).encode()


def test_a_malformed_message_is_dead_lettered_while_later_orders_complete(pipeline, make_product):
    make_product("A", stock=100)
    pipeline.extra_env["EVENT_MAX_DELIVER"] = "3"
    pipeline.start()
    run_async(publish_raw(pipeline.nats_url, "shop.order.placed", b"{not json", msg_id="poison-1"))
    # A line is typed: one whose quantity is no whole number above zero cannot be decoded, so it is
    # dead-lettered at once, as garbage is, and the handler never sees it.
    for quantity in ["many", 0, -5, 1.5, True]:
        raw = order_placed_raw(str(uuid.uuid4()), [{"sku": "A", "quantity": quantity}])
        run_async(publish_raw(pipeline.nats_url, "shop.order.placed", raw))
    # Well formed, decodable, and still failing in the handler (an order id that is no UUID): it is
    # retried until its deliveries run out, then dead-lettered.
    run_async(
        publish_raw(
            pipeline.nats_url, "shop.order.placed", order_placed_raw("not-a-uuid", [{"sku": "A", "quantity": 1}])
        )
    )
    place_many(5)

    all_final()
    letters = wait_for(lambda: list(DeadLetter.objects.order_by("id")) if DeadLetter.objects.count() == 7 else None)

    assert Order.objects.filter(status=Order.Status.CONFIRMED).count() == 5
    assert StockItem.objects.get(sku="A").reserved == 5  # the five orders' units, nothing of the bad lines
    undecodable = [d for d in letters if "cannot decode" in d.error]
    assert [(d.consumer, d.deliveries) for d in undecodable] == [("inventory", 1)] * 6
    assert sum("quantity must be a whole number above zero" in d.error for d in undecodable) == 5
    (failing,) = [d for d in letters if d not in undecodable]
    assert (failing.consumer, failing.deliveries) == ("inventory", 3) and "not-a-uuid" in failing.error
    wait_for(lambda: run_async(pending(pipeline.nats_url, "SHOP", "inventory")) == (0, 0), message="nothing pending")


def ready(base: str) -> int:
    """Return the status of the web's readiness probe."""
    return httpx.get(f"{base}/readyz", timeout=10).status_code


@pytest.fixture
def own_nats(tmp_path):
    """A nats-server this test may stop and start again (same port, same data)."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def test_orders_are_accepted_while_nats_is_down_and_complete_when_it_is_back(
    transactional_db, own_nats, make_product, tmp_path
):
    make_product("A", stock=100)
    run_async(reset_streams(own_nats.url))
    pipe = Pipeline(tmp=tmp_path, nats_url=own_nats.url)
    try:
        pipe.start()
        base = pipe.web()
        own_nats.stop()
        assert ready(base) == 503

        responses = [
            httpx.post(
                f"{base}/api/orders", json={"email": f"d{i}@example.org", "lines": [{"sku": "A", "quantity": 1}]}
            )
            for i in range(10)
        ]
        assert [r.status_code for r in responses] == [202] * 10
        assert StoredEvent.objects.filter(type="OrderPlaced", unpublished__isnull=False).count() == 10

        own_nats.start()
        all_final(timeout=90)
        # Waited for: its probe of NATS gives up after a second, which a loaded box can take.
        wait_for(lambda: ready(base) == 200, 30, "the web to be ready again")
        assert Order.objects.filter(status=Order.Status.CONFIRMED).count() == 10
        assert_each_effect_once()
    finally:
        pipe.stop()


def test_two_relays_at_once_publish_each_event_once(pipeline, make_product):
    make_product("A", stock=1000)
    place_many(200)
    pipeline.relay()
    pipeline.relay()
    pipeline.workers()

    all_final()
    wait_for(lambda: not StoredEvent.objects.filter(unpublished__isnull=False).exists(), message="outbox drained")

    # Each SHOP event is in the stream once: OrderPlaced and OrderConfirmed of every order.
    assert run_async(stream_messages(pipeline.nats_url, "SHOP")) == 400
    assert_each_effect_once()


def test_two_workers_on_a_backlog_of_overlapping_orders_never_deadlock(pipeline, make_product):
    """Each batch locks all its stock rows at once in SKU order, so competing workers cannot lock in a cycle."""
    import random

    skus = [f"D{i}" for i in range(6)]
    for sku in skus:
        make_product(sku, stock=1000)
    rng = random.Random(7)
    for i in range(600):  # three SKUs per order, in any order: a batch's orders overlap every way
        lines = [Line(sku, 1) for sku in rng.sample(skus, 3)]
        order_place(email=f"d{i}@example.org", lines=lines)
    pipeline.relay()
    workers = [pipeline.workers(), pipeline.workers()]

    all_final(timeout=120)

    assert_each_effect_once()
    logs = "\n".join(w.log_path.read_text(errors="replace") for w in workers)
    assert "deadlock detected" not in logs
