"""The stock-level projection: newest version wins, so duplicates and reordering are harmless."""

import pytest

from events.base import new_envelope
from events.consumer import Message
from shop.inbound import StockLevelChanged
from shop.models import StockLevel
from shop.projections import stock_level_apply, stock_levels_apply

pytestmark = pytest.mark.django_db


def level(version: int, available: int) -> StockLevelChanged:
    return StockLevelChanged(sku="A", on_hand=10, reserved=10 - available, available=available, version=version)


def apply(event: StockLevelChanged) -> bool:
    return stock_level_apply(event, new_envelope(event, correlation_id=None, causation_id=None).occurred_at)


def test_levels_applied_in_any_order_and_twice_end_at_the_newest():
    events = [level(1, 10), level(2, 8), level(3, 5)]

    results = [apply(e) for e in (events[2], events[0], events[1], events[2], events[1])]

    assert results == [True, False, False, False, False]
    row = StockLevel.objects.get(sku="A")
    assert (row.version, row.available) == (3, 5)


def test_a_newer_level_replaces_an_older_one():
    apply(level(1, 10))
    assert apply(level(2, 7))
    assert StockLevel.objects.get(sku="A").available == 7


def test_a_run_of_levels_keeps_the_newest_per_sku_in_one_statement(django_assert_num_queries):
    apply(level(4, 6))  # the table already holds version 4 of A
    b = [StockLevelChanged(sku="B", on_hand=5, reserved=r, available=5 - r, version=v) for v, r in ((2, 1), (1, 0))]
    run = [level(3, 9), level(5, 4), *b, level(4, 6)]

    with django_assert_num_queries(1):
        stock_levels_apply([Message(new_envelope(e, correlation_id=None, causation_id=None), e) for e in run])

    rows = {r.sku: (r.version, r.available) for r in StockLevel.objects.all()}
    assert rows == {"A": (5, 4), "B": (2, 4)}
