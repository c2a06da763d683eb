"""The ops page and its figures: staff only, JSON that the page draws, replay refusals, /metrics."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import Resolver404, resolve
from django.utils import timezone

from accounts.tokens import token_issue
from events.models import DeadLetter, ProcessedEvent, StoredEvent
from ops import selectors

pytestmark = pytest.mark.django_db


def user(username: str, *, is_staff: bool):
    return get_user_model().objects.create_user(username, is_staff=is_staff)


@pytest.fixture
def staff() -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user("boss", is_staff=True))
    return client


def test_the_page_is_for_staff_only(client, staff):
    response = client.get("/ops/")
    assert response.status_code == 302 and response["Location"].startswith("/staff/login/")
    client.force_login(user("shopper", is_staff=False))
    assert client.get("/ops/").status_code == 302
    page = staff.get("/ops/")
    assert page.status_code == 200
    for chart in ["orders", "latency", "pending", "outbox", "outbox-age", "cache", "hops", "dead-letters"]:
        assert f'id="{chart}"' in page.content.decode()
    assert 'id="ops-hops"' in page.content.decode()
    assert '"/ops/dead-letters/00000000-0000-0000-0000-000000000000/replay"' in page.content.decode()


def test_the_figures_are_for_staff_only(client):
    assert client.get("/ops/figures").status_code == 401
    client.force_login(user("shopper", is_staff=False))
    assert client.get("/ops/figures").status_code == 403
    user("robot", is_staff=True)
    answer = Client().get("/ops/figures", HTTP_AUTHORIZATION=f"Bearer {token_issue(username='robot')}")
    assert answer.status_code == 200


def test_the_figures_hold_what_the_page_draws(staff):
    letter = DeadLetter.objects.create(
        consumer="inventory", subject="shop.order.placed", data=b"{", error="cannot decode", deliveries=1
    )
    body = staff.get("/ops/figures").json()
    assert set(body) >= {"at", "counters", "latency", "pending", "outbox", "hops", "dead_letters", "websockets"}
    assert set(body["counters"]) >= {"placed", "confirmed", "rejected", "dead_letters", "cache_hits", "cache_misses"}
    assert body["outbox"] == {"depth": 0, "oldest_age": 0, "failed": 0}
    assert body["failed_events"] == []
    assert body["dead_letters_waiting"] == 1
    assert [(d["id"], d["consumer"], d["error"], d["replayed_at"]) for d in body["dead_letters"]] == [
        (str(letter.public_id), "inventory", "cannot decode", None)
    ]


def test_replay_refuses_unknown_and_replayed_letters_and_session_writes_without_csrf(staff):
    letter = DeadLetter.objects.create(
        consumer="shop", subject="x.y", data=b"{}", error="e", deliveries=1, replayed_at=timezone.now()
    )
    token = staff.get("/ops/").cookies["csrftoken"].value
    unknown = staff.post(f"/ops/dead-letters/{uuid.uuid4()}/replay", HTTP_X_CSRFTOKEN=token)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
    replayed = staff.post(f"/ops/dead-letters/{letter.public_id}/replay", HTTP_X_CSRFTOKEN=token)
    assert (replayed.status_code, replayed.json()["error"]["code"]) == (409, "already_replayed")
    assert staff.post(f"/ops/dead-letters/{letter.public_id}/replay").status_code == 403  # no CSRF token
    assert staff.get(f"/ops/dead-letters/{letter.public_id}/replay").status_code == 405
    # The sequential key is no address: nothing answers at it.
    with pytest.raises(Resolver404):
        resolve(f"/ops/dead-letters/{letter.id}/replay")


def stored(type_: str, correlation_id: str, at, cause=None) -> StoredEvent:
    return StoredEvent.objects.create(
        event_id=uuid.uuid4(),
        type=type_,
        version=1,
        subject="s",
        aggregate_id=correlation_id,
        correlation_id=correlation_id,
        causation_id=cause,
        occurred_at=at,
        payload=b"{}",
    )


def test_the_hops_of_an_order_come_from_its_events_and_receipts():
    t0 = timezone.now()
    ms = lambda n: t0 + timedelta(milliseconds=n)  # noqa: E731
    placed = stored("OrderPlaced", "o-1", t0)
    ProcessedEvent.objects.create(consumer="inventory", event_id=placed.event_id)
    ProcessedEvent.objects.filter(event_id=placed.event_id).update(processed_at=ms(7))
    reserved = stored("StockReserved", "o-1", ms(17), str(placed.event_id))
    ProcessedEvent.objects.create(consumer="shop", event_id=reserved.event_id)
    ProcessedEvent.objects.filter(event_id=reserved.event_id).update(processed_at=ms(21))
    stored("OrderConfirmed", "o-1", ms(25), str(reserved.event_id))
    stored("OrderPlaced", "o-2", ms(30))  # not decided yet: not drawn

    (order,) = selectors.recent_order_hops(10)
    assert order["order"] == "o-1" and order["outcome"] == "confirmed"
    assert {k: round(v * 1000) for k, v in order["hops"].items()} == {
        "bus (placed)": 7,
        "inventory": 10,
        "bus (reserved)": 4,
        "shop": 4,
    }
    assert round(order["total"] * 1000) == 25


def test_metrics_answer_in_prometheus_text_format(client):
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/plain")
    assert b"events_outbox_depth 0.0" in answer.content


def test_replay_while_nats_is_unreachable_answers_503_and_changes_nothing(staff, settings):
    from devstack.embedded import free_port

    settings.NATS_URL = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    letter = DeadLetter.objects.create(consumer="shop", subject="x.y", data=b"{}", error="e", deliveries=1)
    token = staff.get("/ops/").cookies["csrftoken"].value
    answer = staff.post(f"/ops/dead-letters/{letter.public_id}/replay", HTTP_X_CSRFTOKEN=token)
    assert (answer.status_code, answer.json()["error"]["code"]) == (503, "nats_unavailable")
    letter.refresh_from_db()
    assert letter.replayed_at is None


def test_latency_quantiles_are_none_without_orders():
    from ops import history

    assert history.latency_now() == {"orders": 0, "p50": None, "p99": None, "window": history.LATENCY_WINDOW}


def test_the_history_holds_one_sample_a_second_and_answers_what_came_after_since(staff):
    from ops import history

    now = int(time.time())
    assert history.record(now - 2) and history.record(now - 1)
    assert not history.record(now - 1)  # another web process got there first
    history.record(now - 3600)  # older than the history keeps
    body = staff.get(f"/ops/history?since={now - 2}").json()
    assert [s["at"] for s in body["samples"]] == [now - 1] and body["window"] == 900
    assert [s["at"] for s in staff.get("/ops/history").json()["samples"]] == [now - 2, now - 1]
    sample = body["samples"][0]
    assert set(sample) >= {"counters", "pending", "outbox", "latency"}
    for bad in ["x", "-1", "nan", "inf"]:
        answer = staff.get(f"/ops/history?since={bad}")
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_since")
    history.prune(time.time())
    assert [s["at"] for s in staff.get("/ops/history").json()["samples"]] == [now - 2, now - 1]


def test_the_history_is_for_staff_only(client):
    assert client.get("/ops/history").status_code == 401


def test_the_ops_page_links_to_the_staff_pages_and_back(staff):
    page = staff.get("/ops/").content.decode()
    assert 'href="/staff/"' in page and 'href="/"' in page and 'rel="icon"' in page
    assert 'href="/ops/"' in staff.get("/staff/").content.decode()
