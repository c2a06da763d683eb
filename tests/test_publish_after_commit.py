"""Publish after commit: each process publishes what it commits; the relay sweeps up after a crash.

The window under test is between a transaction's commit and its publisher's
publish: a process killed in it must lose nothing (the rows are still in the
outbox, and the relay publishes them), and a publisher that publishes after the
relay already did must double nothing (JetStream keeps one copy per event id).
``EVENT_PUBLISH_DELAY`` holds the window open for as long as the test needs.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from events.models import ProcessedEvent, StoredEvent
from shop.models import Order
from tests.pipeline import pending, run_async, stream_messages, wait_for
from tests.test_faults import all_final, assert_each_effect_once
from tests.test_monitoring import scrape_until, value

pytestmark = pytest.mark.pipeline


def start_workers(pipeline, **env: str):
    """Start a worker process and wait until it consumes (it creates the streams the web publishes to)."""
    workers = pipeline.workers(**env)
    wait_for(lambda: "consuming shop from" in workers.log_text(), 30, "the worker to consume")
    return workers


def place_over_http(base: str, count: int, sku: str = "A") -> list[str]:
    with httpx.Client(timeout=30) as client:
        answers = [
            client.post(
                f"{base}/api/orders", json={"email": f"c{i}@example.org", "lines": [{"sku": sku, "quantity": 1}]}
            )
            for i in range(count)
        ]
    assert [a.status_code for a in answers] == [202] * count
    return [a.json()["id"] for a in answers]


def assert_each_event_once_in_the_streams(nats_url: str, after_seq: int = 0) -> None:
    """Every event stored after ``after_seq`` is in its stream exactly once; inventory applied each order once."""
    events = StoredEvent.objects.filter(seq__gt=after_seq)
    wait_for(lambda: not events.filter(unpublished__isnull=False).exists(), 30, "every event published")
    shop = events.filter(subject__startswith="shop.").count()
    inventory = events.filter(subject__startswith="inventory.").count()
    assert run_async(stream_messages(nats_url, "SHOP")) == shop
    assert run_async(stream_messages(nats_url, "INVENTORY")) == inventory
    assert (
        ProcessedEvent.objects.filter(consumer="inventory").count()
        == StoredEvent.objects.filter(type="OrderPlaced").count()
    )


# A worker sends its batches' events from its runner's loop (the default), or through a publisher thread.
WORKER_PUBLISHING = pytest.mark.parametrize("runner_publishes", ["1", "0"], ids=["runner", "publisher-thread"])


@WORKER_PUBLISHING
def test_web_and_workers_publish_what_they_commit_with_no_relay_running(pipeline, make_product, runner_publishes):
    make_product("A", stock=100)
    # The stock received above was recorded by this test, which has no publisher: with no relay,
    # those events stay in the outbox. Everything after them is the processes' own.
    before = StoredEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    start_workers(pipeline, EVENT_RUNNER_PUBLISHES=runner_publishes)
    base = pipeline.web(1)
    place_over_http(base, 10)

    all_final(30)
    assert Order.objects.filter(status=Order.Status.CONFIRMED).count() == 10
    # No relay ran: the web published OrderPlaced, the worker StockReserved and OrderConfirmed.
    assert_each_event_once_in_the_streams(pipeline.nats_url, after_seq=before)
    assert_each_effect_once()


@WORKER_PUBLISHING
def test_a_worker_killed_between_commit_and_publish_loses_nothing(pipeline, make_product, runner_publishes):
    make_product("A", stock=100)
    # This worker holds every event for a minute: it commits (and acks) reservations it never publishes.
    doomed = start_workers(pipeline, EVENT_PUBLISH_DELAY="60", EVENT_RUNNER_PUBLISHES=runner_publishes)
    base = pipeline.web(1)
    orders = place_over_http(base, 8)
    wait_for(lambda: StoredEvent.objects.filter(type="StockReserved").count() == 8, 30, "8 reservations committed")
    assert not StoredEvent.objects.filter(type="StockReserved", unpublished__isnull=True).exists()
    doomed.kill()  # in the window: committed, acked, never published

    pipeline.relay(RELAY_SWEEP_AGE="1")  # sweeps what no publisher published, once it is a second old
    pipeline.workers()
    all_final(60)
    assert set(Order.objects.filter(status=Order.Status.CONFIRMED).values_list("id", flat=True)) == {
        *map(uuid.UUID, orders)
    }
    assert_each_event_once_in_the_streams(pipeline.nats_url)
    assert_each_effect_once()


def test_a_publisher_slower_than_the_relay_doubles_nothing(pipeline, make_product):
    make_product("A", stock=100)
    # The web's publisher waits 5 s; the relay takes rows a tenth of a second old: both publish each OrderPlaced,
    # the relay first (5 s leaves room for a loaded box: were the web first, the relay would publish nothing).
    start_workers(pipeline)
    base = pipeline.web(1, EVENT_PUBLISH_DELAY="5")
    pipeline.relay(RELAY_SWEEP_AGE="0.1", RELAY_POLL_INTERVAL="0.05")
    place_over_http(base, 6)
    all_final(30)
    # The late publisher publishes its copies; JetStream answers that it has them already.
    scrape_until(base, lambda s: value(s, "events_publish_duplicates_total") >= 6, 30, "the web's late copies")
    assert_each_event_once_in_the_streams(pipeline.nats_url)
    assert_each_effect_once()


def test_a_worker_killed_after_handing_off_what_it_never_published_doubles_nothing(pipeline, make_product):
    make_product("A", stock=100)
    # This worker publishes nothing for a minute: its orders can only be confirmed by the hand-off in process
    # (the inventory's StockReserved straight to the shop's consumer), and the stream gets no copy before the kill.
    doomed = start_workers(pipeline, EVENT_PUBLISH_DELAY="60")
    base = pipeline.web(1)
    orders = place_over_http(base, 8)
    wait_for(lambda: Order.objects.filter(status=Order.Status.CONFIRMED).count() == 8, 30, "8 orders confirmed")
    assert StoredEvent.objects.filter(type__in=["StockReserved", "OrderConfirmed"], unpublished__isnull=False).count()
    doomed.kill()  # in the window: applied by hand-off, never published, the copies still to come

    pipeline.relay(RELAY_SWEEP_AGE="1")  # publishes the copies; a new worker gets them and meets their receipts
    pipeline.workers()
    assert_each_event_once_in_the_streams(pipeline.nats_url)
    wait_for(lambda: run_async(pending(pipeline.nats_url, "INVENTORY", "shop")) == (0, 0), 30, "the copies settled")
    assert set(Order.objects.filter(status=Order.Status.CONFIRMED).values_list("id", flat=True)) == {
        *map(uuid.UUID, orders)
    }
    assert StoredEvent.objects.filter(type="OrderConfirmed").count() == 8
    # Every event the shop's consumer takes (not StockReceived), applied once: by hand-off, or from the stream.
    taken = StoredEvent.objects.filter(subject__startswith="inventory.").exclude(type="StockReceived")
    assert ProcessedEvent.objects.filter(consumer="shop").count() == taken.count()
    assert_each_effect_once()
