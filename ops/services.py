"""Replay a dead letter: publish its message again, through JetStream, to the consumers of its subject.

The message keeps its bytes, so its ``event_id`` (and with it each consumer's
receipt) is unchanged: a consumer that had applied it skips it, one that had
not applies it now. It goes out under a new ``Nats-Msg-Id`` of its own
(``replay-<the dead letter's public id>``), so JetStream does not drop it as a duplicate of
the first publication, yet a second click within the duplicate window does not
publish it twice. The dead letter is marked replayed only once JetStream
acknowledged the publication. It publishes as the ``ops`` NATS user
(``NATS_OPS_URL``): the web's own may publish only the subjects of what a
request records, and a dead letter may be on any subject a durable consumes.
"""

from __future__ import annotations

import asyncio
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events import bus, metrics
from events.models import DeadLetter

PUBLISH_TIMEOUT = 3  # seconds: a staff action may wait that long, never an order


class ReplayUnavailable(RuntimeError):
    """NATS could not take the message now; nothing changed."""


class AlreadyReplayed(Exception):
    """The dead letter was replayed before."""


async def _publish(subject: str, data: bytes, headers: dict[str, str]) -> None:
    nc = await bus.connect("ops", url=settings.NATS_OPS_URL, wait=False, max_reconnect_attempts=0)
    try:
        await nc.jetstream().publish(subject, data, headers=headers, timeout=PUBLISH_TIMEOUT)
    finally:
        await nc.close()


def dead_letter_replay(*, dead_letter_id: uuid.UUID) -> DeadLetter:
    """Publish a dead letter's message again and mark it replayed (``dead_letter_id``: its public id)."""
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(public_id=dead_letter_id)
        if letter.replayed_at is not None:
            raise AlreadyReplayed(str(letter.public_id))
        headers = {k: v for k, v in letter.headers.items() if k == "traceparent"}
        headers["Nats-Msg-Id"] = f"replay-{letter.public_id}"
        try:
            asyncio.run(asyncio.wait_for(_publish(letter.subject, bytes(letter.data), headers), PUBLISH_TIMEOUT + 2))
        except Exception as exc:
            raise ReplayUnavailable(f"cannot publish to NATS now: {exc!r}") from None
        letter.replayed_at = timezone.now()
        letter.save(update_fields=["replayed_at"])
    metrics.REPLAYS.labels(letter.consumer).inc()
    return letter
