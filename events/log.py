"""Read the event log: the source every projection can be rebuilt from."""

from __future__ import annotations

from collections.abc import Iterator

from .base import Envelope, Event, EventTypes, decode
from .models import StoredEvent


def read(types: EventTypes, *, correlation_id: str | None = None) -> Iterator[tuple[Envelope, Event]]:
    """Yield the stored events of ``types`` in log order, optionally of one flow only."""
    rows = StoredEvent.objects.order_by("seq").filter(type__in={t for t, _ in types})
    if correlation_id is not None:
        rows = rows.filter(correlation_id=correlation_id)
    for payload in rows.values_list("payload", flat=True).iterator(chunk_size=2000):
        envelope, event = decode(bytes(payload), types)
        if event is not None:
            yield envelope, event
