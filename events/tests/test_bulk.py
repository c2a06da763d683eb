"""bulk_set: many rows' fields in one UPDATE, on a real database."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.bulk import bulk_insert, bulk_set
from events.models import StoredEvent, Unpublished


def _event(n: int) -> StoredEvent:
    return StoredEvent.objects.create(
        event_id=f"00000000-0000-4000-8000-{n:012d}",
        type="T",
        version=1,
        subject="shop.t",
        aggregate_id=str(n),
        correlation_id=str(n),
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        payload=b"{}",
    )


@pytest.mark.django_db
def test_bulk_set_writes_each_row_its_own_values_in_one_statement():
    # Given three stored events
    rows = [_event(n) for n in range(3)]
    untouched = _event(99)
    # When two of them get new values, each its own
    rows[0].occurred_at, rows[0].traceparent = datetime(2026, 1, 2, tzinfo=UTC), "a"
    rows[2].occurred_at, rows[2].traceparent = datetime(2026, 1, 3, tzinfo=UTC), ""
    with CaptureQueriesContext(connection) as queries:
        updated = bulk_set([rows[0], rows[2]], ["occurred_at", "traceparent"])
    # Then exactly those rows have exactly those values, written by one statement
    assert updated == 2 and len(queries) == 1
    got = {e.seq: (e.occurred_at, e.traceparent) for e in StoredEvent.objects.all()}
    first = datetime(2026, 1, 1, tzinfo=UTC)
    assert got[rows[0].seq] == (datetime(2026, 1, 2, tzinfo=UTC), "a")
    assert got[rows[1].seq] == (first, "")
    assert got[rows[2].seq] == (datetime(2026, 1, 3, tzinfo=UTC), "")
    assert got[untouched.seq] == (first, "")


@pytest.mark.django_db
def test_bulk_set_of_nothing_runs_no_statement():
    with CaptureQueriesContext(connection) as queries:
        assert bulk_set([], ["traceparent"]) == 0
    assert len(queries) == 0


@pytest.mark.django_db
def test_bulk_insert_writes_the_rows_in_their_order_in_one_statement():
    # Given rows for three stored events
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in (3, 1, 2)]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(event_id, "T", 1, "shop.t", event_id[-1], "c", None, at, b'{"n": 1}', "") for event_id in ids]
    # When they are inserted
    with CaptureQueriesContext(connection) as queries:
        bulk_insert(
            StoredEvent,
            [
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
            ],
            rows,
        )
    # Then one statement wrote them, their keys follow the list's order, and the values are intact
    assert len(queries) == 1
    stored = list(StoredEvent.objects.order_by("seq"))
    assert [str(e.event_id) for e in stored] == ids
    assert all(e.causation_id is None and bytes(e.payload) == b'{"n": 1}' for e in stored)
    # and the log's trigger queued each of them in the outbox, in the same statement
    assert sorted(str(u.event_id) for u in Unpublished.objects.all()) == sorted(ids)
