"""The transactional outbox: record events in the caller's database transaction.

``record`` refuses to run outside a transaction, so an event can never be
written without the state change that caused it, nor the change without it.
A handler passes the envelope of the event it handles as the cause of what it
records: it becomes their causation, and its correlation id is carried on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from . import observe, publisher, tracing
from .base import Envelope, Event, encode, new_envelope
from .bulk import bulk_insert, insert_statement
from .models import StoredEvent

# The outbox's columns as record_many writes them (seq, the order of the log, follows the list).
COLUMNS = (
    "event_id",
    "type",
    "version",
    "subject",
    "aggregate_id",
    "correlation_id",
    "causation_id",
    "occurred_at",
    "payload",
    "traceparent",
)


class OutsideTransaction(RuntimeError):
    """An event was recorded outside a database transaction."""


def record(event: Event, *, correlation_id: str | None = None, cause: Envelope | None = None) -> Envelope:
    """Append ``event`` to the log/outbox in the current transaction, caused by ``cause`` if given."""
    return record_many([event], correlation_id=correlation_id, causes=[cause])[0]


def record_many(
    events: list[Event], *, correlation_id: str | None = None, causes: list[Envelope | None] | None = None
) -> list[Envelope]:
    """Append several events in one INSERT, in order, in the current transaction.

    Each event's cause is its own entry of ``causes`` (none by default): the
    envelope of the event whose handling recorded it.
    """
    if not connection.in_atomic_block:
        raise OutsideTransaction("events must be recorded inside transaction.atomic()")
    pending = prepare(events, correlation_id=correlation_id, causes=causes)
    bulk_insert(StoredEvent, COLUMNS, pending.rows)
    written(pending)
    return pending.envelopes


@dataclass(frozen=True)
class Pending:
    """Events ready to be appended by the caller's own statement: ``insert`` is its INSERT and parameters."""

    envelopes: list[Envelope]
    rows: list[tuple]

    @property
    def insert(self) -> tuple[str, list]:
        return insert_statement(StoredEvent, COLUMNS, self.rows)

    def only(self, keep: Callable[[Envelope], bool]) -> Pending:
        """Return the events of these that ``keep`` is true of (those a conditional INSERT wrote)."""
        kept = [(e, row) for e, row in zip(self.envelopes, self.rows, strict=True) if keep(e)]
        return Pending([e for e, _ in kept], [row for _, row in kept])


def prepare(
    events: list[Event], *, correlation_id: str | None = None, causes: list[Envelope | None] | None = None
) -> Pending:
    """Build the envelopes and outbox rows of ``events`` without writing them.

    For a write that is one statement: the caller puts ``Pending.insert`` in
    that statement (a data-modifying CTE), so the events are written with the
    change or not at all exactly as ``record_many`` does in a transaction, and
    calls ``written`` after it ran.
    """
    if causes is None:
        causes = [None] * len(events)
    elif len(causes) != len(events):
        raise ValueError("one cause per event")
    envelopes = [
        new_envelope(
            event,
            correlation_id=correlation_id or (cause.correlation_id if cause else None),
            causation_id=cause.event_id if cause else None,
        )
        for event, cause in zip(events, causes, strict=True)
    ]
    rows = [
        (
            e.event_id,
            e.type,
            e.version,
            event.subject(),
            e.aggregate_id,
            e.correlation_id,
            e.causation_id,
            e.occurred_at,
            encode(e, event.to_data()),
            tracing.for_cause(cause),
        )
        for e, event, cause in zip(envelopes, events, causes, strict=True)
    ]
    return Pending(envelopes, rows)


def written(pending: Pending) -> None:
    """After the statement that appended ``pending``: publish at commit, wake the relay, observe."""
    rows = pending.rows
    if publisher.enabled() and rows:
        # Published by this process as soon as the transaction commits; the relay sweeps up after a crash.
        claimed = [(None, str(r[0]), r[3], r[8], r[9], r[1], r[7]) for r in rows]
        transaction.on_commit(lambda: publisher.hand_over(claimed), robust=True)
    elif settings.RELAY_WAKEUP == "notify" and rows:
        # Delivered to the relay at commit (never for a rolled-back transaction);
        # PostgreSQL folds the repeats of one transaction into one.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [settings.RELAY_NOTIFY_CHANNEL])
    observe.recorded(pending.envelopes)
