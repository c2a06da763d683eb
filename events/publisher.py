"""Publish after commit: the process that commits events publishes them itself, at once.

With ``EVENT_PUBLISH_AFTER_COMMIT`` on (the default), a web or worker process
hands the events a transaction recorded to its publisher **when that
transaction commits** (``transaction.on_commit``; never for a rollback). The
publisher is a thread with an event loop and a NATS connection of its own: it
publishes them with ``Nats-Msg-Id`` = event id, as the relay does, and takes
the acknowledged ones out of the outbox (a DELETE of their ``events_outbox``
rows: the mark), in a task of its own so that the next publish never waits for
the last mark. The acks too are awaited apart: the rows handed over while
earlier ones await theirs are sent at once, not after them. The committing
thread waits only until its events are written to NATS (not for their ack).

The outbox stays the record and the relay the safety net: whatever a publisher
did not publish (the process died between commit and publish, NATS was down,
the publisher's backlog was full, JetStream refused that row) is still an unpublished row, and the relay
publishes rows older than ``RELAY_SWEEP_AGE`` seconds. If both publish one
event (a publisher slower than the sweep), JetStream drops the second copy as
a duplicate of its message id, and the second mark deletes nothing.

``EVENT_PUBLISH_DELAY`` holds every publish back by that many seconds: a fault
to inject (tests and the lab use it to open the window between commit and
publish), never a setting for production.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings

from . import bus, observe
from .bus import Row, Sending, send_rows
from .pg import database_conninfo

log = logging.getLogger(__name__)

MARK = "DELETE FROM events_outbox WHERE event_id = ANY(%s::uuid[])"
# Seconds a publisher gathers acknowledged events before marking them, in one DELETE (far below
# RELAY_SWEEP_AGE, so the relay does not take them for lost): a statement per 100 ms, not per request
# (at 80 orders/s, every 20 ms made it one more transaction per order, as many as the orders themselves).
MARK_EVERY = 0.1
# Rows waiting in one publisher beyond which it drops new ones (the relay sweeps them): NATS is away.
MAX_BACKLOG = 10_000


class Outlet:
    """Sends committed rows on one NATS connection and marks the acknowledged ones, all on the caller's loop.

    ``send`` returns once the rows are written to the connection; their acks are
    awaited in a task apart, so the next rows are sent meanwhile, not after them,
    and the acknowledged ones are marked (their ``events_outbox`` rows deleted) in
    one statement every ``MARK_EVERY`` seconds. Used by a ``Publisher`` thread and,
    in a worker, by the consumer runner itself, on its own loop and connection.
    """

    def __init__(self, name: str, nc, *, delay: float = 0.0, max_in_flight: int = 0, timeout: float = 0.0):
        self.name = name
        self.delay = delay
        self.max_in_flight = max_in_flight or settings.RELAY_MAX_IN_FLIGHT
        self.timeout = timeout or settings.RELAY_PUBLISH_TIMEOUT
        self.published = 0  # events marked published
        self._nc = nc
        self._js = nc.jetstream(publish_async_max_pending=self.max_in_flight)
        self._conninfo = database_conninfo()
        self._in_flight = 0  # rows sent whose ack is still awaited
        self._tasks: set[asyncio.Task] = set()  # delayed sends and the waits for acks
        self._acked: list[str] = []  # event ids acknowledged by JetStream, not yet marked
        self._marks_due = asyncio.Event()
        self._marker = asyncio.create_task(self._mark_forever())

    async def send(self, rows: list[Row]) -> None:
        """Write ``rows`` to NATS now (or, with ``delay``, that many seconds later, returning at once)."""
        if self.delay:
            self._spawn(self._send_later(rows))
        else:
            await self._send(rows)

    async def close(self) -> None:
        """Wait a while for the acks still due and mark them; what is left, the relay publishes."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.timeout)
        self._marker.cancel()
        await asyncio.gather(self._marker, return_exceptions=True)

    def _spawn(self, coroutine) -> None:
        self._tasks.add(task := asyncio.create_task(coroutine))
        task.add_done_callback(self._tasks.discard)

    async def _send_later(self, rows: list[Row]) -> None:
        await asyncio.sleep(self.delay)
        await self._send(rows)

    async def _send(self, rows: list[Row]) -> None:
        if not rows or not self._nc.is_connected:
            return  # the relay publishes them when NATS is back
        # A row refused for its own fault is left unpublished, the relay marks it failed.
        sending = await send_rows(
            self._js, rows, self.max_in_flight, self.timeout, self._nc.max_payload, self._in_flight
        )
        self._in_flight += len(sending)
        self._spawn(self._acks(rows, sending))

    async def _acks(self, rows: list[Row], sending: Sending) -> None:
        try:
            result = await sending.acks(self.timeout)
        finally:
            self._in_flight -= len(sending)
        observe.relayed(rows, result)
        if result.acked:
            self._acked += [row[1] for row in result.acked]
            self._marks_due.set()

    async def _mark_forever(self) -> None:
        """Mark what was acknowledged as published, apart from publishing: the next publish never waits on it.

        The marks are committed without waiting for the disk (``synchronous_commit``
        off, for this connection only): a mark lost in a crash of PostgreSQL only
        makes the relay publish that event again, and JetStream drops the copy.
        """
        db: psycopg.AsyncConnection | None = None
        try:
            while True:
                await self._marks_due.wait()
                await asyncio.sleep(MARK_EVERY)  # what is acknowledged meanwhile goes in the same DELETE
                self._marks_due.clear()
                ids, self._acked = self._acked, []
                try:
                    if db is None or db.closed:
                        db = await psycopg.AsyncConnection.connect(**self._conninfo, autocommit=True)
                        await db.execute("SET synchronous_commit = off")
                    await db.execute(MARK, [ids])
                    self.published += len(ids)
                except (psycopg.Error, OSError) as exc:
                    # Published but not marked: the relay publishes them again and JetStream drops the copies.
                    log.warning("publisher %s: cannot mark %d events published: %r", self.name, len(ids), exc)
                    db = None
        finally:
            if db is not None:
                await db.close()


class Publisher:
    """A thread that publishes committed outbox rows as soon as they are handed to it (an ``Outlet`` of its own)."""

    def __init__(
        self, name: str, *, delay: float = 0.0, max_in_flight: int = 0, timeout: float = 0.0, wait: float = 0.05
    ):
        self.name = name
        self.delay = delay
        self.wait = wait  # seconds a caller of submit waits at most for its events to be sent
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.outlet: Outlet | None = None
        self._rows: list[Row] = []
        self._sent: list[threading.Event] = []  # the callers waiting for their rows to be sent
        self._nc = None  # the NATS connection, once made
        self._loop = asyncio.new_event_loop()
        self._wake = asyncio.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"publisher-{name}", daemon=True)
        self._thread.start()

    @property
    def published(self) -> int:
        return self.outlet.published if self.outlet is not None else 0

    def submit(self, rows: list[Row]) -> None:
        """Hand over rows just committed (from any thread); return once they are sent, or after ``wait`` at most.

        The caller waits (a fraction of a millisecond) for its events to be
        written to NATS, not acknowledged: a thread that hands them over and
        runs on holds the GIL that the publisher needs, and its events would
        leave only when it next lets go of it, after the response or the batch.
        """
        sent = threading.Event()
        self._loop.call_soon_threadsafe(self._take, rows, sent)
        if self._nc is not None and self._nc.is_connected and not self.delay:  # else nothing to wait for soon
            sent.wait(self.wait)

    def close(self, timeout: float = 5) -> None:
        """Stop after the rows in hand, closing both connections (what is left, the relay publishes)."""
        self._loop.call_soon_threadsafe(self._close)
        self._thread.join(timeout)

    def _close(self) -> None:
        self._closing = True
        self._wake.set()

    def _take(self, rows: list[Row], sent: threading.Event) -> None:
        if len(self._rows) + len(rows) > MAX_BACKLOG:
            log.info("publisher %s: backlog full; %d events left to the relay", self.name, len(rows))
            sent.set()
            return
        self._rows.extend(rows)
        self._sent.append(sent)
        self._wake.set()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        nc = self._nc = await bus.connect(f"publisher-{self.name}")
        outlet = self.outlet = Outlet(
            self.name, nc, delay=self.delay, max_in_flight=self.max_in_flight, timeout=self.timeout
        )
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            rows, self._rows = self._rows, []
            sent, self._sent = self._sent, []
            await outlet.send(rows)
            await asyncio.sleep(0)  # one turn of the loop: nats-py's flusher writes what was just sent
            _release(sent)
        await outlet.close()
        await bus.close(nc)


def _release(waiting: list[threading.Event]) -> None:
    for event in waiting:
        event.set()


_name: str | None = None
_publisher: Publisher | None = None
_pid: int | None = None
_lock = threading.Lock()


def enable(name: str, *, start: bool = True) -> None:
    """Make this process publish the events it commits (if ``EVENT_PUBLISH_AFTER_COMMIT``), starting now.

    Started at once rather than at the first commit: its NATS connection takes tens of
    milliseconds, which the first events of every new process waited for (the slowest orders
    of a fresh devstack under ``make loadtest``: 30 ms in each bus hop instead of 3).
    ``start=False``: only on first use (a worker, whose batches publish through its runner).
    """
    global _name
    _name = name if settings.EVENT_PUBLISH_AFTER_COMMIT else None
    if start:
        current()


def enabled() -> bool:
    """Return whether this process publishes what it commits."""
    return _name is not None


_local = threading.local()


@contextmanager
def collecting() -> Iterator[list[Row]]:
    """Keep what this thread's transactions commit meanwhile in the list yielded, for the caller to publish.

    A consumer runner's batch runs in it: the runner then sends the batch's
    events itself, from its own loop and NATS connection, as soon as the batch
    returns (before its acks), with no hand-over to the publisher thread.
    """
    rows: list[Row] = []
    _local.rows = rows
    try:
        yield rows
    finally:
        _local.rows = None


def hand_over(rows: list[Row]) -> None:
    """At commit: give the rows to this thread's collecting caller if there is one, else to the publisher."""
    kept = getattr(_local, "rows", None)
    if kept is not None:
        kept.extend(rows)
    elif (eager := current()) is not None:
        eager.submit(rows)


def current() -> Publisher | None:
    """Return this process's publisher, started on first use (after a fork, a new one), or None."""
    global _publisher, _pid
    if _name is None:
        return None
    if _publisher is None or _pid != os.getpid():
        with _lock:
            if _publisher is None or _pid != os.getpid():
                _publisher = Publisher(_name, delay=settings.EVENT_PUBLISH_DELAY)
                _pid = os.getpid()
    return _publisher
