"""Trace context: the caller's W3C traceparent follows an order through the outbox, NATS headers and consumers."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nats
import pytest

from events import tracing
from events.models import StoredEvent
from shop.models import Order
from tests.pipeline import run_async, wait_for

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE}-00f067aa0ba902b7-01"


def test_a_valid_traceparent_is_continued_and_a_bad_one_starts_a_new_trace():
    with tracing.continued(CALLER, "work") as mine:
        assert tracing.current() == mine
        assert tracing.parse(mine)[0] == TRACE and mine != CALLER
    for bad in ["", "junk", f"00-{'0' * 32}-00f067aa0ba902b7-01", f"00-{TRACE}-{'0' * 16}-01", CALLER.upper()]:
        with tracing.continued(bad, "work") as mine:
            assert tracing.parse(mine) is not None and tracing.parse(mine)[0] != TRACE


def test_the_optional_opentelemetry_packages_are_one_pinned_extras_group_the_docs_install():
    base = Path(__file__).resolve().parent.parent
    otel = tomllib.loads((base / "pyproject.toml").read_text())["project"]["optional-dependencies"]["otel"]
    assert all(re.fullmatch(r"opentelemetry-[a-z-]+==\d[\w.]*", requirement) for requirement in otel), otel
    # The API events.tracing imports, the SDK that makes spans, and what exports and configures them.
    names = {requirement.split("==")[0] for requirement in otel}
    assert names == {"opentelemetry-api", "opentelemetry-sdk", "opentelemetry-distro", "opentelemetry-exporter-otlp"}
    assert '.venv/bin/pip install ".[otel]"' in (base / "docs" / "observability.md").read_text()


async def message_headers(nats_url: str, stream: str, subject: str) -> dict:
    nc = await nats.connect(nats_url.split(",")[0])
    try:
        return (await nc.jetstream().get_last_msg(stream, subject)).headers or {}
    finally:
        await nc.close()


@pytest.mark.pipeline
def test_one_order_is_one_trace_across_processes(pipeline, make_product):
    import httpx

    make_product("MUG-1", stock=5)
    pipeline.start()
    base = pipeline.web()

    body = {"email": "ann@example.org", "lines": [{"sku": "MUG-1", "quantity": 1}]}
    order_id = httpx.post(f"{base}/api/orders", json=body, headers={"traceparent": CALLER}).json()["id"]
    wait_for(lambda: Order.objects.get(id=order_id).status == Order.Status.CONFIRMED, message="the confirmation")

    rows = list(StoredEvent.objects.filter(correlation_id=order_id).order_by("seq"))
    assert [r.type for r in rows] == ["OrderPlaced", "StockReserved", "OrderConfirmed"]
    assert {tracing.parse(r.traceparent)[0] for r in rows} == {TRACE}
    assert len({r.traceparent for r in rows} | {CALLER}) == 4  # each step is a span of its own
    wait_for(lambda: not StoredEvent.objects.filter(unpublished__isnull=False).exists(), message="all published")
    headers = run_async(message_headers(pipeline.nats_url, "SHOP", "shop.order.placed"))
    assert headers["traceparent"] == rows[0].traceparent
    assert headers["Nats-Msg-Id"] == str(rows[0].event_id)
