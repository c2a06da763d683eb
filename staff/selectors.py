"""Reads of the staff pages: stock (inventory's own rows) and the event log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef

from events.models import StoredEvent, Unpublished
from inventory.selectors import stock_all
from shop.selectors import product_names

EVENTS_PER_PAGE = 50


def stock_rows() -> list[tuple[Any, str]]:
    """Return every stock item (inventory's row) with its product's name (two queries)."""
    items = stock_all()
    names = product_names([i.sku for i in items])
    return [(item, names.get(item.sku, "")) for item in items]


def events_recent(*, type: str = "", correlation: str = "", page: int = 1) -> tuple[list[StoredEvent], bool]:
    """Return one page of events, newest first, and whether an older page exists."""
    events = _with_waiting(StoredEvent.objects.defer("payload")).order_by("-seq")
    if type:
        events = events.filter(type=type)
    if correlation:
        events = events.filter(correlation_id=correlation)
    start = (page - 1) * EVENTS_PER_PAGE
    rows = list(events[start : start + EVENTS_PER_PAGE + 1])
    return rows[:EVENTS_PER_PAGE], len(rows) > EVENTS_PER_PAGE


def _with_waiting(events):
    """Annotate each event with ``waiting``: whether it is still in the outbox, not yet published."""
    return events.annotate(waiting=Exists(Unpublished.objects.filter(event_id=OuterRef("event_id"))))


def event_types() -> list[str]:
    return list(StoredEvent.objects.order_by("type").values_list("type", flat=True).distinct())


@dataclass
class ChainNode:
    """One event of a chain, its depth in the causation tree and its timings."""

    event: StoredEvent
    depth: int = 0
    ms_since_first: int = 0
    ms_since_cause: int | None = None
    children: list[ChainNode] = field(default_factory=list)


def event_chain(*, correlation_id: str) -> list[ChainNode]:
    """Return the events sharing a correlation id, depth-first along causation, with timings."""
    events = _with_waiting(StoredEvent.objects.defer("payload")).filter(correlation_id=correlation_id)
    events = list(events.order_by("seq"))
    if not events:
        return []
    nodes = {str(e.event_id): ChainNode(e) for e in events}
    roots = []
    for node in nodes.values():
        cause = nodes.get(node.event.causation_id or "")
        (cause.children if cause else roots).append(node)
    first = events[0].occurred_at
    ordered: list[ChainNode] = []

    def visit(node: ChainNode, depth: int, cause: ChainNode | None) -> None:
        node.depth = depth
        node.ms_since_first = _ms(node.event.occurred_at - first)
        node.ms_since_cause = _ms(node.event.occurred_at - cause.event.occurred_at) if cause else None
        ordered.append(node)
        for child in node.children:
            visit(child, depth + 1, node)

    for root in roots:
        visit(root, 0, None)
    return ordered


def _ms(delta) -> int:
    return round(delta.total_seconds() * 1000)
