"""What the ops page shows: figures from the metrics registry, recent orders' hops, dead letters, failed events."""

from __future__ import annotations

import time
from collections import defaultdict

from django.db import connection

from events import metrics
from events.consumer import configured_consumers
from events.models import DeadLetter, Unpublished
from inventory.events import StockReservationRejected, StockReserved
from shop.events import OrderConfirmed, OrderPlaced, OrderRejected

# An order's path through the system, and the timestamp each step leaves in the event tables:
# OrderPlaced committed (occurred_at) → published and delivered: inventory starts (receipt)
# → StockReserved/Rejected committed → published and delivered: shop starts (receipt) → OrderConfirmed/Rejected.
HOPS = ["bus (placed)", "inventory", "bus (reserved)", "shop"]
RECENT_HOPS = """
    WITH decided AS (
        SELECT correlation_id, type, occurred_at FROM events_storedevent
        WHERE type = ANY(%(decisions)s) ORDER BY seq DESC LIMIT %(limit)s
    )
    SELECT d.correlation_id, d.type, p.occurred_at, pi.processed_at, r.occurred_at, ps.processed_at, d.occurred_at
    FROM decided d
    JOIN events_storedevent p ON p.correlation_id = d.correlation_id AND p.type = %(placed)s
    JOIN events_storedevent r ON r.correlation_id = d.correlation_id AND r.type = ANY(%(answers)s)
    JOIN events_processedevent pi ON pi.consumer = %(placed_reader)s AND pi.event_id = p.event_id
    JOIN events_processedevent ps ON ps.consumer = %(answer_reader)s AND ps.event_id = r.event_id
    ORDER BY d.occurred_at
"""


def _reader_of(type_: str) -> str:
    """Return the name of the configured consumer that subscribes to events of wire type ``type_``."""
    return next(c.name for c in configured_consumers() if any(name == type_ for name, _ in c.types))


def recent_order_hops(limit: int) -> list[dict]:
    """Return, for the last ``limit`` orders confirmed or rejected, the seconds spent in each hop."""
    params = {
        "limit": limit,
        "decisions": [OrderConfirmed.TYPE, OrderRejected.TYPE],
        "placed": OrderPlaced.TYPE,
        "answers": [StockReserved.TYPE, StockReservationRejected.TYPE],
        "placed_reader": _reader_of(OrderPlaced.TYPE),
        "answer_reader": _reader_of(StockReserved.TYPE),
    }
    with connection.cursor() as cursor:
        cursor.execute(RECENT_HOPS, params)
        rows = cursor.fetchall()
    result = []
    for order_id, decision, *stamps in rows:
        if None in stamps:
            continue
        seconds = [max(0.0, (b - a).total_seconds()) for a, b in zip(stamps, stamps[1:], strict=False)]
        result.append(
            {
                "order": order_id,
                "outcome": "confirmed" if decision == OrderConfirmed.TYPE else "rejected",
                "hops": dict(zip(HOPS, seconds, strict=True)),
                "total": sum(seconds),
            }
        )
    return result


def dead_letters(limit: int = 20) -> list[dict]:
    """Return the newest dead letters, waiting ones first."""
    rows = DeadLetter.objects.order_by("replayed_at", "-created_at")[:limit]
    return [
        {
            "id": str(d.public_id),
            "consumer": d.consumer,
            "subject": d.subject,
            "error": d.error[:300],
            "deliveries": d.deliveries,
            "created_at": d.created_at.isoformat(),
            "replayed_at": d.replayed_at.isoformat() if d.replayed_at else None,
        }
        for d in rows
    ]


def failed_events(limit: int = 20) -> list[dict]:
    """Return the oldest events waiting unpublished after a refusal of their own, with why and when next."""
    rows = Unpublished.objects.filter(attempts__gt=0).select_related("event").defer("event__payload")
    return [
        {
            "event_id": str(u.event.event_id),
            "type": u.event.type,
            "subject": u.event.subject,
            "attempts": u.attempts,
            "error": u.error[:300],
            "occurred_at": u.event.occurred_at.isoformat(),
            "retry_at": u.retry_at.isoformat() if u.retry_at else None,
        }
        for u in rows.order_by("seq")[:limit]
    ]


def _samples() -> dict[str, list]:
    """Return every sample of the aggregated registry, by sample name."""
    found: dict[str, list] = defaultdict(list)
    for family in metrics.registry().collect():
        for sample in family.samples:
            found[sample.name].append(sample)
    return found


def _total(samples, name: str, **labels: str) -> float:
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def _buckets(samples, name: str, **labels: str) -> list[list]:
    """Return a histogram's cumulative buckets [[le, count], ...], summed over processes and other labels."""
    counts: dict[float, float] = defaultdict(float)
    for s in samples.get(name + "_bucket", []):
        if all(s.labels.get(k) == v for k, v in labels.items()):
            counts[float(s.labels["le"])] += s.value
    return [[le if le != float("inf") else "+Inf", n] for le, n in sorted(counts.items())]


def figures() -> dict:
    """Return the live figures of the ops page: counters (the page turns them into rates), gauges, buckets."""
    s = _samples()
    pending = {
        x.labels["durable"]: {
            "pending": x.value,
            "ack_pending": _total(s, "events_jetstream_ack_pending_messages", durable=x.labels["durable"]),
        }
        for x in s.get("events_jetstream_pending_messages", [])
    }
    return {
        "at": time.time(),
        "counters": {
            "placed": _total(s, "events_recorded_total", type=OrderPlaced.TYPE),
            "confirmed": _total(s, "events_recorded_total", type=OrderConfirmed.TYPE),
            "rejected": _total(s, "events_recorded_total", type=OrderRejected.TYPE),
            "published": _total(s, "events_published_total"),
            "consumed": _total(s, "events_consumed_total"),
            "dead_letters": _total(s, "events_dead_letters_total"),
            "cache_hits": _total(s, "stock_cache_hits_total"),
            "cache_misses": _total(s, "stock_cache_misses_total"),
        },
        "latency": {
            "confirmed": _buckets(s, "shop_order_latency_seconds", outcome="confirmed"),
            "rejected": _buckets(s, "shop_order_latency_seconds", outcome="rejected"),
        },
        "pending": pending,
        "jetstream_sampled_at": _total(s, "events_jetstream_sampled_timestamp_seconds"),
        "outbox": {
            "depth": _total(s, "events_outbox_depth"),
            "oldest_age": _total(s, "events_outbox_oldest_age_seconds"),
            "failed": _total(s, "events_outbox_failed"),
        },
        "dead_letters_waiting": _total(s, "events_dead_letters_waiting"),
        "websockets": _total(s, "websocket_connections"),
    }
