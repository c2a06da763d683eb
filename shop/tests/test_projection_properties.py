"""The version rule, by Hypothesis: stock levels only move forward, whatever the order of delivery.

Any sequence of ``StockLevelChanged`` (duplicates, reordering, several SKUs),
applied one by one or as runs, through the projection's real statements on the
real database and through a process's near cache, ends at the newest version
of each SKU; and no step ever moves a SKU to an older version.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.base import new_envelope
from events.consumer import Message
from shop.inbound import StockLevelChanged
from shop.live import NearCache, level_of
from shop.models import StockLevel
from shop.projections import stock_level_apply, stock_levels_apply

pytestmark = pytest.mark.django_db

PROPERTY = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def level(sku: str, version: int) -> StockLevelChanged:
    """The state after change ``version`` of ``sku``: a pure function of the version, so a row names its version."""
    on_hand = 100 + version
    return StockLevelChanged(sku=sku, on_hand=on_hand, reserved=version, available=on_hand - version, version=version)


# A delivery stream: (SKU index, version) pairs, repeated and shuffled, cut into runs (batches).
deliveries = st.lists(st.tuples(st.integers(0, 2), st.integers(1, 8)), min_size=1, max_size=25)
batches = st.lists(deliveries, min_size=1, max_size=4)


def message(event: StockLevelChanged) -> Message[StockLevelChanged]:
    return Message(new_envelope(event, correlation_id=None, causation_id=None), event)


def rows(skus: list[str]) -> dict[str, tuple[int, int, int, int]]:
    found = StockLevel.objects.filter(sku__in=skus)
    return {r.sku: (r.version, r.on_hand, r.reserved, r.available) for r in found}


def expected(skus: list[str], applied: list[tuple[int, int]]) -> dict[str, tuple[int, int, int, int]]:
    newest: dict[str, int] = {}
    for i, version in applied:
        newest[skus[i]] = max(newest.get(skus[i], 0), version)
    return {sku: (v, (e := level(sku, v)).on_hand, e.reserved, e.available) for sku, v in newest.items()}


def never_older(before: dict, after: dict) -> None:
    for sku, row in before.items():
        assert after[sku][0] >= row[0], f"{sku} moved back from version {row[0]} to {after[sku][0]}"


@PROPERTY
@given(runs=batches, one_by_one=st.booleans())
def test_the_projection_only_moves_forward_by_version(runs, one_by_one):
    skus = [f"V{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]  # each example on SKUs of its own
    applied: list[tuple[int, int]] = []
    for run in runs:
        before = rows(skus)
        events = [level(skus[i], v) for i, v in run]
        if one_by_one:
            for event in events:
                prior = rows(skus).get(event.sku, (0,))[0]
                assert stock_level_apply(event, message(event).envelope.occurred_at) == (event.version > prior)
        else:
            stock_levels_apply([message(e) for e in events])
        applied += run
        after = rows(skus)
        never_older(before, after)
        assert after == expected(skus, applied)


@PROPERTY
@given(stream=deliveries)
def test_the_near_cache_only_moves_forward_by_version(stream):
    cache = NearCache()
    cache.clear(enabled=True)
    skus = ["A", "B", "C"]
    newest: dict[str, int] = {}
    for i, version in stream:
        kept = cache.apply(level_of(level(skus[i], version)))
        assert kept == (version > newest.get(skus[i], 0))
        newest[skus[i]] = max(newest.get(skus[i], 0), version)
        held = cache.get_many([skus[i]])[skus[i]]
        assert held.version == newest[skus[i]] and held.available == level(skus[i], held.version).available
