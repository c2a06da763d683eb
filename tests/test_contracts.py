"""Each context reads the other's events with its own classes; check they agree with the producer's.

This file sits outside both contexts, so it may import both.
"""

import dataclasses

import pytest

import inventory.events as inventory_events
import inventory.inbound as inventory_inbound
import shop.events as shop_events
import shop.inbound as shop_inbound
from events.base import DecodeError, Event, Line, decode, encode, index, new_envelope


def classes(module) -> dict[str, type[Event]]:
    return {
        c.TYPE: c for c in vars(module).values() if isinstance(c, type) and issubclass(c, Event) and "TYPE" in vars(c)
    }


SAMPLES = {
    "OrderPlaced": shop_events.OrderPlaced(order_id="o", lines=[Line("A", 2)]),
    "OrderCancelled": shop_events.OrderCancelled(order_id="o"),
    "StockReserved": inventory_events.StockReserved(order_id="o", lines=[Line("A", 2)]),
    "StockReservationRejected": inventory_events.StockReservationRejected(
        order_id="o", shortages=[inventory_events.Shortage("A", 2, 1)], reason="short"
    ),
    "StockReleased": inventory_events.StockReleased(order_id="o", lines=[Line("A", 2)]),
    "StockLevelChanged": inventory_events.StockLevelChanged(sku="A", on_hand=5, reserved=2, available=3, version=7),
}
READERS = [(shop_inbound, inventory_events), (inventory_inbound, shop_events)]


@pytest.mark.parametrize(("reader", "producer"), READERS)
def test_every_inbound_event_exists_at_its_producer_with_the_same_subject(reader, producer):
    produced = classes(producer)
    for name, cls in classes(reader).items():
        assert name in produced, f"{reader.__name__}.{name} is not published by {producer.__name__}"
        assert cls.VERSION == produced[name].VERSION
        assert cls.subject(SAMPLES[name]) == SAMPLES[name].subject()


@pytest.mark.parametrize(("reader", "producer"), READERS)
def test_a_produced_event_decodes_into_the_readers_class_with_the_fields_it_needs(reader, producer):
    for name, cls in classes(reader).items():
        sample = SAMPLES[name]
        raw = encode(new_envelope(sample, correlation_id="o", causation_id=None), sample.to_data())
        envelope, event = decode(raw, index([cls]))
        assert isinstance(event, cls) and envelope.type == name
        for field in dataclasses.fields(cls):
            assert getattr(event, field.name) == getattr(sample, field.name, field.default)


def test_a_field_added_by_the_producer_is_ignored_by_the_reader():
    sample = SAMPLES["StockReserved"]
    data = {**sample.to_data(), "warehouse": "north"}
    _, event = decode(
        encode(new_envelope(sample, correlation_id="o", causation_id=None), data), index([shop_inbound.StockReserved])
    )
    assert event.order_id == "o"


def test_the_committed_event_catalogue_matches_the_code():
    from django.core.management import call_command

    call_command("export_event_schema", "--check")  # raises CommandError when docs/events.asyncapi.json is stale


@pytest.mark.parametrize(
    "line",
    [
        {"sku": "A", "quantity": "2"},
        {"sku": "A", "quantity": 0},
        {"sku": "A", "quantity": 2.0},
        {"sku": "A", "quantity": True},
        {"sku": 7, "quantity": 2},
        {"sku": "A"},
        "A x2",
    ],
)
def test_an_order_line_that_is_not_typed_does_not_decode(line):
    sample = SAMPLES["OrderPlaced"]
    data = {**sample.to_data(), "lines": [line]}
    raw = encode(new_envelope(sample, correlation_id="o", causation_id=None), data)
    with pytest.raises(DecodeError):
        decode(raw, index([inventory_inbound.OrderPlaced]))


def test_an_order_line_decodes_typed():
    sample = SAMPLES["OrderPlaced"]
    raw = encode(new_envelope(sample, correlation_id="o", causation_id=None), sample.to_data())
    _, event = decode(raw, index([inventory_inbound.OrderPlaced]))
    assert event.lines == [Line("A", 2)] and type(event.lines[0].quantity) is int
