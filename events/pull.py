"""A durable pull consumer's messages, handed over as soon as the server has one.

The runner asks for a batch and gets **what the server holds right now**, at
least one message, without waiting for the batch to fill. One pull request at
a time is pending at the server, and each ends as soon as it has delivered
something:

* with nothing here, the request is ``no_wait`` with ``expires``: the server
  waits up to ``expires`` for the first message, then sends every message it
  has (up to the batch) and ends the request with a 404;
* with messages already here, the request has no ``expires``: the server adds
  what it has and answers at once.

Each request gets its own reply subject (``<inbox>.<n>``) so that a status
(404, 408) is matched to the request it ends: a late status of an earlier
request can never end the current one early or make it wait.

This replaces nats-py's ``fetch(batch, timeout)``, which, after a stray status
of an earlier request, falls back to a lingering pull for the whole batch and
then holds the messages it already has until the batch is full or the
timeout passes: hundreds of milliseconds with a message in hand.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

log = logging.getLogger(__name__)

# Statuses that end a pull request in the normal course: nothing (more) to deliver, or expired.
_ENDED = {"404", "408"}
_HEARTBEAT = "100"
# How long past its expiry a request with no answer is taken for lost (a reconnect, a restarted server).
_GRACE = 1.0


class PullError(RuntimeError):
    """The server refused a pull request (consumer deleted, leadership change, JetStream down...)."""


class PullFeed:
    """The messages of one durable pull consumer, one batch of what is there at a time."""

    def __init__(self, nc: NATS, stream: str, durable: str, *, expires: float = 5.0, prefix: str = "$JS.API"):
        self._nc = nc
        self._next = f"{prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._expires = expires
        self._buffer: deque[Msg] = deque()
        self._sub = None
        self._requests = 0
        self._pending: str | None = None  # reply subject of the request the server holds
        self._wanted = 0  # messages that request may still deliver
        self._lost_at = 0.0  # when that request is taken for lost if nothing ended it
        self._error: str | None = None
        self._asked = False  # a request went out since the last batch was taken
        self._changed = asyncio.Event()
        self._closed = False

    async def start(self) -> PullFeed:
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_message)
        return self

    async def close(self) -> None:
        """Stop: wake a waiting ``next_batch`` (it returns []); what the server still sends is redelivered later."""
        self._closed = True
        self._changed.set()
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                await sub.unsubscribe()
            except Exception as exc:  # the connection is already closed
                log.debug("unsubscribe: %r", exc)

    async def next_batch(self, size: int) -> list[Msg]:
        """Return up to ``size`` messages as soon as there is one: all the server holds, none held back."""
        while not self._closed:
            self._changed.clear()  # before looking: a change from here on wakes the wait below
            if self._error is not None and not self._buffer:
                error, self._error = self._error, None
                raise PullError(f"{self._next}: {error}")
            if self._pending is not None and time.monotonic() > self._lost_at:
                log.info("%s: pull request %s unanswered; asking again", self._next, self._pending)
                self._pending = None
            if self._pending is None:
                if self._buffer and (len(self._buffer) >= size or self._asked):
                    return self._take(size)
                # Nothing here: wait for the first message. Some here: ask once, without waiting, for the rest.
                await self._request(size - len(self._buffer), wait=not self._buffer)
            if self._pending is not None:
                try:
                    await asyncio.wait_for(self._changed.wait(), max(0.0, self._lost_at - time.monotonic()))
                except TimeoutError:
                    pass
        return []

    def _take(self, size: int) -> list[Msg]:
        self._asked = False
        return [self._buffer.popleft() for _ in range(min(size, len(self._buffer)))]

    async def _request(self, batch: int, *, wait: bool) -> None:
        self._requests += 1
        self._asked = True
        reply = f"{self._inbox}.{self._requests}"
        request: dict = {"batch": batch, "no_wait": True}
        if wait:
            request["expires"] = int(self._expires * 1e9)
        self._pending, self._wanted = reply, batch
        self._lost_at = time.monotonic() + (self._expires if wait else 0.0) + _GRACE
        await self._nc.publish(self._next, json.dumps(request).encode(), reply=reply)

    async def _on_message(self, msg: Msg) -> None:
        status = (msg.headers or {}).get("Status") if not msg.data else None
        if status is None:
            self._buffer.append(msg)
            if self._pending is not None:
                self._wanted -= 1
                if self._wanted <= 0:  # the request is full: the server sends nothing more for it
                    self._pending = None
        elif status == _HEARTBEAT:
            return
        elif msg.subject == self._pending:
            self._pending = None
            if status not in _ENDED:
                description = (msg.headers or {}).get("Description", "")
                self._error = f"{status} {description}".strip()
        self._changed.set()
