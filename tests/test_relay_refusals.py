"""A row JetStream refuses for a fault of its own never stalls the relay: it is marked failed and later rows flow.

Given an outbox whose oldest rows cannot be published (a payload over the
server's ``max_payload``, a subject no stream takes), when the real relay and
workers run against the real nats-server, then every later event is published
once, every order ends, and the bad rows wait failed with their error, their
attempts and their next try, on the ops page and in the metrics.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime

import nats
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from devstack import natsauth
from events import bus, publisher
from events.models import StoredEvent, Unpublished
from tests.pipeline import run_async, stream_messages, wait_for
from tests.test_faults import all_final, assert_each_effect_once, place_many
from tests.test_monitoring import scrape_until, value

pytestmark = pytest.mark.pipeline

TOO_BIG = 1024 * 1024 + 1  # bytes: over nats-server's default max_payload (1 MB)


def queued(event: StoredEvent) -> Unpublished | None:
    """Return the event's outbox row (None once it is published)."""
    return Unpublished.objects.filter(event_id=event.event_id).first()


def stored(subject: str, payload: bytes) -> StoredEvent:
    """Append a row to the outbox as a producer would, of any subject and size."""
    return StoredEvent.objects.create(
        event_id=uuid.uuid4(),
        type="OrderPlaced",
        version=1,
        subject=subject,
        aggregate_id="bad",
        correlation_id="bad",
        occurred_at=datetime.now(UTC),
        payload=payload,
    )


def big_payload() -> bytes:
    return json.dumps({"type": "OrderPlaced", "data": {"note": "x" * TOO_BIG}}).encode()


def with_users() -> bool:
    """Return whether the suite's NATS has a user per service (``make test``), the relay its own."""
    return bool(natsauth.service_env(dict(os.environ), "relay"))


def test_rows_the_server_refuses_are_marked_failed_and_later_rows_flow(pipeline, make_product, nats_url):
    make_product("A", stock=100)
    too_big = stored("shop.order.placed", big_payload())
    nowhere = stored("nowhere.to.go", b"{}")
    orders = place_many(10)
    # A refused publish of the relay's user gets no answer: it ends at the ack timeout.
    pipeline.extra_env.update(RELAY_RETRY_BASE="60", RELAY_PUBLISH_TIMEOUT="1")
    pipeline.start()
    base = pipeline.web()

    all_final()
    assert len(orders) == 10
    good = StoredEvent.objects.exclude(seq__in=[too_big.seq, nowhere.seq])
    wait_for(lambda: not good.filter(unpublished__isnull=False).exists(), 30, "every later event published")
    assert run_async(stream_messages(nats_url, "SHOP")) == good.filter(subject__startswith="shop.").count()
    assert run_async(stream_messages(nats_url, "INVENTORY")) == good.filter(subject__startswith="inventory.").count()
    assert_each_effect_once()

    big_row, nowhere_row = queued(too_big), queued(nowhere)
    for row in (big_row, nowhere_row):
        assert row is not None and row.failed and row.attempts == 1
        assert row.retry_at > timezone.now()  # 60 s on: passed by meanwhile
    assert "max_payload" in big_row.error
    if with_users():  # the relay's user may publish domain subjects only
        assert "NATS user may not publish to 'nowhere.to.go'" in nowhere_row.error
    else:
        assert "no stream takes subject 'nowhere.to.go'" in nowhere_row.error

    samples = scrape_until(base, lambda s: value(s, "events_outbox_failed") == 2, message="the failed rows")
    assert value(samples, "events_publish_refused_total", type="OrderPlaced") == 2
    assert value(samples, "events_outbox_depth") == 2
    shown = {f["event_id"]: f for f in staff_figures()["failed_events"]}
    assert set(shown) == {str(too_big.event_id), str(nowhere.event_id)}
    assert shown[str(nowhere.event_id)]["attempts"] == 1
    assert shown[str(nowhere.event_id)]["error"] == nowhere_row.error


def staff_figures() -> dict:
    client = Client()
    client.force_login(get_user_model().objects.create_user("ops", password="x", is_staff=True))
    answer = client.get("/ops/figures")
    assert answer.status_code == 200
    return answer.json()


def test_a_failed_row_is_tried_again_with_a_backoff_and_published_once_its_cause_is_gone(
    pipeline, make_product, nats_url
):
    make_product("A", stock=10)
    lost = stored("elsewhere.thing", b'{"type": "Elsewhere"}')
    pipeline.extra_env.update(RELAY_RETRY_BASE="0.2", RELAY_RETRY_MAX="0.5")
    pipeline.relay(NATS_URL=nats_url)  # as admin: a user that may publish a subject no stream takes
    pipeline.workers()
    wait_for(lambda: queued(lost).attempts >= 2, 30, "two tries")
    tried = queued(lost)
    assert tried.failed and "no stream" in tried.error
    place_many(3)
    all_final()  # later rows flow meanwhile

    run_async(add_stream(nats_url, "ELSEWHERE", ["elsewhere.>"]))
    try:
        wait_for(lambda: queued(lost) is None, 30, "the row published")
        assert run_async(stream_messages(nats_url, "ELSEWHERE")) == 1
    finally:
        run_async(delete_stream(nats_url, "ELSEWHERE"))


async def add_stream(url: str, name: str, subjects: list[str]) -> None:
    nc = await nats.connect(url.split(",")[0])
    try:
        await nc.jetstream().add_stream(name=name, subjects=subjects)
    finally:
        await nc.close()


async def delete_stream(url: str, name: str) -> None:
    nc = await nats.connect(url.split(",")[0])
    try:
        await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


def test_a_publisher_after_commit_passes_a_refused_row_by_and_leaves_it_to_the_relay(pipeline, make_product, nats_url):
    make_product("A", stock=10)
    pipeline.workers()  # it sets up the streams the publisher publishes to
    wait_for(lambda: "consuming" in pipeline.procs[0].log_text(), 30, "the worker to consume")
    too_big = stored("shop.order.placed", big_payload())
    fine = stored("shop.order.placed", b'{"type": "Unknown"}')
    rows = [
        (None, str(r.event_id), r.subject, bytes(r.payload), r.traceparent, r.type, r.occurred_at)
        for r in (too_big, fine)
    ]
    eager = publisher.Publisher("test")
    try:
        eager.submit(rows)
        wait_for(lambda: queued(fine) is None, 30, "the row behind it published")
        assert eager.published == 1
    finally:
        eager.close()
    assert queued(too_big) is not None and not queued(too_big).failed

    pipeline.relay(RELAY_SWEEP_AGE="0.5")
    wait_for(lambda: queued(too_big).failed, 30, "the relay to mark it failed")
    assert run_async(stream_messages(nats_url, "SHOP")) == 1


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("shop.>", "shop.order.placed", True),
        ("shop.>", "shop", False),
        ("inventory.stock.*", "inventory.stock.A-1", True),
        ("inventory.stock.*", "inventory.stock.A.B", False),
        ("shop.order.placed", "shop.order.placed", True),
        ("shop.order.placed", "shop.order", False),
    ],
)
def test_subject_patterns_match_as_nats_matches_them(pattern, subject, matches):
    assert bus.subject_matches(pattern, subject) is matches


def test_only_a_rows_own_faults_are_refusals():
    assert bus.refusal(nats.js.errors.NoStreamResponseError(), "nowhere.x") == "no stream takes subject 'nowhere.x'"
    assert bus.refusal(nats.js.errors.NoStreamResponseError(), "shop.order.placed") is None  # a leader elected
    assert bus.refusal(TimeoutError(), "nowhere.x") is None
    assert bus.refusal(nats.errors.ConnectionClosedError(), "shop.order.placed") is None
    # The server's -ERR for a subject this user may not publish to makes its timeout a refusal.
    bus._note_denial(Exception('nats: permissions violation for publish to "shop.order.confirmed"'))
    try:
        assert "may not publish" in bus.refusal(TimeoutError(), "shop.order.confirmed")
        assert bus.refusal(TimeoutError(), "shop.order.placed") is None
    finally:
        bus._denied.clear()


def test_the_size_check_counts_headers_as_the_server_does():
    headers = bus.message_headers(str(uuid.uuid4()), "00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    assert bus.wire_size(b"x" * 10, headers) == 10 + len(b"NATS/1.0\r\n") + sum(
        len(f"{k}: {v}\r\n") for k, v in headers.items()
    ) + len(b"\r\n")
