"""The consumer runner: durable pull consumers shared by any number of workers.

For each durable consumer a worker process loops: fetch a batch, apply it in
**one database transaction** on a worker thread (a savepoint per message, so
one bad message does not sink the batch; the ``(consumer, event_id)`` receipt
written beside each effect), then, **after commit only**, ack what was applied
or skipped as a duplicate, nak with a backoff what failed, and terminate what
was dead-lettered. Several processes bound to one durable compete for its
messages: that is the load balancing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from enum import Enum

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils.module_loading import import_string

from . import bus, observe
from .base import DecodeError, Event, EventTypes, decode, index
from .models import DeadLetter
from .outbox import caused_by

log = logging.getLogger(__name__)

Handler = Callable[[Event], None]


@dataclass(frozen=True)
class Consumer:
    """A durable consumer: the stream and subjects it reads, the handlers it runs."""

    name: str
    app: str
    stream: str
    subjects: tuple[str, ...]
    subscriptions: tuple[tuple[type[Event], Handler], ...]
    # Entered inside each batch transaction, around all its messages: work done once per batch.
    batch_scope: Callable[[], AbstractContextManager] | None = None
    types: EventTypes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", index(cls for cls, _ in self.subscriptions))

    def handlers_for(self, event: Event) -> list[Handler]:
        """Return the handlers subscribed to this event's class, in table order."""
        return [handler for cls, handler in self.subscriptions if isinstance(event, cls)]


def configured_consumers(only: str | None = None) -> list[Consumer]:
    """Return the consumers listed in settings.EVENT_CONSUMERS, optionally of one app."""
    consumers = [import_string(path) for path in settings.EVENT_CONSUMERS]
    return [c for c in consumers if only is None or c.app == only]


class Verdict(Enum):
    ACK = "ack"  # applied, skipped as a duplicate, or not subscribed
    NAK = "nak"  # failed; redeliver after a backoff
    TERM = "term"  # dead-lettered; never redeliver


@dataclass(frozen=True)
class Delivery:
    """What the runner needs of one JetStream message."""

    data: bytes
    subject: str
    headers: dict[str, str]
    num_delivered: int
    stream_seq: int | None


def process_batch(consumer: Consumer, deliveries: list[Delivery], max_deliver: int) -> list[Verdict]:
    """Apply a batch in one transaction; if the transaction fails, apply each message alone."""
    close_old_connections()
    try:
        return _apply_in_one_transaction(consumer, deliveries, max_deliver)
    except DatabaseError as exc:
        # Nothing of the batch committed (a deadlock, a lost connection...). Retry
        # each message on its own so only a message that itself fails is counted.
        log.warning("batch of %d on %s failed (%s); retrying one by one", len(deliveries), consumer.name, exc)
        if len(deliveries) == 1:
            return [Verdict.NAK]
        connection.close()
        verdicts = []
        for delivery in deliveries:
            try:
                verdicts += _apply_in_one_transaction(consumer, [delivery], max_deliver)
            except DatabaseError:
                connection.close()
                verdicts.append(Verdict.NAK)
        return verdicts
    finally:
        close_old_connections()


def _apply_in_one_transaction(consumer: Consumer, deliveries: list[Delivery], max_deliver: int) -> list[Verdict]:
    scope = consumer.batch_scope() if consumer.batch_scope else nullcontext()
    with transaction.atomic(), scope:
        return [_apply(consumer, delivery, max_deliver) for delivery in deliveries]


def _apply(consumer: Consumer, delivery: Delivery, max_deliver: int) -> Verdict:
    try:
        envelope, event = decode(delivery.data, consumer.types)
    except DecodeError as exc:
        _dead_letter(consumer, delivery, f"cannot decode: {exc}")
        return Verdict.TERM
    if event is None:
        return Verdict.ACK
    try:
        with transaction.atomic():  # a savepoint: this message's effect, or nothing of it
            if not _first_receipt(consumer.name, envelope.event_id):
                return Verdict.ACK
            with caused_by(envelope), observe.handling(consumer.name, envelope, delivery):
                for handler in consumer.handlers_for(event):
                    handler(event)
    except Exception as exc:
        if delivery.num_delivered >= max_deliver:
            _dead_letter(consumer, delivery, f"failed {delivery.num_delivered} times, last: {exc!r}")
            return Verdict.TERM
        log.warning("%s failed on %s (delivery %d): %r", consumer.name, envelope.type, delivery.num_delivered, exc)
        return Verdict.NAK
    return Verdict.ACK


def _first_receipt(consumer: str, event_id: str) -> bool:
    """Record that ``consumer`` applies ``event_id``; False if it already had."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_processedevent (consumer, event_id, processed_at) "
            "VALUES (%s, %s, clock_timestamp()) ON CONFLICT DO NOTHING",
            [consumer, event_id],
        )
        return cursor.rowcount == 1


def _dead_letter(consumer: Consumer, delivery: Delivery, error: str) -> None:
    log.error("dead-lettered on %s (%s): %s", consumer.name, delivery.subject, error)
    observe.dead_lettered(consumer.name)
    DeadLetter.objects.create(
        consumer=consumer.name,
        subject=delivery.subject,
        data=delivery.data,
        headers=delivery.headers,
        error=error[:4000],
        deliveries=delivery.num_delivered,
        stream_seq=delivery.stream_seq,
    )


def nak_delay(num_delivered: int) -> float:
    """Seconds before a failed message comes back: 0.2, 0.4, 0.8 … capped at 10."""
    return min(0.1 * 2**num_delivered, 10.0)


def _delivery(msg) -> Delivery:
    meta = msg.metadata
    return Delivery(
        data=msg.data,
        subject=msg.subject,
        headers=dict(msg.headers or {}),
        num_delivered=meta.num_delivered,
        stream_seq=meta.sequence.stream,
    )


async def _settle(msgs: list, verdicts: list[Verdict]) -> None:
    for msg, verdict in zip(msgs, verdicts, strict=True):
        if verdict is Verdict.ACK:
            await msg.ack()
        elif verdict is Verdict.TERM:
            await msg.term()
        else:
            await msg.nak(delay=nak_delay(msg.metadata.num_delivered))


@dataclass
class Runner:
    """Run consumers in this process until ``stop`` is set."""

    consumers: Iterable[Consumer]
    batch_size: int = 0
    threads: int = 0
    max_deliver: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.consumers = list(self.consumers)
        self.batch_size = self.batch_size or settings.EVENT_BATCH_SIZE
        self.max_deliver = self.max_deliver or settings.EVENT_MAX_DELIVER
        # Threads, not one thread: database work of different consumers runs side by side.
        self.executor = ThreadPoolExecutor(self.threads or settings.EVENT_WORKER_THREADS, "consumer")

    async def run(self) -> None:
        """Connect (retrying forever), ensure streams and consumers, and consume."""
        nc = await bus.connect("workers")
        js = nc.jetstream()
        try:
            await self._ensure(js)
            await asyncio.gather(*(self._consume(js, c) for c in self.consumers))
        finally:
            await bus.close(nc)
            self.executor.shutdown(wait=True)

    async def _ensure(self, js) -> None:
        while not self.stop.is_set():
            try:
                await bus.ensure_streams(js)
                for c in self.consumers:
                    await bus.ensure_consumer(js, c.stream, c.name, c.subjects)
                return
            except Exception as exc:  # NATS not reachable yet, or JetStream not ready
                log.warning("cannot set up streams yet: %r", exc)
                await asyncio.sleep(1)

    async def _consume(self, js, consumer: Consumer) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.5
        while not self.stop.is_set():
            try:
                sub = await js.pull_subscribe_bind(durable=consumer.name, stream=consumer.stream)
                log.info("consuming %s from %s (batch %d)", consumer.name, consumer.stream, self.batch_size)
                while not self.stop.is_set():
                    try:
                        msgs = await sub.fetch(self.batch_size, timeout=1)
                    except TimeoutError:
                        continue
                    started = observe.fetched(consumer.name, msgs)
                    deliveries = [_delivery(m) for m in msgs]
                    verdicts = await loop.run_in_executor(
                        self.executor, process_batch, consumer, deliveries, self.max_deliver
                    )
                    await _settle(msgs, verdicts)
                    observe.settled(consumer.name, started)
                    backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: %r; retrying in %.1fs", consumer.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
