"""The hooks the outbox, the relay and the consumer runner call: metrics, log context, trace context.

Each is one line at its call site, so the machinery stays readable and the
observation lives here. Counters of committed work are incremented on commit
(``transaction.on_commit``): a rolled-back batch counts nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from django.db import transaction

from . import bus, logcontext, metrics, tracing
from .base import DecodeError, decode_envelope
from .logcontext import flow


def _age(since: datetime) -> float:
    return max(0.0, (datetime.now(UTC) - since).total_seconds())


# --- outbox


def recorded(envelopes) -> None:
    """Count events on commit; in a request, tie the request's log lines to their flow."""
    if not envelopes:
        return
    logcontext.bind(correlation_id=envelopes[0].correlation_id)
    if flow.isEnabledFor(20):
        for envelope in envelopes:
            # Its own correlation id too: an event recorded once per batch (stock levels) has no
            # message around it, and one of a set-based run may belong to another order than the first.
            with logcontext.bound(
                correlation_id=envelope.correlation_id, event_id=envelope.event_id, causation_id=envelope.causation_id
            ):
                flow.info("recorded %s", envelope.type)
    types = [e.type for e in envelopes]
    transaction.on_commit(lambda: [metrics.RECORDED.labels(t).inc() for t in types])


# --- relay


def relayed(rows: list[tuple], published: bus.Published) -> None:
    """Count what the relay (or a publisher) published first, what was refused, how long it waited in the outbox."""
    done = {row[1] for row in published.acked}
    failures = len(rows) - len(done) - len(published.refused)
    if failures:
        metrics.PUBLISH_FAILURES.inc(failures)
    for row, _ in published.refused:
        metrics.PUBLISH_REFUSED.labels(row[5]).inc()
    if published.duplicates:
        metrics.PUBLISH_DUPLICATES.inc(len(published.duplicates))
        done -= published.duplicates
    # rows: (seq, event_id, subject, payload, traceparent, type, occurred_at), as the relay claims them
    for _, event_id, subject, payload, traceparent, kind, occurred in rows:
        if event_id not in done:
            continue
        metrics.PUBLISHED.labels(kind).inc()
        metrics.RELAY_LAG.labels(kind).observe(_age(occurred))
        if flow.isEnabledFor(20):
            try:
                body = json.loads(bytes(payload))
            except ValueError:
                body = {}
            trace = tracing.parse(traceparent)
            fields = {k: body.get(k) for k in ("correlation_id", "event_id", "causation_id")}
            with logcontext.bound(**fields, trace_id=trace[0] if trace else None):
                flow.info("published %s on %s", kind, subject)


async def sample_consumers(js, durables: Iterable[tuple[str, str]], stop: asyncio.Event, interval: float = 1.0) -> None:
    """Read the pending counts of each (stream, durable) from JetStream into gauges, until ``stop``."""
    durables = list(durables)
    while not stop.is_set():
        try:
            for stream, name in durables:
                num_pending, ack_pending = await asyncio.wait_for(bus.consumer_pending(js, stream, name), 2)
                metrics.JS_PENDING.labels(stream, name).set(num_pending)
                metrics.JS_ACK_PENDING.labels(stream, name).set(ack_pending)
            metrics.JS_SAMPLED.set(time.time())
        except Exception as exc:  # NATS down or slow: keep the last figures, try again
            flow.debug("cannot sample consumers: %r", exc)
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass


# --- consumers


def fetched(consumer: str, msgs: list) -> float:
    """Count a fetched batch: its size, its redeliveries, each message's wait; return the start time."""
    metrics.BATCH_SIZE.labels(consumer).observe(len(msgs))
    now = datetime.now(UTC)
    for msg in msgs:
        meta = msg.metadata
        if meta.num_delivered > 1:
            metrics.REDELIVERIES.labels(consumer).inc()
        elif meta.timestamp is not None:
            metrics.QUEUE_WAIT.labels(consumer).observe(max(0.0, (now - meta.timestamp).total_seconds()))
    return time.perf_counter()


def settled(consumer: str, started: float) -> None:
    """Record how long a batch took from fetch to its acks."""
    metrics.BATCH_DURATION.labels(consumer).observe(time.perf_counter() - started)


@contextmanager
def handling(consumer: str, envelope, delivery) -> Iterator[None]:
    """Around a consumer's handlers for one event: its log fields, its trace, its timing and counts."""
    with (
        tracing.continued(delivery.headers.get("traceparent"), f"{consumer} {envelope.type}") as traceparent,
        logcontext.bound(
            correlation_id=envelope.correlation_id,
            event_id=envelope.event_id,
            causation_id=envelope.causation_id,
            consumer=consumer,
            delivery=delivery.num_delivered,
            trace_id=tracing.trace_id(traceparent),
        ),
    ):
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            metrics.HANDLER_FAILURES.labels(consumer, envelope.type).inc()
            flow.warning("%s failed on %s: %r", consumer, envelope.type, exc)
            raise
        elapsed = time.perf_counter() - started
        metrics.HANDLER_DURATION.labels(consumer, envelope.type).observe(elapsed)
        flow.info("handled %s in %.1f ms", envelope.type, elapsed * 1000)

    def on_commit() -> None:
        metrics.CONSUMED.labels(consumer, envelope.type).inc()
        metrics.APPLY_LAG.labels(consumer).observe(_age(envelope.occurred_at))

    transaction.on_commit(on_commit)


@contextmanager
def handling_run(consumer: str, items: list) -> Iterator[None]:
    """Around a batch handler's run of (envelope, delivery): each event's trace and log fields, timing, counts.

    The run is one call, so its time is shared out evenly among its events; each
    event recorded by the run continues the trace of the event that caused it
    (ids only: OpenTelemetry spans are made per message, not in a set-based run).
    """
    spans = {envelope.event_id: tracing.child_of(delivery.headers.get("traceparent")) for envelope, delivery in items}
    with tracing.per_cause(spans), logcontext.bound(consumer=consumer):
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            # The runner applies the run again message by message, which counts the message that fails.
            flow.info("%s: a run of %d failed set-based: %r", consumer, len(items), exc)
            raise
        each = (time.perf_counter() - started) / max(1, len(items))
        for envelope, delivery in items:
            metrics.HANDLER_DURATION.labels(consumer, envelope.type).observe(each)
            if flow.isEnabledFor(20):
                with logcontext.bound(
                    correlation_id=envelope.correlation_id,
                    event_id=envelope.event_id,
                    causation_id=envelope.causation_id,
                    delivery=delivery.num_delivered,
                    trace_id=tracing.trace_id(spans[envelope.event_id]),
                ):
                    flow.info("handled %s in a run of %d (%.1f ms each)", envelope.type, len(items), each * 1000)

    def on_commit() -> None:
        for envelope, _ in items:
            metrics.CONSUMED.labels(consumer, envelope.type).inc()
            metrics.APPLY_LAG.labels(consumer).observe(_age(envelope.occurred_at))

    transaction.on_commit(on_commit)


@contextmanager
def failing(consumer: str, delivery, envelope=None) -> Iterator[None]:
    """Around the lines of a message that failed or is dead-lettered: the fields of its flow, as far as known.

    The handlers' own context has ended by then. A message that cannot be decoded
    still names its consumer and delivery, and its ids if its envelope parses.
    """
    if envelope is None:
        try:
            envelope, _ = decode_envelope(delivery.data)
        except DecodeError:
            pass
    ids = {}
    if envelope is not None:
        ids = {
            "correlation_id": envelope.correlation_id,
            "event_id": envelope.event_id,
            "causation_id": envelope.causation_id,
        }
    trace = tracing.parse(delivery.headers.get("traceparent"))
    with logcontext.bound(
        **ids, consumer=consumer, delivery=delivery.num_delivered, trace_id=trace[0] if trace else None
    ):
        yield


def dead_lettered(consumer: str) -> None:
    """Count a message parked in the dead-letter store (once its transaction commits)."""
    transaction.on_commit(lambda: metrics.DEAD_LETTERS.labels(consumer).inc())


# --- the web


@contextmanager
def request(method: str, traceparent: str | None) -> Iterator[None]:
    """Around one HTTP request: a trace (continuing the caller's) and the log fields of its flow."""
    with tracing.continued(traceparent, f"HTTP {method}") as mine, logcontext.bound(trace_id=tracing.trace_id(mine)):
        yield
