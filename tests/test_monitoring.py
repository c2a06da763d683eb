"""Metrics through the real processes: what /metrics shows while orders flow, stall and drain.

The relay, the workers and the web write their samples to the Pipeline's
PROMETHEUS_MULTIPROC_DIR; the web's /metrics adds them up, with the outbox
figures read from PostgreSQL and JetStream's pending counts sampled by the relay.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from events import metrics
from shop.models import Order
from tests.pipeline import wait_for

pytestmark = pytest.mark.pipeline


def scrape(base: str) -> dict[tuple[str, frozenset], float]:
    """Return every sample of /metrics by (name, labels)."""
    response = httpx.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    """Sum the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def scrape_until(base: str, predicate, timeout: float = 20, message: str = "the figures"):
    """Scrape until ``predicate(samples)`` holds; return those samples."""

    def attempt():
        samples = scrape(base)
        return samples if predicate(samples) else None

    return wait_for(attempt, timeout, message, interval=0.2)


def pending(samples, durable: str) -> float:
    return value(samples, "events_jetstream_pending_messages", durable=durable) + value(
        samples, "events_jetstream_ack_pending_messages", durable=durable
    )


def place(base: str, sku: str = "A", quantity: int = 1) -> str:
    body = {"email": "m@example.org", "lines": [{"sku": sku, "quantity": quantity}]}
    response = httpx.post(f"{base}/api/orders", json=body, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_confirmed_order_moves_the_counters_and_the_latency_histogram(pipeline, make_product):
    make_product("A", stock=10)
    pipeline.start()
    base = pipeline.web()
    before = scrape(base)

    order_id = place(base)
    wait_for(lambda: Order.objects.get(id=order_id).status == Order.Status.CONFIRMED, message="the confirmation")

    after = scrape_until(
        base,
        lambda s: (
            value(s, "shop_order_latency_seconds_count", outcome="confirmed") == 1
            and value(s, "events_jetstream_sampled_timestamp_seconds") > 0
            and pending(s, "inventory") == 0
            and pending(s, "shop") == 0
        ),
        message="the figures of one confirmed order",
    )
    assert (
        value(after, "events_recorded_total", type="OrderPlaced")
        - value(before, "events_recorded_total", type="OrderPlaced")
        == 1
    )
    assert value(after, "events_published_total", type="OrderPlaced") == 1
    assert value(after, "events_published_total", type="OrderConfirmed") == 1
    assert value(after, "events_consumed_total", consumer="inventory", type="OrderPlaced") == 1
    assert value(after, "events_consumed_total", consumer="shop", type="StockReserved") == 1
    assert value(after, "events_handler_duration_seconds_count", consumer="inventory") == 1
    assert value(after, "events_relay_lag_seconds_count", type="OrderPlaced") == 1
    assert value(after, "events_queue_wait_seconds_count", consumer="inventory") >= 1
    assert value(after, "events_batch_size_count", consumer="inventory") >= 1
    assert value(after, "http_requests_total", method="POST", route="api/orders", status="202") == 1
    assert value(after, "events_outbox_depth") == 0
    assert value(after, "events_dead_letters_waiting") == 0
    # The whole order took less than the 60 s bucket, and more than nothing.
    assert value(after, "shop_order_latency_seconds_bucket", outcome="confirmed", le="60.0") == 1
    assert value(after, "shop_order_latency_seconds_sum", outcome="confirmed") > 0


def test_stopped_workers_and_relay_make_the_backlog_grow_and_restarting_drains_it(pipeline, make_product):
    make_product("A", stock=1000)
    # The relay publishes every event here (no publish after commit), so stopping it fills the outbox.
    pipeline.extra_env["EVENT_PUBLISH_AFTER_COMMIT"] = "0"
    relay = pipeline.relay()
    workers = pipeline.workers()
    base = pipeline.web()
    scrape_until(base, lambda s: value(s, "events_jetstream_sampled_timestamp_seconds") > 0)

    workers.stop()
    for _ in range(10):
        place(base)
    grown = scrape_until(base, lambda s: pending(s, "inventory") >= 10, message="pending to grow")
    assert value(grown, "events_outbox_depth") == 0  # the relay still publishes

    relay.stop()
    for _ in range(5):
        place(base)
    backlog = scrape_until(
        base,
        lambda s: value(s, "events_outbox_depth") == 5 and value(s, "events_outbox_oldest_age_seconds") > 0.5,
        message="the outbox to grow and age",
    )
    assert pending(backlog, "inventory") >= 10

    pipeline.relay()
    pipeline.workers()
    drained = scrape_until(
        base,
        lambda s: (
            value(s, "events_outbox_depth") == 0
            and pending(s, "inventory") == 0
            and pending(s, "shop") == 0
            and value(s, "events_consumed_total", consumer="inventory") == 15
        ),
        60,
        "the backlog to drain",
    )
    assert value(drained, "events_outbox_oldest_age_seconds") == 0
    assert not Order.objects.filter(status=Order.Status.PENDING).exists()


# Labels whose values come from a small set the code defines; anything else (an id, a SKU, a path) is refused.
BOUNDED_LABELS = {"type", "consumer", "stream", "durable", "outcome", "method", "route", "status"}


def test_no_metric_has_an_unbounded_label(pipeline, make_product):
    import shop.metrics  # noqa: F401 - defines its metrics in this process's registry
    import web.metrics  # noqa: F401

    labels = {name for m in metrics.REGISTRY._collector_to_names for name in getattr(m, "_labelnames", ())}
    assert labels <= BOUNDED_LABELS, labels - BOUNDED_LABELS

    # And what the processes export after orders of many SKUs names none of them, nor any order.
    skus = [f"S{i}" for i in range(12)]
    for sku in skus:
        make_product(sku, stock=5)
    pipeline.start()
    base = pipeline.web()
    orders = [place(base, sku) for sku in skus]
    httpx.get(f"{base}/api/orders/{orders[0]}")
    httpx.get(f"{base}/api/products/{skus[0]}")
    httpx.get(f"{base}/no/such/{uuid.uuid4()}")
    wait_for(lambda: not Order.objects.filter(status=Order.Status.PENDING).exists(), 30, "every order final")
    samples = scrape_until(base, lambda s: value(s, "events_consumed_total") >= 24)
    values = {v for _, lbls in samples for k, v in lbls if k != "le"}
    assert not values & (set(skus) | set(orders)), values & (set(skus) | set(orders))
    assert not [v for v in values if "/" in v and "<" not in v and v != "unmatched" and not v.startswith("api")]
    assert len(values) < 60, sorted(values)


@pytest.mark.django_db
def test_readiness_reports_the_database_and_nats_each(client, settings, nats_url):
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert {name: check["status"] for name, check in ready.json()["checks"].items()} == {"database": "ok", "nats": "ok"}

    from devstack.embedded import free_port

    settings.NATS_URL = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    down = client.get("/readyz")
    assert down.status_code == 503 and down.json()["status"] == "unavailable"
    checks = down.json()["checks"]
    assert checks["database"]["status"] == "ok" and checks["nats"]["status"] == "unavailable"
    assert checks["nats"]["error"]
