"""The near cache of stock levels: given levels from events and from the projection, when read, then what wins."""

from __future__ import annotations

import pytest
from django.utils import timezone

from shop.live import Level, NearCache
from shop.models import StockLevel

pytestmark = pytest.mark.django_db


def projected(sku: str, available: int, version: int) -> None:
    now = timezone.now()
    StockLevel.objects.update_or_create(
        sku=sku,
        defaults={
            "on_hand": available,
            "reserved": 0,
            "available": available,
            "version": version,
            "changed_at": now,
            "updated_at": now,
        },
    )


@pytest.fixture
def cache() -> NearCache:
    near = NearCache(miss_ttl=60)
    near.clear(enabled=True)  # as the feed does once subscribed
    return near


def test_a_newer_version_wins_and_an_older_or_equal_one_is_ignored(cache):
    assert cache.apply(Level("A", 5, 2))
    assert not cache.apply(Level("A", 9, 1))
    assert not cache.apply(Level("A", 9, 2))
    assert cache.apply(Level("A", 4, 3))
    assert cache.get_many(["A"])["A"].available == 4
    assert (cache.applied, cache.ignored) == (2, 2)


def test_misses_read_the_projection_in_one_query_then_hit(cache, django_assert_num_queries):
    for i in range(30):
        projected(f"S-{i}", i, 1)
    skus = [f"S-{i}" for i in range(30)] + ["UNKNOWN"]
    with django_assert_num_queries(1):
        levels = cache.get_many(skus)
    assert levels["S-7"].available == 7 and levels["UNKNOWN"] == Level(
        "UNKNOWN", 0, 0, expires=levels["UNKNOWN"].expires
    )
    with django_assert_num_queries(0):
        cache.get_many(skus)
    assert (cache.misses, cache.hits) == (31, 31)


def test_a_level_from_the_projection_expires_but_one_from_an_event_does_not(django_assert_num_queries):
    cache = NearCache(miss_ttl=0)
    cache.clear(enabled=True)
    projected("A", 3, 1)
    cache.get_many(["A"])
    with django_assert_num_queries(1):
        cache.get_many(["A"])
    cache.apply(Level("A", 2, 2))
    with django_assert_num_queries(0):
        assert cache.get_many(["A"])["A"].available == 2


def test_an_older_projection_never_replaces_a_newer_event(cache):
    cache.apply(Level("A", 1, 5))
    projected("A", 9, 4)
    cache._levels["A"] = Level("A", 1, 5, expires=0)  # expired: read again
    assert cache.get_many(["A"])["A"].version == 5


def test_while_the_feed_is_away_nothing_is_remembered(cache, django_assert_num_queries):
    projected("A", 3, 1)
    cache.get_many(["A"])
    cache.clear(enabled=False)
    assert len(cache) == 0
    for _ in range(2):
        with django_assert_num_queries(1):
            assert cache.get_many(["A"])["A"].available == 3
    assert len(cache) == 0


def test_the_frame_is_the_websocket_contract():
    assert Level("A", -2, 7).frame() == {"sku": "A", "available": 0, "stock_status": "sold_out", "version": 7}
    assert Level("A", 3, 7).frame()["stock_status"] == "low_stock"
    assert Level("A", 30, 7).frame()["stock_status"] == "in_stock"
