"""A poison message reaches the ops page's dead-letter list; fixed and replayed, its flow completes."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import httpx
import pytest
from django.contrib.auth import get_user_model

from accounts.tokens import token_issue
from events.models import DeadLetter, StoredEvent
from shop.models import Order
from tests.pipeline import pending, publish_raw, run_async, wait_for

pytestmark = pytest.mark.pipeline


def stock_reserved(order_id: str) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "type": "StockReserved",
            "version": 1,
            "occurred_at": "2026-01-01T00:00:00+00:00",
            "aggregate_id": order_id,
            "correlation_id": order_id,
            "causation_id": None,
            "data": {"order_id": order_id, "lines": []},
        }
    ).encode()


def test_a_dead_letter_is_listed_and_its_replay_completes_the_flow(pipeline):
    get_user_model().objects.create_user("boss", is_staff=True)
    auth = {"Authorization": f"Bearer {token_issue(username='boss')}"}
    pipeline.extra_env["EVENT_MAX_DELIVER"] = "2"
    pipeline.start()
    base = pipeline.web()

    # The shop hears of a reservation for an order it does not have: its handler fails, twice, and gives up.
    order_id = str(uuid.uuid4())
    run_async(publish_raw(pipeline.nats_url, "inventory.reservation.reserved", stock_reserved(order_id)))

    def listed():
        letters = httpx.get(f"{base}/ops/figures", headers=auth).json()["dead_letters"]
        return letters if letters else None

    (letter,) = wait_for(listed, 30, "the dead letter on the ops page")
    assert (letter["consumer"], letter["subject"], letter["deliveries"]) == (
        "shop",
        "inventory.reservation.reserved",
        2,
    )
    assert "DoesNotExist" in letter["error"] and letter["replayed_at"] is None
    wait_for(lambda: run_async(pending(pipeline.nats_url, "INVENTORY", "shop")) == (0, 0), message="nothing pending")

    # The cause is fixed (the order exists), then staff replay the message.
    Order.objects.create(id=order_id, email="late@example.org", total=Decimal("1.00"), currency="EUR")
    answer = httpx.post(f"{base}/ops/dead-letters/{letter['id']}/replay", headers=auth)
    assert answer.status_code == 202, answer.text
    assert answer.json()["id"] == letter["id"] == str(DeadLetter.objects.get().public_id)

    wait_for(lambda: Order.objects.get(id=order_id).status == Order.Status.CONFIRMED, 30, "the replayed flow")
    assert StoredEvent.objects.filter(type="OrderConfirmed", correlation_id=order_id).count() == 1
    assert DeadLetter.objects.get(public_id=letter["id"]).replayed_at is not None
    again = httpx.post(f"{base}/ops/dead-letters/{letter['id']}/replay", headers=auth)
    assert again.status_code == 409
    figures = httpx.get(f"{base}/ops/figures", headers=auth).json()
    assert figures["dead_letters_waiting"] == 0 and figures["counters"]["dead_letters"] == 1
