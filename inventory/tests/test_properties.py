"""Inventory against a model, by Hypothesis: any mix of orders, cancels, restocks and deliveries.

The bus is played by the test: every event the shop would publish is kept, and
a step delivers any of them, in any order, any number of times, through the
real consumer runner (``process_batch``: receipts, batch handler, savepoints)
to the real handlers, on the real database. A plain-Python model says what the
stock must be. After every step: nothing is oversold, the stock rows equal the
model, and they equal the fold of the inventory's own events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from events.base import Event, Line, encode, new_envelope
from events.consumer import Delivery, Verdict, process_batch
from inventory.handlers import CONSUMER
from inventory.inbound import OrderCancelled, OrderPlaced
from inventory.models import StockItem
from inventory.projections import replay
from inventory.services import stock_receive

SKUS = ("A", "B", "C")


@dataclass
class ModelOrder:
    lines: dict[str, int]
    status: str = "none"  # none | held | rejected | released | cancelled-first


@dataclass
class Model:
    """What the stock must be: the reservation rules of DESIGN §5, in plain Python."""

    on_hand: dict[str, int] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)
    orders: dict[str, ModelOrder] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # event ids already applied

    def available(self, sku: str) -> int:
        return self.on_hand.get(sku, 0) - self.reserved.get(sku, 0)

    def receive(self, sku: str, quantity: int) -> None:
        self.on_hand[sku] = self.on_hand.get(sku, 0) + quantity
        self.reserved.setdefault(sku, 0)

    def deliver(self, event_id: str, event: Event) -> None:
        if event_id in self.seen:
            return
        self.seen.add(event_id)
        order = self.orders[event.order_id]
        if isinstance(event, OrderPlaced) and order.status == "none":
            fits = all(sku in self.on_hand and self.available(sku) >= q for sku, q in order.lines.items())
            order.status = "held" if fits else "rejected"
            for sku, quantity in order.lines.items() if fits else ():
                self.reserved[sku] += quantity
        elif isinstance(event, OrderCancelled) and order.status in ("none", "held"):
            for sku, quantity in order.lines.items() if order.status == "held" else ():
                self.reserved[sku] -= quantity
            order.status = "released" if order.status == "held" else "cancelled-first"


class InventoryMachine(RuleBasedStateMachine):
    """Steps a shop and a bus could take; each example works on SKUs of its own."""

    @initialize(stock=st.lists(st.integers(1, 6), min_size=len(SKUS), max_size=len(SKUS)))
    def given_stock(self, stock: list[int]) -> None:
        self.prefix = uuid.uuid4().hex[:8]
        self.model = Model()
        self.published: list[tuple[str, Delivery]] = []  # (event id, its message), as the stream keeps them
        self.events: dict[str, Event] = {}
        for sku, quantity in zip(self.skus(), stock, strict=True):
            stock_receive(sku=sku, quantity=quantity, create=True)
            self.model.receive(sku, quantity)

    def skus(self) -> list[str]:
        return [f"P{self.prefix}-{s}" for s in SKUS]

    def publish(self, event: Event) -> None:
        envelope = new_envelope(event, correlation_id=event.order_id, causation_id=None)
        data = encode(envelope, event.to_data())
        self.published.append((envelope.event_id, Delivery(data, event.subject(), {}, 1, len(self.published) + 1)))
        self.events[envelope.event_id] = event

    @rule(lines=st.lists(st.tuples(st.sampled_from(SKUS + ("UNKNOWN",)), st.integers(1, 4)), min_size=1, max_size=3))
    def place_an_order(self, lines: list[tuple[str, int]]) -> None:
        order_id = str(uuid.uuid4())
        lines_out = [Line(f"P{self.prefix}-{sku}", quantity) for sku, quantity in lines]
        merged: dict[str, int] = {}
        for line in lines_out:
            merged[line.sku] = merged.get(line.sku, 0) + line.quantity
        self.model.orders[order_id] = ModelOrder(merged)
        self.publish(OrderPlaced(order_id=order_id, lines=lines_out))

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data())
    def cancel_an_order(self, data) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.model.orders)))
        self.publish(OrderCancelled(order_id=order_id))

    @rule(sku=st.sampled_from(SKUS), quantity=st.integers(1, 5))
    def restock(self, sku: str, quantity: int) -> None:
        stock_receive(sku=f"P{self.prefix}-{sku}", quantity=quantity)
        self.model.receive(f"P{self.prefix}-{sku}", quantity)

    @precondition(lambda self: self.published)
    @rule(data=st.data())
    def deliver_a_batch(self, data) -> None:
        """Deliver waiting messages in any order, with some delivered before again (a lost ack)."""
        waiting = [m for m in self.published if m[0] not in self.model.seen]
        fresh = data.draw(st.lists(st.sampled_from(waiting), unique_by=lambda m: m[0], max_size=6)) if waiting else []
        again = data.draw(st.lists(st.sampled_from(self.published), min_size=0 if fresh else 1, max_size=2))
        batch = data.draw(st.permutations(fresh + again))
        verdicts = process_batch(CONSUMER, [delivery for _, delivery in batch], max_deliver=5)
        assert verdicts == [Verdict.ACK] * len(batch)
        for event_id, _ in batch:
            self.model.deliver(event_id, self.events[event_id])

    def rows(self) -> dict[str, tuple[int, int]]:
        return {i.sku: (i.on_hand, i.reserved) for i in StockItem.objects.filter(sku__in=self.skus())}

    @invariant()
    def nothing_is_oversold(self) -> None:
        for sku, (on_hand, reserved) in self.rows().items():
            assert 0 <= reserved <= on_hand, sku

    @invariant()
    def stock_is_what_the_model_says(self) -> None:
        expected = {sku: (self.model.on_hand[sku], self.model.reserved[sku]) for sku in self.skus()}
        assert self.rows() == expected

    @invariant()
    def stock_is_the_fold_of_its_events(self) -> None:
        folded = {sku: (lv.on_hand, lv.reserved, lv.version) for sku, lv in replay().items() if sku in self.skus()}
        live = {i.sku: (i.on_hand, i.reserved, i.version) for i in StockItem.objects.filter(sku__in=self.skus())}
        assert folded == live


@pytest.mark.django_db(transaction=True)
def test_inventory_behaves_as_its_model_whatever_the_deliveries():
    run_state_machine_as_test(
        InventoryMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
            # Shrinking a failure of this machine can take minutes: report the first one found as it is.
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
