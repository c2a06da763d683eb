"""Live stock and orders through real processes: inventory → relay → NATS → ASGI web process → websocket."""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack
from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from devstack.embedded import EmbeddedNats
from events.base import Line
from inventory.services import stock_receive
from shop import live
from shop.models import Order, StockLevel
from shop.services import order_place
from tests.pipeline import Pipeline, wait_for


def ws(base: str, path: str, origin: str | None = None, **kwargs):
    """Open a websocket to an ASGI web process, as a page of that site would (same Origin)."""
    url = urlparse(base)
    return connect(f"ws://{url.netloc}{path}", origin=origin or base, open_timeout=10, **kwargs)


def frame(sock, timeout: float = 30) -> dict:
    """Return the next frame, waiting for it at most ``timeout`` seconds (a deadline, not a latency bound)."""
    return json.loads(sock.recv(timeout=timeout))


def test_stock_socket_sends_the_current_level_then_each_change(pipeline, make_product):
    make_product("LIVE-1", stock=10)
    pipeline.start()
    base = pipeline.live()
    wait_for(lambda: StockLevel.objects.filter(sku="LIVE-1", version=1).exists(), message="the projection")
    with ws(base, "/ws/stock/") as sock:
        sock.send(json.dumps({"subscribe": ["LIVE-1", "UNKNOWN-1"]}))
        first = {f["sku"]: f for f in (frame(sock), frame(sock))}
        assert first["LIVE-1"] == {"sku": "LIVE-1", "available": 10, "stock_status": "in_stock", "version": 1}
        assert first["UNKNOWN-1"] == {"sku": "UNKNOWN-1", "available": 0, "stock_status": "sold_out", "version": 0}
        stock_receive(sku="LIVE-1", quantity=5)
        change = frame(sock)
        assert change == {"sku": "LIVE-1", "available": 15, "stock_status": "in_stock", "version": 2}


def test_bad_frames_get_an_error_frame_and_the_socket_stays_usable(pipeline, make_product, settings):
    make_product("LIVE-2", stock=3)
    pipeline.start()
    base = pipeline.live()
    bad = [
        "not json",
        "[1, 2]",
        '{"subscribe": []}',
        '{"subscribe": "LIVE-2"}',
        '{"subscribe": ["bad sku"]}',
        '{"subscribe": [42]}',
        json.dumps({"subscribe": [f"S-{i}" for i in range(settings.LIVE_MAX_SKUS + 1)]}),
        "[" * 100_000,
        b"\x00binary",
    ]
    with ws(base, "/ws/stock/", max_size=2**20) as sock:
        for text in bad:
            sock.send(text)
            answer = frame(sock)
            assert set(answer) == {"error"} and answer["error"]["code"], (text[:30], answer)
        sock.send(json.dumps({"subscribe": ["LIVE-2"]}))
        assert frame(sock)["sku"] == "LIVE-2"


def test_sockets_refuse_a_foreign_origin_an_anonymous_staff_client_and_an_unknown_order(pipeline):
    base = pipeline.live()
    with pytest.raises(InvalidStatus) as refused:
        ws(base, "/ws/stock/", origin="http://evil.example")
    assert refused.value.response.status_code == 403
    for path in ["/ws/staff/stock/", "/ws/orders/6f1f0f0e-7d4c-4c2b-9a59-0d9c7c0e4d11/", "/ws/nothing/"]:
        with pytest.raises(InvalidStatus):
            ws(base, path)


def session_cookie(username: str, *, is_staff: bool) -> dict[str, str]:
    """Log a new user in (a session in the database); return the Cookie header a browser of theirs would send."""
    user = get_user_model().objects.create_user(username, password=f"pw-{username}-1", is_staff=is_staff)
    client = Client()
    client.force_login(user)
    return {"Cookie": "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())}


def staff_frames(sock, count: int) -> dict[str, dict]:
    return {f["sku"]: f for f in (frame(sock) for _ in range(count))}


def projected(sku: str, version: int) -> None:
    wait_for(lambda: StockLevel.objects.filter(sku=sku, version=version).exists(), message=f"{sku} v{version}")


def test_staff_socket_sends_every_rows_level_on_connect_then_each_change(pipeline, make_product):
    make_product("LIVE-S1", stock=6)
    make_product("LIVE-S2", stock=2)
    pipeline.start()
    projected("LIVE-S1", 1)
    projected("LIVE-S2", 1)
    base = pipeline.live()  # started after the changes: what a socket gets first is read, not heard on NATS
    staff = session_cookie("clerk", is_staff=True)
    with ws(base, "/ws/staff/stock/", additional_headers=staff) as sock:
        first = staff_frames(sock, 2)
    assert first == {
        "LIVE-S1": {
            "sku": "LIVE-S1",
            "available": 6,
            "stock_status": "in_stock",
            "version": 1,
            "on_hand": 6,
            "reserved": 0,
        },
        "LIVE-S2": {
            "sku": "LIVE-S2",
            "available": 2,
            "stock_status": "low_stock",
            "version": 1,
            "on_hand": 2,
            "reserved": 0,
        },
    }

    stock_receive(sku="LIVE-S1", quantity=4)  # while no socket is open: a page that reconnects must see it
    projected("LIVE-S1", 2)
    with ws(base, "/ws/staff/stock/", additional_headers=staff) as sock:
        again = staff_frames(sock, 2)
        assert again["LIVE-S1"]["on_hand"] == 10 and again["LIVE-S1"]["version"] == 2
        stock_receive(sku="LIVE-S2", quantity=1)
        # Levels the socket already has may come again (the page keeps the newest): wait for the new one.
        deadline = time.monotonic() + 30
        while (change := frame(sock, timeout=30))["sku"] != "LIVE-S2" or change["version"] < 2:
            assert time.monotonic() < deadline, "no frame of the new level"
        assert change == {
            "sku": "LIVE-S2",
            "available": 3,
            "stock_status": "low_stock",
            "version": 2,
            "on_hand": 3,
            "reserved": 0,
        }


def test_staff_socket_refuses_a_logged_in_customer(pipeline):
    base = pipeline.live()
    with ws(base, "/ws/staff/stock/", additional_headers=session_cookie("clerk", is_staff=True)):
        pass  # the same login, as staff, is let in
    with pytest.raises(InvalidStatus) as refused:
        ws(base, "/ws/staff/stock/", additional_headers=session_cookie("ann", is_staff=False))
    assert refused.value.response.status_code == 403


def test_order_socket_follows_an_order_and_ends_with_the_timeline_the_database_holds(pipeline, make_product):
    make_product("LIVE-3", stock=5)
    pipeline.relay()  # the workers start once the socket is open, so it sees every step
    base = pipeline.live()
    order = order_place(email="ann@example.org", lines=[Line("LIVE-3", 2)])
    seen: list[dict] = []
    with ws(base, f"/ws/orders/{order.id}/") as sock:
        snapshot = frame(sock)
        assert snapshot["type"] == "snapshot" and snapshot["timeline"][0]["type"] == "OrderPlaced"
        assert snapshot["status"] == "pending"
        pipeline.workers()
        while not (snapshot["type"] == "snapshot" and snapshot["status"] == "confirmed"):
            snapshot = frame(sock, timeout=30)
            seen.append(snapshot)
    stored = Order.objects.get(id=order.id)
    assert stored.status == "confirmed"
    expected = [
        {"type": t.type, "at": t.at.isoformat(), "event_id": str(t.event_id), "detail": t.detail}
        for t in stored.timeline.all()
    ]
    assert snapshot["timeline"] == expected
    assert [e["type"] for e in expected] == ["OrderPlaced", "StockReserved", "OrderConfirmed"]
    assert {"StockReserved", "OrderConfirmed"} <= {m["entry"]["type"] for m in seen if m["type"] == "event"}


def test_two_asgi_processes_each_push_every_change(pipeline, make_product):
    make_product("LIVE-4", stock=10)
    pipeline.start()
    bases = [pipeline.live(), pipeline.live()]
    wait_for(lambda: StockLevel.objects.filter(sku="LIVE-4").exists(), message="the projection")
    with ExitStack() as stack:
        socks = [stack.enter_context(ws(base, "/ws/stock/")) for base in bases]
        for sock in socks:
            sock.send(json.dumps({"subscribe": ["LIVE-4"]}))
            assert frame(sock)["available"] == 10
        stock_receive(sku="LIVE-4", quantity=1)
        assert [frame(sock)["available"] for sock in socks] == [11, 11]


@pytest.fixture
def own_nats(tmp_path):
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def test_the_feed_forgets_its_cache_while_nats_is_away_and_follows_again_after(transactional_db, own_nats, settings):
    """A web process cannot know what it missed while disconnected: it reads the projection until it is back."""
    import asyncio

    import nats

    from events.base import encode, new_envelope
    from shop.inbound import StockLevelChanged

    settings.NATS_URL = own_nats.url
    cache = live.NearCache(miss_ttl=60)
    feed = live.Feed(cache)
    thread = threading.Thread(target=asyncio.run, args=(feed.run(),), daemon=True)
    thread.start()

    async def publish(version: int) -> None:
        event = StockLevelChanged(sku="F-1", on_hand=version, reserved=0, available=version, version=version)
        nc = await nats.connect(own_nats.url)
        await nc.publish(
            event.subject(), encode(new_envelope(event, correlation_id=None, causation_id=None), event.to_data())
        )
        await nc.close()

    try:
        assert feed.ready.wait(10)
        asyncio.run(publish(3))
        wait_for(lambda: cache.get_many(["F-1"])["F-1"].version == 3, 5, "the level in the near cache")
        asyncio.run(publish(2))  # older: ignored
        wait_for(lambda: cache.ignored == 1, 5, "the older level to be ignored")
        assert cache.get_many(["F-1"])["F-1"].available == 3
        own_nats.stop()
        wait_for(lambda: not cache.enabled, 10, "the cache to stop caching")
        assert len(cache) == 0
        assert cache.get_many(["F-1"])["F-1"].version == 0  # from the (empty) projection, not remembered
        assert len(cache) == 0
        own_nats.start()
        wait_for(lambda: cache.enabled, 30, "the feed to reconnect")
        asyncio.run(publish(4))
        wait_for(lambda: cache.get_many(["F-1"])["F-1"].version == 4, 5, "the level after reconnecting")
        assert cache.hits > 0 and cache.misses > 0 and cache.staleness_count == 3
    finally:
        feed.stop()
        thread.join(10)


def test_after_a_nats_outage_every_socket_is_sent_its_levels_again(transactional_db, own_nats, make_product, tmp_path):
    """The process may have missed changes while NATS was away: its sockets get the current levels anew."""
    make_product("LIVE-5", stock=0)
    StockLevel.objects.create(
        sku="LIVE-5",
        on_hand=4,
        reserved=0,
        available=4,
        version=3,
        changed_at=timezone.now(),
        updated_at=timezone.now(),
    )
    staff = session_cookie("clerk", is_staff=True)
    pipe = Pipeline(tmp=tmp_path, nats_url=own_nats.url)
    try:
        base = pipe.live()
        with ws(base, "/ws/stock/") as sock, ws(base, "/ws/staff/stock/", additional_headers=staff) as staff_sock:
            sock.send(json.dumps({"subscribe": ["LIVE-5"]}))
            assert frame(sock)["version"] == 3
            assert frame(staff_sock)["version"] == 3
            own_nats.stop()
            StockLevel.objects.filter(sku="LIVE-5").update(on_hand=2, available=2, version=4)  # what it missed
            own_nats.start()
            assert frame(sock, timeout=30) == {
                "sku": "LIVE-5",
                "available": 2,
                "stock_status": "low_stock",
                "version": 4,
            }
            assert frame(staff_sock, timeout=30) == {
                "sku": "LIVE-5",
                "available": 2,
                "stock_status": "low_stock",
                "version": 4,
                "on_hand": 2,
                "reserved": 0,
            }
    finally:
        pipe.stop()


def test_metrics_count_open_sockets_near_cache_reads_and_order_pushes(pipeline, make_product):
    from tests.test_monitoring import scrape_until, value

    make_product("LIVE-6", stock=10)
    make_product("LIVE-7", stock=5)
    pipeline.relay()  # the workers start once the order's socket is open, so each step is pushed to it
    base = pipeline.live()
    order = order_place(email="ann@example.org", lines=[Line("LIVE-7", 1)])
    with ws(base, f"/ws/orders/{order.id}/") as sock:
        assert frame(sock)["status"] == "pending"
        pipeline.workers()
        wait_for(lambda: frame(sock, timeout=30).get("status") == "confirmed", 30, "the confirmed snapshot")
    # The last hop of the flow (event committed → pushed on the order's socket), per event type.
    steps = ("StockReserved", "OrderConfirmed")
    pushed = scrape_until(
        base,
        lambda s: all(value(s, "shop_order_push_lag_seconds_count", type=t) >= 1 for t in steps),
        message="the order's events pushed",
    )
    assert 0 < value(pushed, "shop_order_push_lag_seconds_sum", type="OrderConfirmed") < 30

    wait_for(lambda: StockLevel.objects.filter(sku="LIVE-6").exists(), message="the projection")
    with ws(base, "/ws/stock/") as sock:
        sock.send(json.dumps({"subscribe": ["LIVE-6"]}))
        assert frame(sock)["available"] == 10
        scrape_until(base, lambda s: value(s, "websocket_connections") == 1, message="one open socket")
        stock_receive(sku="LIVE-6", quantity=1)
        assert frame(sock)["available"] == 11
        with ws(base, "/ws/stock/") as second:  # its first read finds the change in the cache
            second.send(json.dumps({"subscribe": ["LIVE-6"]}))
            assert frame(second)["available"] == 11
            second.send(json.dumps({"subscribe": ["NEVER-STOCKED"]}))  # no level of it anywhere: a miss
            assert frame(second)["available"] == 0
            samples = scrape_until(
                base,
                lambda s: (
                    value(s, "stock_cache_hits_total") >= 1
                    and value(s, "stock_cache_misses_total") >= 1
                    and value(s, "websocket_connections") == 2
                ),
                message="a near-cache hit",
            )
    assert value(samples, "stock_cache_misses_total") >= 1
    assert value(samples, "stock_cache_staleness_seconds_count") >= 1
    scrape_until(base, lambda s: value(s, "websocket_connections") == 0, message="the socket closed")


def test_a_process_hears_order_events_only_while_one_of_its_sockets_follows_an_order(nats_url, monkeypatch):
    """No order page open: not subscribed to the order subjects at all; one open: subscribed before its snapshot."""
    import asyncio

    import nats
    from channels.layers import InMemoryChannelLayer

    from events.base import encode, new_envelope
    from shop.events import OrderConfirmed
    from shop.inbound import StockLevelChanged

    order_id = "6f9d2c1e-0000-4000-8000-00000000f011"

    async def scenario() -> None:
        layer = InMemoryChannelLayer()
        feed = live.Feed(live.NearCache(), layer)
        monkeypatch.setattr(live._current(), "feed", feed)
        running = asyncio.get_running_loop().create_task(feed.run())
        nc = await nats.connect(nats_url)

        async def publish(event) -> None:
            envelope = new_envelope(event, correlation_id=order_id, causation_id=None)
            await nc.publish(event.subject(), encode(envelope, event.to_data()))
            await nc.flush()

        try:
            async with asyncio.timeout(20):
                while not feed.ready.is_set():
                    await asyncio.sleep(0.01)
                assert feed._order_subs == []  # no order page open here: nothing of the orders on the wire
                page, levels = await layer.new_channel(), await layer.new_channel()
                await layer.group_add(live.order_group(order_id), page)
                await layer.group_add(live.stock_group("O-1"), levels)

                await live.watch_order(order_id)
                assert len(feed._order_subs) == len(live.ORDER_SUBJECTS)
                await publish(OrderConfirmed(order_id=order_id))
                assert (await layer.receive(page))["entry"]["type"] == "OrderConfirmed"

                await live.unwatch_order(order_id)
                assert feed._order_subs == []
                # An order event, then a stock change from the same connection: once the change is here,
                # the order event would have been here before it had the process still been subscribed.
                await publish(OrderConfirmed(order_id=order_id))
                await publish(StockLevelChanged(sku="O-1", on_hand=1, reserved=0, available=1, version=1))
                assert (await layer.receive(levels))["level"]["sku"] == "O-1"
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0):
                        await layer.receive(page)
        finally:
            feed.stop()
            await running
            await nc.close()

    asyncio.run(scenario())
