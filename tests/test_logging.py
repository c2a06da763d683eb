"""Structured logs: one order's story, across web, relay and workers, under one correlation id."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from events import logcontext
from events.models import DeadLetter, StoredEvent
from shop.models import Order, StockLevel
from tests.pipeline import publish_raw, run_async, wait_for


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("events.flow", logging.INFO, __file__, 1, message, (), None)


def test_lines_carry_the_fields_bound_around_them_in_both_formats():
    with logcontext.bound(correlation_id="order-1", consumer="inventory", delivery=2):
        with logcontext.bound(event_id="e-1"):
            line = json.loads(logcontext.JsonFormatter().format(record("handled OrderPlaced")))
        console = logcontext.ConsoleFormatter().format(record("handled OrderPlaced"))
    after = json.loads(logcontext.JsonFormatter().format(record("later")))

    assert line["message"] == "handled OrderPlaced" and line["level"] == "info"
    fields = (line["correlation_id"], line["event_id"], line["consumer"], line["delivery"])
    assert fields == ("order-1", "e-1", "inventory", 2)
    assert console.endswith("handled OrderPlaced correlation_id=order-1 consumer=inventory delivery=2")
    assert "correlation_id" not in after


def test_bind_outside_a_bound_block_does_not_stick():
    logcontext.bind(correlation_id="stray")
    assert logcontext.current() == {}
    with logcontext.bound(request="r"):
        logcontext.bind(correlation_id="order-2")
        assert logcontext.current() == {"request": "r", "correlation_id": "order-2"}
    assert logcontext.current() == {}


def now_to_the_millisecond() -> datetime:
    """Return the time now, cut to the milliseconds log lines are stamped with."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def json_lines(text: str) -> list[dict]:
    """Parse the JSON lines of a log (granian's own start/stop lines are not ours)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.pipeline
def test_every_line_of_one_orders_flow_carries_its_correlation_id(pipeline, make_product):
    make_product("MUG-1", stock=5)
    pipeline.extra_env.update(LOG_FORMAT="json", LOG_FLOW="1")
    pipeline.start()
    base = pipeline.web()

    body = {"email": "ann@example.org", "lines": [{"sku": "MUG-1", "quantity": 2}]}
    since = now_to_the_millisecond()
    order_id = httpx.post(f"{base}/api/orders", json=body).json()["id"]
    wait_for(lambda: Order.objects.get(id=order_id).status == Order.Status.CONFIRMED, message="the confirmation")
    wait_for(lambda: StockLevel.objects.filter(sku="MUG-1", available=3).exists(), message="the projection")
    event_ids = {str(e) for e in StoredEvent.objects.filter(correlation_id=order_id).values_list("event_id", flat=True)}
    assert len(event_ids) == 3  # OrderPlaced, StockReserved, OrderConfirmed

    def flow_lines() -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {}
        for proc in pipeline.procs:
            lines = json_lines(proc.log_path.read_text())
            found[proc.name] = [
                line
                for line in lines
                if line.get("event_id") in event_ids
                or line.get("causation_id") in event_ids
                or line.get("correlation_id") == order_id
                or order_id in line["message"]
            ]
        # Each process had a part: the web recorded the order, workers handled 2; the 3 events were
        # published once each, after commit by the process that committed them or by the relay.
        complete = (
            sum("published" in x["message"] for lines in found.values() for x in lines) == 3
            and sum("handled" in x["message"] for x in found["workers"]) == 2
            and found["web"]
        )
        return found if complete else None

    lines = wait_for(flow_lines, 20, "every process's lines of the order")
    everything = [line for found in lines.values() for line in found]
    assert {line["correlation_id"] for line in everything if "correlation_id" in line} == {order_id}
    assert [line for line in everything if "correlation_id" not in line] == []
    # Not only the lines found by the order's ids: every line of the flow logger since the order was placed
    # (the catalog's own stock events included) belongs to a flow and says which.
    window = [
        line
        for proc in pipeline.procs
        for line in json_lines(proc.log_path.read_text())
        if line["logger"] == "events.flow"
        and datetime.fromisoformat(line["ts"]) >= since
        # The readiness probes of the test's own process start (no flow: nothing to correlate).
        and not line["message"].startswith(("GET /healthz", "GET /readyz"))
    ]
    assert len(window) >= len(everything)
    assert [line for line in window if not line.get("correlation_id")] == []
    web = [line["message"] for line in lines["web"]]
    assert "recorded OrderPlaced" in web and any(m.startswith("POST /api/orders 202") for m in web)
    handled = [line for line in lines["workers"] if line["message"].startswith("handled")]
    # The shop's consumer got the reservation handed off in its worker (delivery 0), before the stream's copy.
    assert {(line["consumer"], line["delivery"]) for line in handled} == {("inventory", 1), ("shop", 0)}
    assert all(line["causation_id"] in event_ids for line in handled if line["consumer"] == "shop")


def stock_reserved(order_id: str, causation_id: str) -> bytes:
    """Return a reservation of an order the shop does not have: its handler fails on every delivery."""
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "StockReserved",
            "version": 1,
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "aggregate_id": order_id,
            "correlation_id": order_id,
            "causation_id": causation_id,
            "data": {"order_id": order_id, "lines": []},
        }
    ).encode()


@pytest.mark.pipeline
def test_lines_of_a_failing_and_a_poison_message_carry_their_flow(pipeline):
    pipeline.extra_env.update(LOG_FORMAT="json", EVENT_MAX_DELIVER="2")
    pipeline.start()
    order_id, cause = str(uuid.uuid4()), str(uuid.uuid4())
    failing = stock_reserved(order_id, cause)
    event_id = json.loads(failing)["event_id"]
    run_async(publish_raw(pipeline.nats_url, "inventory.reservation.reserved", failing))
    run_async(publish_raw(pipeline.nats_url, "shop.order.placed", b"{not json", msg_id="poison-1"))
    wait_for(lambda: DeadLetter.objects.count() == 2, 30, "both messages dead-lettered")

    def consumer_lines() -> dict[str, dict] | None:
        lines = [
            line
            for proc in pipeline.procs
            if proc.name == "workers"
            for line in json_lines(proc.log_path.read_text())
            if line["logger"] == "events.consumer"
        ]
        found = {
            "failed": [x for x in lines if "failed on StockReserved (delivery 1)" in x["message"]],
            "dead-lettered": [x for x in lines if x["message"].startswith("dead-lettered on shop ")],
            "undecodable": [x for x in lines if x["message"].startswith("dead-lettered on inventory ")],
        }
        return {key: one for key, (one,) in found.items()} if all(len(v) == 1 for v in found.values()) else None

    lines = wait_for(consumer_lines, 30, "the workers' failure lines")
    flow = {"correlation_id": order_id, "event_id": event_id, "causation_id": cause, "consumer": "shop"}
    assert lines["failed"]["level"] == "warning" and lines["dead-lettered"]["level"] == "error"
    assert {key: lines["failed"].get(key) for key in [*flow, "delivery"]} == {**flow, "delivery": 1}
    assert {key: lines["dead-lettered"].get(key) for key in [*flow, "delivery"]} == {**flow, "delivery": 2}
    # Nothing of the poison message parses but where it was and how often it came.
    poison = lines["undecodable"]
    assert (poison["consumer"], poison["delivery"], poison.get("correlation_id")) == ("inventory", 1, None)
