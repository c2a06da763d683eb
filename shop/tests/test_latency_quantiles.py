"""The ops page's recent latency: quantiles PostgreSQL takes over the orders confirmed in a window."""

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from shop.models import Order
from shop.selectors import order_latency_quantiles

pytestmark = pytest.mark.django_db


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def confirmed(took: float, decided_ago: float) -> None:
    order = Order.objects.create(email="q@example.com", total=1, currency="EUR", status=Order.Status.CONFIRMED)
    decided = timezone.now() - timedelta(seconds=decided_ago)
    Order.objects.filter(id=order.id).update(created_at=decided - timedelta(seconds=took), updated_at=decided)


def quantiles() -> tuple[int, list]:
    return order_latency_quantiles(
        decided_within=timedelta(seconds=10), placed_within=timedelta(seconds=60), quantiles=[0.5, 0.99]
    )


def test_no_order_in_the_window_gives_no_quantile():
    confirmed(0.5, decided_ago=30)  # decided before the window
    assert quantiles() == (0, [None, None])


def test_the_quantiles_are_nearest_ranks_of_the_orders_confirmed_in_the_window():
    took = [0.004, 0.010, 0.003, 0.250, 0.020]
    for seconds in took:
        confirmed(seconds, decided_ago=1)
    confirmed(0.7, decided_ago=30)  # decided before the window
    Order.objects.create(email="q@example.com", total=1, currency="EUR")  # pending: not counted

    count, (p50, p99) = quantiles()
    assert count == len(took)
    assert p50 == pytest.approx(nearest_rank(took, 0.5)) == pytest.approx(0.010)
    assert p99 == pytest.approx(nearest_rank(took, 0.99)) == pytest.approx(0.250)
