"""The event log, the outbox of its unpublished events, consumer receipts and dead letters."""

import uuid

from django.db import models
from django.db.models.functions import Now


class StoredEvent(models.Model):
    """One event, appended in the transaction of the change that caused it: the **event log**.

    Rows are only ever inserted: never updated, never deleted. What is still to
    be published is kept apart, in ``Unpublished`` (the outbox proper), which a
    trigger of this table fills in the very statement that appends the events
    (migration 0005): no code path can write an event without queueing it.
    """

    seq = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True)
    type = models.CharField(max_length=100)
    version = models.PositiveSmallIntegerField()
    subject = models.CharField(max_length=200)
    aggregate_id = models.CharField(max_length=100, db_index=True)
    correlation_id = models.CharField(max_length=100, db_index=True)
    causation_id = models.CharField(max_length=100, null=True, blank=True)
    occurred_at = models.DateTimeField()
    payload = models.BinaryField()  # the exact bytes published (JSON wire format)
    # W3C trace context of the work that recorded it; the relay sends it as a NATS header.
    traceparent = models.CharField(max_length=55, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["type", "seq"], name="event_type_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Unpublished(models.Model):
    """An event of the log that JetStream has not acknowledged yet: the **transactional outbox**.

    A row is inserted with its event, by the log's trigger, and deleted once
    the event is published (by the process that committed it, or by the relay):
    the table holds only the events in flight, so finding the next ones to
    publish is cheap however long the log, and publishing writes a small
    delete instead of a new version of a wide, indexed log row.

    A row JetStream refused for a fault of its own (over the server's
    ``max_payload``, a subject no stream takes) is **failed**: ``attempts`` > 0,
    its ``error``, and ``retry_at``, before which the relay passes it by
    (events/relay.py), so later rows keep flowing.
    """

    # The event's place in the log (StoredEvent.seq): the relay publishes in this order.
    seq = models.BigIntegerField(primary_key=True)
    # No foreign-key constraint: the trigger writes a row only with its event, and the log is never deleted from.
    event = models.OneToOneField(
        StoredEvent,
        to_field="event_id",
        db_column="event_id",
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="unpublished",
    )
    # When its transaction queued it: rows younger than RELAY_SWEEP_AGE are their own publisher's.
    queued_at = models.DateTimeField(db_default=Now())
    # Defaults in the database too: the trigger's INSERT names only the event's seq and id.
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    error = models.TextField(blank=True, default="", db_default="")
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "events_outbox"

    def __str__(self) -> str:
        return f"unpublished {self.seq} {self.event_id}"

    @property
    def failed(self) -> bool:
        """Return whether the row is waiting to be published again after a refusal of its own."""
        return self.attempts > 0


class ProcessedEvent(models.Model):
    """Receipt: ``consumer`` has applied ``event_id``; written with the effect."""

    pk = models.CompositePrimaryKey("consumer", "event_id")
    consumer = models.CharField(max_length=100)
    event_id = models.UUIDField()
    processed_at = models.DateTimeField(auto_now_add=True)


class DeadLetter(models.Model):
    """A message a consumer could not decode or kept failing on, kept for replay."""

    # The id the ops page and its URLs use: never the sequential primary key.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    consumer = models.CharField(max_length=100)
    subject = models.CharField(max_length=200)
    data = models.BinaryField()
    headers = models.JSONField(default=dict)
    error = models.TextField()
    deliveries = models.PositiveIntegerField()
    stream_seq = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.consumer} {self.subject} ({self.error[:40]})"
