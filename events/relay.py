"""The relay: publish committed outbox rows to JetStream, then take them out of the outbox.

One round: lock up to ``RELAY_BATCH_SIZE`` unpublished rows (``FOR UPDATE SKIP
LOCKED``, so two relays never take the same row), publish them all with
``publish_async`` (at most ``RELAY_MAX_IN_FLIGHT`` awaiting their ack, each
with a timeout), delete the acknowledged ones from the outbox and commit. Each message
carries ``Nats-Msg-Id`` = event id: if the relay dies after publishing and
before its commit, the rows are published again and JetStream drops the
duplicates (within the stream's duplicate window).

A row JetStream refuses for a fault of its own (over the server's
``max_payload``, a subject no stream takes: ``events.bus.refusal``) does not
stop the round: it is marked failed (its error, one more attempt, and a next
try ``RELAY_RETRY_BASE`` × 2^attempts seconds later, at most
``RELAY_RETRY_MAX``), claims pass it by until then, and the rows behind it are
published. That mark is the one statement a round adds, and only a round with
a refusal. A passing fault (NATS down, a timeout) leaves the rows as they were
and the relay backs off, to publish them again.

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
from dataclasses import dataclass, field

import psycopg
from django.conf import settings

from . import bus, observe
from .bus import publish_rows
from .consumer import configured_consumers
from .pg import database_conninfo

log = logging.getLogger(__name__)

# The outbox holds only the events in flight, in log order; their log rows give the rest.
CLAIM = """
    SELECT e.seq, e.event_id::text, e.subject, e.payload, e.traceparent, e.type, e.occurred_at
    FROM (
        SELECT seq FROM events_outbox WHERE retry_at IS NULL OR retry_at <= now()
        ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED
    ) o JOIN events_storedevent e ON e.seq = o.seq
    ORDER BY e.seq
"""
# With publish after commit, the rows younger than RELAY_SWEEP_AGE are their own publisher's.
CLAIM_SWEEP = """
    SELECT e.seq, e.event_id::text, e.subject, e.payload, e.traceparent, e.type, e.occurred_at
    FROM (
        SELECT seq FROM events_outbox
        WHERE (retry_at IS NULL OR retry_at <= now()) AND queued_at < now() - make_interval(secs => %s)
        ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED
    ) o JOIN events_storedevent e ON e.seq = o.seq
    ORDER BY e.seq
"""
MARK = "DELETE FROM events_outbox WHERE seq = ANY(%s)"
# The exponent stops at 30: past the cap anyway, and 2^attempts stays a number.
MARK_FAILED = """
    UPDATE events_outbox AS o
    SET attempts = o.attempts + 1, error = f.error,
        retry_at = clock_timestamp() + make_interval(secs => least(%s * power(2, least(o.attempts, 30)), %s))
    FROM unnest(%s::bigint[], %s::text[]) AS f(seq, error) WHERE o.seq = f.seq
"""


@dataclass
class Relay:
    """Move events from the outbox to JetStream until ``stop`` is set."""

    batch_size: int = 0
    max_in_flight: int = 0
    publish_timeout: float = 0
    poll_interval: float = 0
    wakeup: str = ""
    linger: float | None = None
    sweep_age: float | None = None
    retry_base: float = 0
    retry_max: float = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    published: int = 0
    max_payload: int = 1024 * 1024  # bytes: the server's, as its INFO says once connected
    _nc: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.batch_size = self.batch_size or settings.RELAY_BATCH_SIZE
        self.max_in_flight = self.max_in_flight or settings.RELAY_MAX_IN_FLIGHT
        self.publish_timeout = self.publish_timeout or settings.RELAY_PUBLISH_TIMEOUT
        self.poll_interval = self.poll_interval or settings.RELAY_POLL_INTERVAL
        self.wakeup = self.wakeup or settings.RELAY_WAKEUP
        self.linger = settings.RELAY_LINGER if self.linger is None else self.linger
        self.sweep_age = settings.RELAY_SWEEP_AGE if self.sweep_age is None else self.sweep_age
        self.retry_base = self.retry_base or settings.RELAY_RETRY_BASE
        self.retry_max = self.retry_max or settings.RELAY_RETRY_MAX

    async def run(self) -> None:
        """Relay forever: reconnect to either server after any failure, with a backoff."""
        nc = self._nc = await bus.connect("relay")
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
                            "relay running (batch %d, in flight %d, wake-up by %s, %s)",
                            self.batch_size,
                            self.max_in_flight,
                            self.wakeup,
                            f"sweeping rows older than {self.sweep_age:g}s" if self.sweep_age else "every row",
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
        await bus.await_streams(js, self.stop, "relay")

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
            self.max_payload = self._nc.max_payload  # learnt anew from each server's INFO
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
        """Publish one batch; return (rows settled: published or marked failed, rows left for a passing fault)."""
        async with db.transaction():
            if self.sweep_age > 0:
                claimed = await db.execute(CLAIM_SWEEP, [self.sweep_age, self.batch_size])
            else:
                claimed = await db.execute(CLAIM, [self.batch_size])
            rows = await claimed.fetchall()
            if not rows:
                return 0, 0
            result = await publish_rows(js, rows, self.max_in_flight, self.publish_timeout, self.max_payload)
            if result.acked:
                await db.execute(MARK, [[row[0] for row in result.acked]])
            if result.refused:
                seqs, errors = [row[0] for row, _ in result.refused], [why for _, why in result.refused]
                await db.execute(MARK_FAILED, [self.retry_base, self.retry_max, seqs, errors])
        observe.relayed(rows, result)
        self.published += len(result.acked)
        settled = len(result.acked) + len(result.refused)
        return settled, len(rows) - settled
