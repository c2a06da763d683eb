"""How soon a consumer starts on a message the server holds: never held back waiting for a full batch."""

from __future__ import annotations

import asyncio
import random
import time

import nats
import pytest
from django.db import connection
from nats.js import api

from events.base import Line
from events.pull import PullError, PullFeed
from shop.models import Order
from shop.services import order_cancel, order_place
from tests.pipeline import run_async, wait_for

# Far above any healthy wait, even on a loaded two-core box; far below a batch held back for the rest of it.
HEALTHY_START = 0.25

# For each event a consumer applied: the consumer, the event's type and id, and when its receipt was
# written (at the start of the batch).
RECEIPTS = """
    SELECT r.consumer, e.type, e.event_id::text, r.processed_at
    FROM events_processedevent r JOIN events_storedevent e ON e.event_id = r.event_id
"""


async def stored_at(nats_url: str, *streams: str) -> dict[str, object]:
    """Return {event id: when the server stored it} for every message of ``streams`` (JetStream's own time)."""
    nc = await nats.connect(nats_url.split(",")[0])
    js = nc.jetstream()
    found = {}
    try:
        for stream in streams:
            state = (await js.stream_info(stream)).state
            for seq in range(state.first_seq, state.last_seq + 1):
                msg = await js.get_msg(stream, seq)
                found[msg.headers["Nats-Msg-Id"]] = msg.time
    finally:
        await nc.close()
    return found


def test_with_traffic_on_every_consumer_a_ready_message_is_started_at_once(pipeline, make_product):
    for i in range(4):
        make_product(f"TEA-{i}", stock=500)
    pipeline.relay()
    workers = pipeline.workers()
    for name in ("inventory", "shop"):
        wait_for(lambda name=name: f"consuming {name} from" in workers.tail(), 30, f"{name} to consume")
    rng = random.Random(7)
    orders = []
    # About fifteen seconds of a gentle mix: orders (inventory), their reservations (shop), the stock
    # levels they move (shop too), and cancels (inventory, then shop): every consumer
    # of the worker process has traffic, with idle gaps short and long (past a second, when
    # pull requests expire) between messages.
    for n in range(30):
        lines = [Line(f"TEA-{rng.randrange(4)}", rng.randint(1, 3))]
        orders.append(order_place(email=f"c{n}@example.org", lines=lines).id)
        if n % 5 == 4:
            oid = orders[-2]
            wait_for(lambda oid=oid: Order.objects.get(id=oid).status != Order.Status.PENDING, 20, "an order to end")
            order_cancel(order_id=str(oid))
        time.sleep(rng.choice([0.0, 0.003, 0.05, 0.3, 1.05, 1.2]))

    wait_for(lambda: not Order.objects.filter(status=Order.Status.PENDING).exists(), 30, "every order to end")
    with connection.cursor() as cursor:
        cursor.execute(RECEIPTS)
        receipts = cursor.fetchall()
    # From the server's storing of each message to the consumer's start on it: the wait at the server.
    at_server = run_async(stored_at(pipeline.nats_url, "SHOP", "INVENTORY"))
    waits = [(c, t, (started - at_server[event_id]).total_seconds()) for c, t, event_id, started in receipts]
    consumers = {consumer for consumer, _, _ in waits}
    assert consumers == {"inventory", "shop"}
    slow = sorted(((float(s), c, t) for c, t, s in waits if float(s) > HEALTHY_START), reverse=True)
    assert not slow, f"{len(slow)} of {len(waits)} messages waited at the server; slowest: {slow[:5]}"


async def _feed_case(nats_url: str, body) -> None:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        await js.delete_stream("PULLTEST")
    except nats.js.errors.NotFoundError:
        pass
    await js.add_stream(name="PULLTEST", subjects=["pulltest.>"])
    await js.add_consumer("PULLTEST", api.ConsumerConfig(durable_name="d", name="d", ack_policy=api.AckPolicy.EXPLICIT))
    feed = await PullFeed(nc, "PULLTEST", "d", expires=2.0).start()
    try:
        await body(js, feed)
    finally:
        await feed.close()
        try:
            await js.delete_stream("PULLTEST")
        except nats.js.errors.NotFoundError:
            pass
        await nc.close()


def test_a_batch_is_what_the_server_holds_and_a_lone_message_comes_alone(nats_url):
    async def body(js, feed):
        for i in range(30):
            await js.publish("pulltest.a", str(i).encode())
        first = await feed.next_batch(100)
        assert [m.data for m in first] == [str(i).encode() for i in range(30)]
        for m in first:
            await m.ack()
        # Nothing at the server: the feed waits for the next message and hands it over alone.
        later = asyncio.create_task(feed.next_batch(100))
        await asyncio.sleep(0.2)
        assert not later.done()
        await js.publish("pulltest.a", b"lone")
        lone = await asyncio.wait_for(later, 1.5)  # the request expires after 2 s: not what ended this
        assert [m.data for m in lone] == [b"lone"]
        # More than a batch at the server: batches of the size asked for, in order.
        for i in range(25):
            await js.publish("pulltest.a", str(i).encode())
        sizes = [len(await feed.next_batch(10)) for _ in range(3)]
        assert sizes == [10, 10, 5]

    run_async(_feed_case(nats_url.split(",")[0], body))


def test_a_deleted_consumer_is_an_error_not_a_wait(nats_url):
    async def body(js, feed):
        await js.delete_consumer("PULLTEST", "d")
        with pytest.raises(PullError):
            await asyncio.wait_for(feed.next_batch(10), 1.5)

    run_async(_feed_case(nats_url.split(",")[0], body))
