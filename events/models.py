"""The event log (which is also the outbox), consumer receipts and dead letters."""

import uuid

from django.db import models


class StoredEvent(models.Model):
    """One event, appended in the transaction of the change that caused it.

    The table is both the **event log** (rows are never updated but for their
    publication state, never deleted) and the **transactional outbox**: the relay
    publishes rows whose ``published_at`` is null, oldest first.

    A row JetStream refused for a fault of its own (over the server's
    ``max_payload``, a subject no stream takes) is **failed**: unpublished with
    ``publish_attempts`` > 0, its ``publish_error``, and ``retry_at``, before which
    the relay passes it by (events/relay.py), so later rows keep flowing.
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
    published_at = models.DateTimeField(null=True, blank=True)
    # W3C trace context of the work that recorded it; the relay sends it as a NATS header.
    traceparent = models.CharField(max_length=55, blank=True, default="")
    # Defaults in the database too: the outbox's INSERTs name only the columns of a new event.
    publish_attempts = models.PositiveIntegerField(default=0, db_default=0)
    publish_error = models.TextField(blank=True, default="", db_default="")
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The relay's work queue: small, because published rows leave it.
            models.Index(fields=["seq"], name="outbox_unpublished", condition=models.Q(published_at__isnull=True)),
            models.Index(fields=["type", "seq"], name="event_type_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"

    @property
    def failed(self) -> bool:
        """Return whether the row is waiting to be published again after a refusal of its own."""
        return self.published_at is None and self.publish_attempts > 0


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
