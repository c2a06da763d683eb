"""The consumer runner: durable pull consumers shared by any number of workers.

For each durable consumer a worker process loops: fetch a batch, apply it in
**one database transaction** on a worker thread (a savepoint per message, so
one bad message does not sink the batch; the ``(consumer, event_id)`` receipt
written beside each effect), then, **after commit only**, ack what was applied
or skipped as a duplicate, nak with a backoff what failed, and terminate what
was dead-lettered. Several processes bound to one durable compete for its
messages: that is the load balancing.

Every handler gets its messages as its one argument: a ``Message`` (the
envelope and the event), or a list of them. A batch is first applied all or nothing: one statement
writes the receipts of the whole batch, and the handlers get only the events
not seen before. A handler marked ``@batch_handler`` takes a run of
consecutive messages at once, so it can do set-based SQL (a few statements per
batch instead of a few per message). If anything in the batch fails, it is rolled back and applied again
one message at a time, each in its own savepoint, so only the message that
itself fails is retried or dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, TypeVar

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils.module_loading import import_string

from . import bus, metrics, observe, publisher
from .base import DecodeError, Envelope, Event, EventTypes, decode, index
from .models import DeadLetter
from .pg import warm_connections
from .pull import PullFeed

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Message(Generic[E]):
    """One event as a handler gets it, with the envelope it came in (its id, correlation, time)."""

    envelope: Envelope
    event: E


# A handler takes one message: ``handler(message)``.
Handler = Callable[[Message], None]
# A batch handler takes a run of messages, in stream order, none of them a duplicate: ``handler(messages)``.
BatchHandler = Callable[[list[Message]], None]


def batch_handler(fn: BatchHandler | None = None, *, last: bool = False):
    """Mark ``fn`` as taking a whole run of messages: ``fn([Message, ...])``.

    ``last``: its messages commute with every other message of the batch (a
    read model that keeps the newest version, say), so the runner gives it all
    of them in one run, after the rest of the batch, wherever they were. Its
    rows are then locked once per batch in the handler's own order: two
    workers' batches cannot deadlock on them, as they could on the same rows
    locked over several runs of one transaction.
    """

    def mark(fn: BatchHandler) -> BatchHandler:
        fn.takes_batch = True
        fn.runs_last = last
        return fn

    return mark if fn is None else mark(fn)


def takes_batch(handler) -> bool:
    return getattr(handler, "takes_batch", False)


@dataclass(frozen=True)
class Consumer:
    """A durable consumer: the stream and subjects it reads, the handlers it runs."""

    name: str
    app: str
    stream: str
    subjects: tuple[str, ...]
    subscriptions: tuple[tuple[type[Event], Handler | BatchHandler], ...]
    types: EventTypes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", index(cls for cls, _ in self.subscriptions))

    def handlers_for(self, event: Event) -> list[Handler | BatchHandler]:
        """Return the handlers subscribed to this event's class, in table order."""
        return [handler for cls, handler in self.subscriptions if isinstance(event, cls)]

    def batch_handler_for(self, event: Event) -> BatchHandler | None:
        """Return the one batch handler of this event's class, if that is all it has."""
        handlers = self.handlers_for(event)
        return handlers[0] if len(handlers) == 1 and takes_batch(handlers[0]) else None


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
    """Apply a batch in one transaction, all or nothing; if that fails, message by message.

    The first attempt uses no savepoints: one statement writes every receipt,
    the handlers run, one commit. Only when something in it fails is the batch
    applied again with a savepoint around each message, so that only the
    message that itself fails is retried (or dead-lettered).
    """
    close_old_connections()
    try:
        try:
            return _apply_all_or_nothing(consumer, deliveries)
        except Exception as exc:
            log.info(
                "%s: batch of %d failed as a whole (%r); applying it message by message",
                consumer.name,
                len(deliveries),
                exc,
            )
        return _apply_message_by_message(consumer, deliveries, max_deliver)
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
                verdicts += _apply_message_by_message(consumer, [delivery], max_deliver)
            except DatabaseError:
                connection.close()
                verdicts.append(Verdict.NAK)
        return verdicts
    finally:
        close_old_connections()


def _process_collecting(consumer: Consumer, deliveries: list[Delivery], max_deliver: int, outlet):
    """``process_batch``; with an outlet, the outbox rows it committed are returned beside its verdicts, to send."""
    if outlet is None:  # its events go to the publisher thread
        return process_batch(consumer, deliveries, max_deliver), []
    with publisher.collecting() as committed:
        verdicts = process_batch(consumer, deliveries, max_deliver)
    return verdicts, committed


Decoded = tuple[int, Envelope, Event]  # a message's place in its batch, envelope and event


def _decode(consumer: Consumer, deliveries: list[Delivery], verdicts: list[Verdict]) -> list[Decoded]:
    """Decode a batch: dead-letter what cannot be decoded, skip types not subscribed to."""
    decoded = []
    for i, delivery in enumerate(deliveries):
        try:
            envelope, event = decode(delivery.data, consumer.types)
        except DecodeError as exc:
            with observe.failing(consumer.name, delivery):
                _dead_letter(consumer, delivery, f"cannot decode: {exc}")
            verdicts[i] = Verdict.TERM
            continue
        if event is not None:  # None: a type this consumer does not subscribe to
            decoded.append((i, envelope, event))
    return decoded


def _apply_all_or_nothing(consumer: Consumer, deliveries: list[Delivery]) -> list[Verdict]:
    """One transaction, no savepoints: every message's effect, or (raising) none."""
    with transaction.atomic():
        verdicts = [Verdict.ACK] * len(deliveries)
        decoded = _decode(consumer, deliveries, verdicts)
        fresh = _first_receipts(consumer.name, [envelope.event_id for _, envelope, _ in decoded])
        todo = []
        for item in decoded:
            if item[1].event_id in fresh:
                fresh.discard(item[1].event_id)  # the same event twice in one batch: once
                todo.append(item)
        for handler, run in _runs(consumer, todo):
            if handler is not None:
                with observe.handling_run(consumer.name, [(envelope, deliveries[i]) for i, envelope, _ in run]):
                    handler([Message(envelope, event) for _, envelope, event in run])
                continue
            for i, envelope, event in run:
                with observe.handling(consumer.name, envelope, deliveries[i]):
                    for each in consumer.handlers_for(event):
                        each(Message(envelope, event))
        return verdicts


def _runs(consumer: Consumer, decoded: list[Decoded]) -> list[tuple[BatchHandler | None, list[Decoded]]]:
    """Split messages into maximal runs that share one batch handler (None: per message), keeping order.

    The messages of a handler marked ``last`` make one run of their own, after all the others.
    """
    runs: list[tuple[BatchHandler | None, list[Decoded]]] = []
    last: dict[BatchHandler, list[Decoded]] = {}
    for item in decoded:
        handler = consumer.batch_handler_for(item[2])
        if handler is not None and getattr(handler, "runs_last", False):
            last.setdefault(handler, []).append(item)
        elif runs and runs[-1][0] is handler:
            runs[-1][1].append(item)
        else:
            runs.append((handler, [item]))
    return runs + list(last.items())


def _apply_message_by_message(consumer: Consumer, deliveries: list[Delivery], max_deliver: int) -> list[Verdict]:
    """One transaction, a savepoint per message: a failing message is undone alone and nak'd."""
    with transaction.atomic():
        verdicts = [Verdict.ACK] * len(deliveries)
        for i, envelope, event in _decode(consumer, deliveries, verdicts):
            verdicts[i] = _apply(consumer, deliveries[i], Message(envelope, event), max_deliver)
        return verdicts


def _apply(consumer: Consumer, delivery: Delivery, message: Message, max_deliver: int) -> Verdict:
    envelope = message.envelope
    try:
        with transaction.atomic():  # a savepoint: this message's effect, or nothing of it
            if not _first_receipt(consumer.name, envelope.event_id):
                return Verdict.ACK
            with observe.handling(consumer.name, envelope, delivery):
                for handler in consumer.handlers_for(message.event):
                    handler([message] if takes_batch(handler) else message)
    except Exception as exc:
        with observe.failing(consumer.name, delivery, envelope):
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


def _first_receipts(consumer: str, event_ids: list[str]) -> set[str]:
    """Record receipts for many events in one statement; return the ids not seen before."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_processedevent (consumer, event_id, processed_at) "
            "SELECT %s, id, clock_timestamp() FROM unnest(%s::uuid[]) AS id ON CONFLICT DO NOTHING RETURNING event_id",
            [consumer, list(dict.fromkeys(event_ids))],
        )
        return {str(row[0]) for row in cursor.fetchall()}


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


def linger_after(size: int, batch_size: int, took: float, fixed: float, adaptive_max: float, rate: float) -> float:
    """Seconds to wait before the next fetch, after a batch of ``size`` that took ``took`` seconds to apply.

    A full batch: none (more is waiting). A fixed linger, if set: that. Else
    adaptive, by ``rate``, the messages a second that reach this consumer
    lately: only if at that rate at least as many again as this batch held
    arrive within ``adaptive_max`` does the consumer wait, about as long as the
    batch took (at most ``adaptive_max``), so that the next batch carries more
    of them for the same fixed cost per batch (a transaction, its receipts, its
    statements). Below that rate waiting would buy little and only add latency:
    a quiet shop's orders never wait, nor do the few events one order brings at
    once (a reservation and its stock levels), and a busy shop's batches grow
    with the load.
    """
    if size >= batch_size:
        return 0.0
    if fixed:
        return fixed
    if size < 2 or not adaptive_max or rate * adaptive_max < size:
        return 0.0
    return min(took, adaptive_max)


class ArrivalRate:
    """Messages a second over the last ``window`` batches fetched."""

    def __init__(self, window: int = 16):
        self._batches: deque[tuple[float, int]] = deque(maxlen=window)

    def fetched(self, size: int, at: float) -> float:
        """Count a batch of ``size`` fetched at ``at`` (monotonic seconds); return the rate since the oldest."""
        self._batches.append((at, size))
        first_at, first_size = self._batches[0]
        span = at - first_at
        if span <= 0:
            return 0.0
        return (sum(size for _, size in self._batches) - first_size) / span


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


# Hand-offs whose stream copies are still to come, per consumer, beyond which the oldest are forgotten: a copy
# that went to another worker never comes here. A forgotten one's copy is applied as any other message, and its
# receipt, already written, makes that a skip.
HANDOFF_CLAIMS_MAX = 10_000
# Hand-offs in a row (an event handed off, the events its handling commits handed off in turn...), at most.
HANDOFF_DEPTH = 4


@dataclass
class Runner:
    """Run consumers in this process until ``stop`` is set.

    With ``handoff`` (``EVENT_HANDOFF``, and the runner publishing its batches'
    events itself), the events a batch commits are also handed straight to
    this process's consumers that take them, in a batch of their own on a
    worker thread, without waiting for the bus: the inventory's
    ``StockReserved`` reaches the shop's consumer as soon as it is committed.
    They are published all the same. Each handed-off event is *claimed* for
    its consumer before it is sent; when the stream's copy comes to that
    consumer here, it waits for the hand-off's outcome and acks the copy if
    the hand-off applied it (its effect and receipt are committed), else
    applies the copy as any other message. A copy that goes to another worker
    meets the receipt there and is skipped: nothing is lost (the copy is the
    durable delivery, acked only after an effect is committed) and nothing is
    doubled (the receipt).
    """

    consumers: Iterable[Consumer]
    batch_size: int = 0
    threads: int = 0
    max_deliver: int = 0
    linger: float | None = None
    linger_max: float | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    handoff: bool | None = None
    outlet: publisher.Outlet | None = field(default=None, init=False)
    # consumer name → {event id: the future of the hand-off that applies it, resolving to the ids it applied}
    _claims: dict[str, OrderedDict[str, asyncio.Future]] = field(default_factory=dict, init=False)
    _tasks: set[asyncio.Task] = field(default_factory=set, init=False)
    # consumer name → hand-offs waiting for it: (rows, their future, depth); and the consumers one is running for
    _lanes: dict[str, deque] = field(default_factory=dict, init=False)
    _handing: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.consumers = list(self.consumers)
        self.handoff = settings.EVENT_HANDOFF if self.handoff is None else self.handoff
        self.linger = settings.EVENT_FETCH_LINGER if self.linger is None else self.linger
        self.linger_max = settings.EVENT_FETCH_LINGER_MAX if self.linger_max is None else self.linger_max
        self.batch_size = self.batch_size or settings.EVENT_BATCH_SIZE
        self.max_deliver = self.max_deliver or settings.EVENT_MAX_DELIVER
        # Threads, not one thread: database work of different consumers runs side by side.
        self.threads = self.threads or settings.EVENT_WORKER_THREADS
        self.executor = ThreadPoolExecutor(self.threads, "consumer")

    async def run(self) -> None:
        """Connect (retrying forever), ensure streams and consumers, and consume."""
        inline = settings.EVENT_RUNNER_PUBLISHES  # a batch's events go out through this loop's outlet
        publisher.enable("workers", start=not inline)
        await asyncio.to_thread(warm_connections, self.threads)  # one for each batch thread
        nc = await bus.connect("workers")
        js = nc.jetstream()
        if inline and publisher.enabled():
            self.outlet = publisher.Outlet("workers", nc, delay=settings.EVENT_PUBLISH_DELAY)
        try:
            await self._ensure(js)
            await asyncio.gather(*(self._consume(nc, c) for c in self.consumers))
        finally:
            if self._tasks:  # hand-offs under way: their batches finish on their threads, their events go out
                await asyncio.wait(self._tasks, timeout=10)
            if self.outlet is not None:
                await self.outlet.close()
            await bus.close(nc)
            self.executor.shutdown(wait=True)

    async def _ensure(self, js) -> None:
        """Wait for the streams (``setup_streams``'s), then create or update this process's durables."""
        while not self.stop.is_set():
            try:
                await bus.await_streams(js, self.stop, "workers")
                for c in self.consumers:
                    await bus.ensure_consumer(js, c.stream, c.name, c.subjects)
                return
            except Exception as exc:  # NATS not reachable yet, or JetStream not ready
                log.warning("cannot set up streams yet: %r", exc)
                await asyncio.sleep(1)

    async def _consume(self, nc, consumer: Consumer) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.5
        arrivals = ArrivalRate()
        while not self.stop.is_set():
            feed = PullFeed(nc, consumer.stream, consumer.name)
            closer = asyncio.create_task(self._close_on_stop(feed))
            try:
                await feed.start()
                log.info("consuming %s from %s (batch %d)", consumer.name, consumer.stream, self.batch_size)
                while not self.stop.is_set():
                    msgs = await feed.next_batch(self.batch_size)
                    if msgs and self._claims.get(consumer.name):
                        msgs = await self._ack_handed_off(consumer.name, msgs)
                    if not msgs:
                        continue
                    began = time.monotonic()
                    rate = arrivals.fetched(len(msgs), began)
                    started = observe.fetched(consumer.name, msgs)
                    deliveries = [_delivery(m) for m in msgs]
                    verdicts, committed = await loop.run_in_executor(
                        self.executor, _process_collecting, consumer, deliveries, self.max_deliver, self.outlet
                    )
                    if committed:
                        await self._pass_on(committed)  # the batch's events, before its acks
                    await _settle(msgs, verdicts)
                    observe.settled(consumer.name, started)
                    backoff = 0.5
                    pause = linger_after(
                        len(msgs), self.batch_size, time.monotonic() - began, self.linger, self.linger_max, rate
                    )
                    if pause:  # caught up: let the next batch gather what arrives meanwhile
                        await asyncio.sleep(pause)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: %r; retrying in %.1fs", consumer.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
            finally:
                closer.cancel()
                await feed.close()

    async def _pass_on(self, committed: list[bus.Row], depth: int = 0) -> None:
        """Send the events a batch committed, first handing each to this process's consumers that take it."""
        if self.handoff and depth < HANDOFF_DEPTH:
            for consumer, rows in self._takers(committed):
                done = asyncio.get_running_loop().create_future()
                claims = self._claims.setdefault(consumer.name, OrderedDict())
                for row in rows:
                    claims[row[1]] = done
                while len(claims) > HANDOFF_CLAIMS_MAX:
                    claims.popitem(last=False)
                self._lanes.setdefault(consumer.name, deque()).append((rows, done, depth))
                if consumer.name not in self._handing:
                    self._handing.add(consumer.name)
                    self._tasks.add(task := asyncio.create_task(self._hand_offs(consumer)))
                    task.add_done_callback(self._tasks.discard)
        await self.outlet.send(committed)

    def _takers(self, rows: list[bus.Row]) -> list[tuple[Consumer, list[bus.Row]]]:
        """Return each consumer of this process with the rows whose subject it reads (its stream, its filter)."""
        streams = {row[1]: bus.stream_of(row[2]) for row in rows}
        return [
            (consumer, mine)
            for consumer in self.consumers
            if (
                mine := [
                    row
                    for row in rows
                    if streams[row[1]] == consumer.stream
                    and any(bus.subject_matches(p, row[2]) for p in consumer.subjects)
                ]
            )
        ]

    async def _hand_offs(self, consumer: Consumer) -> None:
        """Apply what waits to be handed off to ``consumer``, one batch at a time, each taking all that waits.

        One at a time per consumer, as its fetched batches are: concurrent hand-offs
        to one consumer would contend for the same rows (the stock levels of a read
        model), and under load each batch carries the events of several batches
        before it.
        """
        lane = self._lanes[consumer.name]
        try:
            while lane:
                rows, waiting, depth = [], [], 0
                while lane and len(rows) < self.batch_size:
                    more, done, at = lane.popleft()
                    rows += more
                    waiting.append(done)
                    depth = max(depth, at)
                applied = await self._hand_off(consumer, rows, depth)
                for done in waiting:
                    if not done.done():
                        done.set_result(applied)
        finally:
            self._handing.discard(consumer.name)
            while lane:  # cancelled: what was left is applied from the stream's copies
                _, done, _ = lane.popleft()
                if not done.done():
                    done.set_result(set())

    async def _hand_off(self, consumer: Consumer, rows: list[bus.Row], depth: int) -> set[str]:
        """Apply committed rows as a batch of ``consumer``'s; return the ids it applied (or skipped as seen)."""
        applied: set[str] = set()
        try:
            # delivery 0: handed off, not delivered (it never counts towards EVENT_MAX_DELIVER)
            deliveries = [Delivery(bytes(row[3]), row[2], bus.message_headers(row[1], row[4]), 0, None) for row in rows]
            verdicts, committed = await asyncio.get_running_loop().run_in_executor(
                self.executor, _process_collecting, consumer, deliveries, self.max_deliver, self.outlet
            )
            applied = {row[1] for row, verdict in zip(rows, verdicts, strict=True) if verdict is Verdict.ACK}
            metrics.HANDED_OFF.labels(consumer.name).inc(len(rows))
            if committed:
                await self._pass_on(committed, depth + 1)
        except Exception as exc:  # the stream's copies are applied as usual
            log.warning("%s: hand-off of %d events failed: %r", consumer.name, len(rows), exc)
        return applied

    async def _ack_handed_off(self, name: str, msgs: list) -> list:
        """Ack the stream copies of events a hand-off applied here; return the other messages."""
        claims, rest = self._claims[name], []
        for msg in msgs:
            event_id = (msg.headers or {}).get("Nats-Msg-Id", "")
            done = claims.pop(event_id, None)
            if done is not None and event_id in await done:
                await msg.ack()
                metrics.HANDOFF_COPIES.labels(name).inc()
            else:
                rest.append(msg)
        return rest

    async def _close_on_stop(self, feed: PullFeed) -> None:
        await self.stop.wait()
        await feed.close()
