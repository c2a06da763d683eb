"""Abuse limits (web/ratelimit.py): given a limit, when one client writes too fast, then 429 and nothing written.

Through Django's test client (its address is 127.0.0.1 unless REMOTE_ADDR says otherwise) and, once, a real
web server; the buckets are in the real local-memory cache.
"""

from __future__ import annotations

import json
import math
import time
import uuid

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone

from accounts.tokens import token_issue
from events.models import StoredEvent
from inventory.models import StockItem
from shop.models import Order, StockLevel
from web.ratelimit import take

ORDER = {"email": "bot@example.org", "lines": [{"sku": "MUG-1", "quantity": 1}]}


@pytest.fixture
def limits(settings):
    """Turn the limits on: 3 orders and 2 staff writes at once, each refilled at that many a minute."""
    cache.clear()
    settings.RATE_LIMITS = True
    settings.RATE_LIMIT_RULES = {"orders": (3, 60.0), "staff_writes": (2, 60.0)}
    yield settings
    cache.clear()


@pytest.fixture
def catalog(make_product) -> None:
    make_product("MUG-1", stock=100)


def place(client, **extra):
    return client.post("/api/orders", json.dumps(ORDER), "application/json", **extra)


def written() -> tuple[int, int, list]:
    return Order.objects.count(), StoredEvent.objects.count(), list(StockItem.objects.values_list("on_hand"))


def retry_after(headers, seconds: int, since: float) -> int:
    """Return ``Retry-After``, asserting it is one token's ``seconds`` less what refilled since ``since`` (monotonic).

    The burst itself takes time, during which the bucket refills: on a loaded box it may pass a second.
    """
    retry = int(headers["Retry-After"])
    assert seconds - math.ceil(time.monotonic() - since) <= retry <= seconds, (retry, seconds)
    return retry


def assert_limited(response, seconds: int, since: float) -> None:
    """Assert ``response`` is the JSON 429 of DESIGN §7 with ``Retry-After`` as ``retry_after`` says."""
    assert response.status_code == 429, response.content
    retry = retry_after(response, seconds, since)
    error = response.json()["error"]
    assert error["code"] == "rate_limited" and f"{retry} s" in error["message"] and error["fields"] == {}


@pytest.mark.django_db
def test_orders_past_the_burst_are_refused_with_retry_after_and_write_nothing(client, catalog, limits):
    since = time.monotonic()
    assert [place(client).status_code for _ in range(3)] == [202, 202, 202]
    before = written()

    assert_limited(place(client), 20, since)  # one token every 60/3 s

    assert written() == before


@pytest.mark.django_db
def test_each_client_address_has_its_own_bucket(client, catalog, limits):
    for _ in range(3):
        place(client)

    assert place(client).status_code == 429
    assert place(client, REMOTE_ADDR="192.0.2.7").status_code == 202


@pytest.mark.django_db
def test_the_address_behind_trusted_proxies_is_the_one_they_forwarded(client, catalog, limits):
    limits.RATE_LIMIT_PROXIES = 1
    for _ in range(3):
        place(client, HTTP_X_FORWARDED_FOR="spoofed, 198.51.100.1")

    assert place(client, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    assert place(client, HTTP_X_FORWARDED_FOR="198.51.100.1, 198.51.100.2").status_code == 202


@pytest.mark.django_db
def test_reads_are_never_limited(client, catalog, limits):
    order = place(client).json()

    answers = {client.get(f"/api/orders/{order['id']}").status_code for _ in range(10)}

    assert answers == {200} and client.get("/api/products").status_code == 200


@pytest.mark.django_db
def test_a_token_has_one_bucket_whatever_its_address(client, catalog, limits):
    get_user_model().objects.create_user("boss", is_staff=True)
    token = {"HTTP_AUTHORIZATION": f"Bearer {token_issue(username='boss')}"}

    def restock(addr: str):
        body = json.dumps({"quantity": 1})
        return client.post("/api/inventory/MUG-1/restock", body, "application/json", REMOTE_ADDR=addr, **token)

    since = time.monotonic()
    assert [restock(f"192.0.2.{i}").status_code for i in (1, 2)] == [202, 202]
    before = written()

    assert_limited(restock("192.0.2.3"), 30, since)
    assert written() == before


@pytest.mark.django_db
def test_the_checkout_form_answers_a_page_with_retry_after(client, catalog, limits):
    now = timezone.now()
    StockLevel.objects.create(
        sku="MUG-1", on_hand=9, reserved=0, available=9, version=1, changed_at=now, updated_at=now
    )
    client.post("/products/MUG-1/", {"quantity": 1})
    since = time.monotonic()
    for _ in range(3):
        place(client)

    response = client.post("/checkout/", {"email": "bot@example.org", "token": str(uuid.uuid4())})

    assert response.status_code == 429
    assert f"try again in {retry_after(response, 20, since)} seconds" in response.content.decode()
    assert client.get("/checkout/").status_code == 200


@pytest.mark.django_db
def test_off_the_limiter_lets_everything_through_and_keeps_no_bucket(client, catalog, limits):
    limits.RATE_LIMITS = False

    assert {place(client).status_code for _ in range(12)} == {202}
    assert cache.get("ratelimit:orders:addr:127.0.0.1") is None


def test_a_bucket_refills_at_its_rate(limits):
    who = [f"addr:test-{uuid.uuid4()}"]
    assert [take("orders", who, 3, 60.0, now=1000.0) for _ in range(3)] == [0.0, 0.0, 0.0]

    assert take("orders", who, 3, 60.0, now=1000.0) == pytest.approx(20.0)
    assert take("orders", who, 3, 60.0, now=1015.0) == pytest.approx(5.0)
    assert take("orders", who, 3, 60.0, now=1020.0) == 0.0  # one token back, taken
    assert take("orders", who, 3, 60.0, now=9999.0) == 0.0  # an idle bucket is full again, never fuller
    assert [take("orders", who, 3, 60.0, now=9999.0) for _ in range(3)][-1] > 0


@pytest.mark.pipeline
def test_a_real_server_answers_429_with_retry_after(pipeline, catalog):
    base = pipeline.web(workers=1, RATE_LIMITS="1", RATE_LIMIT_ORDERS="3/60")

    since = time.monotonic()
    answers = [httpx.post(f"{base}/api/orders", json=ORDER) for _ in range(4)]

    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    retry_after(answers[-1].headers, 20, since)
    assert answers[-1].json()["error"]["code"] == "rate_limited"
    assert answers[-1].headers["X-Content-Type-Options"] == "nosniff"
    assert Order.objects.count() == 3
