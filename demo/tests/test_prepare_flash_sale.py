"""``manage.py prepare_flash_sale``: a scarce product before a flash sale, made only of stock events."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from events.models import StoredEvent
from inventory.models import StockItem
from shop.models import Product


def prepare(*args: str) -> str:
    out = StringIO()
    call_command("prepare_flash_sale", *args, stdout=out)
    return out.getvalue()


def received(sku: str) -> list[int]:
    events = StoredEvent.objects.filter(type="StockReceived", aggregate_id=sku).order_by("seq")
    return [json.loads(bytes(e.payload))["data"]["quantity"] for e in events]


def test_create_adds_the_limited_product_and_receives_exactly_the_units(db):
    assert "received 20, 20 available" in prepare("LTD-001", "--create", "--units", "20")

    assert Product.objects.get(sku="LTD-001").name == "Panama Geisha, limited lot"
    assert StockItem.objects.get(sku="LTD-001").available == 20
    assert received("LTD-001") == [20]


def test_it_tops_up_to_the_units_and_never_takes_stock_away(make_product):
    make_product("FS-1", stock=3)
    assert "received 17, 20 available" in prepare("FS-1")
    assert "50 available, more than the 20 asked" in prepare("FS-1", "--units", "50") + prepare("FS-1")

    assert StockItem.objects.get(sku="FS-1").available == 50
    assert received("FS-1") == [3, 17, 30]


def test_an_unknown_product_is_an_error_without_create(db):
    with pytest.raises(CommandError, match="no product 'NOPE-1'.*--create"):
        prepare("NOPE-1")
    assert not StockItem.objects.filter(sku="NOPE-1").exists()
