"""The relay: publish committed outbox rows to JetStream, then mark them published.

One round: lock up to ``RELAY_BATCH_SIZE`` unpublished rows (``FOR UPDATE SKIP
LOCKED``, so two relays never take the same row), publish them all with
``publish_async`` (at most ``RELAY_MAX_IN_FLIGHT`` awaiting their ack, each
with a timeout), mark the acknowledged ones published and commit. Each message
carries ``Nats-Msg-Id`` = event id: if the relay dies after publishing and
before its commit, the rows are published again and JetStream drops the
duplicates (within the stream's duplicate window).

An idle relay learns of new events by polling the outbox every few
milliseconds (``RELAY_WAKEUP=poll``, the default), or by LISTENing for the
NOTIFY that every transaction recording events sends (``notify``): no queries
while idle and no poll delay, but the NOTIFY takes a database-wide lock at each
commit. ``make bench`` measures both.

The relay talks to PostgreSQL with psycopg's async connection directly: its
transaction spans the awaits of the publishes, which Django's thread-bound
connections cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.db import connection

from . import bus, observe
from .consumer import configured_consumers

log = logging.getLogger(__name__)

CLAIM = """
    SELECT seq, event_id::text, subject, payload, traceparent, type, occurred_at FROM events_storedevent
    WHERE published_at IS NULL ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED
"""
MARK = "UPDATE events_storedevent SET published_at = clock_timestamp() WHERE seq = ANY(%s)"


def database_conninfo() -> dict:
    """Return psycopg connection parameters of Django's default database."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    return params


@dataclass
class Relay:
    """Move events from the outbox to JetStream until ``stop`` is set."""

    batch_size: int = 0
    max_in_flight: int = 0
    publish_timeout: float = 0
    poll_interval: float = 0
    wakeup: str = ""
    linger: float | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    published: int = 0

    def __post_init__(self) -> None:
        self.batch_size = self.batch_size or settings.RELAY_BATCH_SIZE
        self.max_in_flight = self.max_in_flight or settings.RELAY_MAX_IN_FLIGHT
        self.publish_timeout = self.publish_timeout or settings.RELAY_PUBLISH_TIMEOUT
        self.poll_interval = self.poll_interval or settings.RELAY_POLL_INTERVAL
        self.wakeup = self.wakeup or settings.RELAY_WAKEUP
        self.linger = settings.RELAY_LINGER if self.linger is None else self.linger

    async def run(self) -> None:
        """Relay forever: reconnect to either server after any failure, with a backoff."""
        nc = await bus.connect("relay")
        js = nc.jetstream(publish_async_max_pending=self.max_in_flight)
        await self._ensure_streams(js)
        durables = [(c.stream, c.name) for c in configured_consumers()]
        sampler = asyncio.create_task(observe.sample_consumers(js, durables, self.stop))
        backoff = 0.2
        try:
            while not self.stop.is_set():
                try:
                    async with (
                        await psycopg.AsyncConnection.connect(**database_conninfo()) as db,
                        await self._listener() as listener,
                    ):
                        log.info(
                            "relay running (batch %d, in flight %d, wake-up by %s)",
                            self.batch_size,
                            self.max_in_flight,
                            self.wakeup,
                        )
                        await self._loop(db, js, listener)
                except (psycopg.Error, OSError) as exc:
                    log.warning("relay: database unavailable (%r); retrying in %.1fs", exc, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 5)
        finally:
            sampler.cancel()
            await bus.close(nc)

    async def _ensure_streams(self, js) -> None:
        while not self.stop.is_set():
            try:
                await bus.ensure_streams(js)
                return
            except Exception as exc:
                log.warning("relay: cannot set up streams yet (%r)", exc)
                await self._sleep(1)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            pass

    async def _listener(self):
        """A connection LISTENing for new events (notify mode), or a stand-in that holds none."""
        if self.wakeup != "notify":
            return contextlib.nullcontext()
        listener = await psycopg.AsyncConnection.connect(**database_conninfo(), autocommit=True)
        await listener.execute(f"LISTEN {settings.RELAY_NOTIFY_CHANNEL}")
        return listener

    async def _loop(self, db: psycopg.AsyncConnection, js, listener: psycopg.AsyncConnection | None) -> None:
        idle = self.poll_interval
        while not self.stop.is_set():
            sent, failed = await self.relay_once(db, js)
            if failed:
                await self._sleep(min(idle * 4, 2))  # NATS is struggling: back off
                idle = min(idle * 2, 2)
            elif sent == 0:
                if listener is None:
                    await self._sleep(idle)
                else:
                    await self._notified(listener)
            else:
                idle = self.poll_interval
                if sent < self.batch_size and listener is None and self.linger:
                    # The outbox is drained: rather than a round (and a commit) for every
                    # few events, let the next round carry what arrives meanwhile.
                    await self._sleep(self.linger)

    async def _notified(self, listener: psycopg.AsyncConnection) -> None:
        """Wait for a NOTIFY (one sent since the last round counts), or the fallback period."""
        async for _ in listener.notifies(timeout=settings.RELAY_NOTIFY_FALLBACK, stop_after=1):
            break

    async def relay_once(self, db: psycopg.AsyncConnection, js) -> tuple[int, int]:
        """Publish one batch; return (published, failed)."""
        async with db.transaction():
            rows = await (await db.execute(CLAIM, [self.batch_size])).fetchall()
            if not rows:
                return 0, 0
            acked = await self._publish(js, rows)
            if acked:
                await db.execute(MARK, [acked])
        observe.relayed(rows, acked)
        self.published += len(acked)
        return len(acked), len(rows) - len(acked)

    async def _publish(self, js, rows: list[tuple]) -> list[int]:
        """Publish rows in order, many in flight; return the seqs JetStream acknowledged."""
        futures = []
        for i, (seq, event_id, subject, payload, traceparent, *_) in enumerate(rows):
            # Below the in-flight bound the semaphore cannot block; nats-py's wait_stall would
            # still wrap each publish in asyncio.wait_for, a task and a loop turn per message,
            # which lets its flusher write every message with a send() of its own.
            stall = self.publish_timeout if i >= self.max_in_flight else None
            try:
                future = await js.publish_async(
                    subject, bytes(payload), wait_stall=stall, headers=observe.headers(event_id, traceparent)
                )
            except Exception as exc:
                log.warning("relay: publish of %s failed: %r", subject, exc)
                break
            futures.append((seq, time.monotonic(), future))
        acked = []
        for seq, sent_at, future in futures:
            remaining = max(0.01, self.publish_timeout - (time.monotonic() - sent_at))
            try:
                await asyncio.wait_for(asyncio.shield(future), remaining)
            except Exception as exc:  # timeout, or an error answer from JetStream
                log.warning("relay: no ack for seq %s: %r", seq, exc)
                future.cancel()
                continue
            acked.append(seq)
        return acked
