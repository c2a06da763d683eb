"""The operational commands: setup_streams, rebuild_projections, verify_invariants."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from events.base import Line
from events.models import StoredEvent
from inventory.models import StockItem
from shop.models import Order, StockLevel
from shop.services import order_place
from tests.pipeline import reset_streams, run_async, wait_for


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_setup_streams_is_idempotent(nats_url, db):
    run_async(reset_streams(nats_url))
    first = run("setup_streams")
    assert run("setup_streams") == first
    assert "SHOP, INVENTORY" in first and "inventory" in first


@pytest.mark.pipeline
def test_projections_rebuilt_from_the_log_equal_the_live_ones(pipeline, make_product):
    make_product("A", stock=10)
    make_product("B", stock=3)
    pipeline.start()
    for lines in ([Line("A", 2)], [Line("B", 5)], [Line("A", 1), Line("B", 3)]):
        order_place(email="f@example.org", lines=lines)
    wait_for(lambda: not Order.objects.filter(status="pending").exists(), message="orders final")
    wait_for(lambda: not StoredEvent.objects.filter(unpublished__isnull=False).exists(), message="outbox drained")
    wait_for(lambda: StockLevel.objects.filter(sku="B", available=0).exists(), message="projection caught up")
    pipeline.stop()
    live = {s.sku: (s.available, s.version) for s in StockLevel.objects.all()}
    assert "OK" in run("rebuild_projections", "--check")

    StockLevel.objects.all().delete()
    StockItem.objects.filter(sku="A").update(on_hand=99)
    with pytest.raises(CommandError, match="differences"):
        run("rebuild_projections", "--check")
    run("rebuild_projections")

    assert {s.sku: (s.available, s.version) for s in StockLevel.objects.all()} == live
    assert StockItem.objects.get(sku="A").on_hand == 10
    assert "OK" in run("rebuild_projections", "--check")


def test_verify_invariants_passes_on_a_clean_system(db):
    assert "all invariants hold" in run("verify_invariants")


def test_verify_invariants_fails_on_a_stuck_order_and_a_stuck_outbox(db, make_product):
    make_product("A", stock=5)
    order = order_place(email="g@example.org", lines=[Line("A", 1)])
    long_ago = timezone.now() - timedelta(hours=1)
    Order.objects.filter(id=order.id).update(created_at=long_ago)
    StoredEvent.objects.update(occurred_at=long_ago)

    with pytest.raises(CommandError, match="invariant violations") as failure:
        run("verify_invariants")
    assert "invariant" in str(failure.value)


def test_verify_invariants_fails_when_stock_differs_from_its_events(db, make_product):
    make_product("A", stock=5)
    StockItem.objects.filter(sku="A").update(reserved=3)  # held with no StockReserved behind it

    with pytest.raises(CommandError, match="invariant violations"):
        run("verify_invariants")


def test_run_workers_names_the_apps_it_can_run_when_given_another():
    with pytest.raises(CommandError, match=r"--only takes one of: inventory, shop"):
        call_command("run_workers", "--only", "billing")
