"""Connections to NATS and the JetStream streams and durable consumers.

Streams (DESIGN §4): file storage, a duplicate window of minutes so the relay
may re-publish after a crash without duplicating (``Nats-Msg-Id`` = event id,
https://docs.nats.io/using-nats/developer/develop_jetstream/model_deep_dive#message-deduplication).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import nats
from django.conf import settings
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import BadRequestError, NoStreamResponseError, NotFoundError

log = logging.getLogger(__name__)

# Each consumer leaves redelivery to us (we count deliveries and dead-letter),
# so the server never gives up on a message by itself.
MAX_ACK_PENDING = 20_000


class NatsNotConfigured(RuntimeError):
    """Neither NATS_URL nor a running devstack says where NATS is."""


def nats_url() -> str:
    """Return the configured NATS URL, or raise with what to do."""
    if not settings.NATS_URL:
        raise NatsNotConfigured("NATS_URL is not set and no devstack runs here: run `make demo` or set NATS_URL")
    return settings.NATS_URL


async def connect(name: str, *, url: str = "", wait: bool = True, **options) -> NATS:
    """Connect to NATS (``url``, by default ``NATS_URL``) and reconnect forever after; with ``wait``, retry while down.

    The URL carries the process's NATS user, if the server has users (``deploy/nats/auth.conf``).
    """
    servers = [part.strip() for part in (url or nats_url()).split(",")]

    client: NATS | None = None

    async def on_disconnect() -> None:
        if client is None or not (client.is_closed or client.is_draining):
            log.warning("nats disconnected (%s)", name)

    async def on_reconnect() -> None:
        log.info("nats reconnected (%s)", name)

    async def on_error(exc: Exception) -> None:
        _note_denial(exc)
        log.warning("nats error (%s): %r", name, exc)

    params = dict(
        servers=servers,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        allow_reconnect=True,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
    )
    params.update(options)
    delay = 0.2
    while True:
        try:
            client = await nats.connect(**params)
            return client
        except Exception as exc:  # nats raises several types for "no server"
            if not wait:
                raise
            log.warning("nats not reachable (%s): %r; retrying in %.1fs", name, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5)


async def close(nc: NATS) -> None:
    """Flush what is buffered (acks, publishes), then close.

    Not ``drain()``: draining a pull subscription with a fetch in flight waits
    for the whole drain timeout.
    """
    try:
        await nc.flush(timeout=2)
    except Exception as exc:
        log.warning("nats flush on close failed: %r", exc)
    await nc.close()


def stream_config(name: str, subjects: list[str]) -> js_api.StreamConfig:
    """Return the configuration of one stream."""
    return js_api.StreamConfig(
        name=name,
        subjects=subjects,
        storage=js_api.StorageType.FILE,
        retention=js_api.RetentionPolicy.LIMITS,
        duplicate_window=float(settings.EVENT_DUPLICATE_WINDOW_SECONDS),
        num_replicas=settings.EVENT_STREAM_REPLICAS,
    )


async def ensure_streams(js: JetStreamContext, only: Iterable[str] | None = None) -> list[str]:
    """Create or update every configured stream (or those named in ``only``); safe to run any number of times."""
    done = []
    for name, subjects in settings.EVENT_STREAMS.items():
        if only is not None and name not in only:
            continue
        config = stream_config(name, subjects)
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Exists with another configuration: bring it up to date.
            await js.update_stream(config)
        done.append(name)
    return done


async def missing_streams(js: JetStreamContext) -> list[str]:
    """Return the configured streams the server does not have (one STREAM.INFO request each)."""
    missing = []
    for name in settings.EVENT_STREAMS:
        try:
            await js.stream_info(name)
        except NotFoundError:
            missing.append(name)
    return missing


async def await_streams(js: JetStreamContext, stop: asyncio.Event, who: str) -> None:
    """Return once every configured stream exists, creating the missing ones if this user may.

    Creating, updating and deleting streams is ``setup_streams``'s (the relay's and the
    workers' NATS users may not, deploy/nats/auth.conf); against a server without
    users, a process started before it creates what is missing, as a test does.
    """
    while not stop.is_set():
        try:
            missing = await missing_streams(js)
            if not missing:
                return
            await ensure_streams(js, only=missing)
            return
        except Exception as exc:  # NATS not reachable yet, JetStream not ready, or not ours to create
            log.warning("%s: streams not there yet (%r): run `manage.py setup_streams`", who, exc)
        try:
            await asyncio.wait_for(stop.wait(), 1)
        except TimeoutError:
            pass


def consumer_config(durable: str, subjects: Iterable[str]) -> js_api.ConsumerConfig:
    """Return the configuration of one durable pull consumer."""
    return js_api.ConsumerConfig(
        durable_name=durable,
        name=durable,
        ack_policy=js_api.AckPolicy.EXPLICIT,
        deliver_policy=js_api.DeliverPolicy.ALL,
        # Seconds before an unacked message (its worker died) goes to another worker.
        ack_wait=float(settings.EVENT_ACK_WAIT_SECONDS),
        max_deliver=-1,
        max_ack_pending=MAX_ACK_PENDING,
        filter_subjects=list(subjects),
    )


async def ensure_consumer(js: JetStreamContext, stream: str, durable: str, subjects: Iterable[str]) -> None:
    """Create the durable consumer (the server updates an existing one in place)."""
    config = consumer_config(durable, subjects)
    try:
        await js.add_consumer(stream, config)
    except BadRequestError as exc:
        # A change the server cannot apply in place; keep the consumer and its position.
        log.warning("consumer %s on %s kept as it was: %s", durable, stream, exc)


async def consumer_pending(js: JetStreamContext, stream: str, durable: str) -> tuple[int, int]:
    """Return (messages not yet delivered, delivered but not yet acked) for a durable."""
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        return 0, 0
    return info.num_pending or 0, info.num_ack_pending or 0


def message_headers(event_id: str, traceparent: str | None) -> dict[str, str]:
    """Return the NATS headers of an outbox row: its id for deduplication, its trace context."""
    result = {"Nats-Msg-Id": event_id}
    if traceparent:
        result["traceparent"] = traceparent
    return result


# An outbox row as it is published: (seq, event_id, subject, payload, traceparent, type, occurred_at).
Row = tuple

# Bytes the headers of an outbox row may take at most (its id and its trace context): below the
# server's max_payload by more than this, a row needs no exact count of its size.
_HEADERS_AT_MOST = 256


@dataclass
class Published:
    """What publishing some rows came to.

    ``acked``: the rows JetStream acknowledged; ``duplicates``: the ids of those it
    already had (published before by another publisher or the relay: it kept one
    copy); ``refused``: (row, why) of the rows refused for a fault of their own, which
    publishing again at once would meet again. The other rows met a passing fault
    (NATS down, a timeout) and may be published again at once.
    """

    acked: list[Row] = field(default_factory=list)
    duplicates: set[str] = field(default_factory=set)
    refused: list[tuple[Row, str]] = field(default_factory=list)


class Unpublishable(Exception):
    """A row that the server would refuse whenever it is sent, as it is."""


# Subjects the server refused this process's NATS user to publish to, lower-cased as nats-py reports
# them, and when: the server says so in an -ERR, which nats-py hands to the error callback only (the
# publish itself just gets no ack). Past DENIED_FOR seconds a subject is tried again (a config reload).
_denied: dict[str, float] = {}
DENIED_FOR = 60.0
_DENIAL = re.compile(r'permissions violation for publish to "([^"]+)"', re.IGNORECASE)


def _note_denial(exc: Exception) -> None:
    if found := _DENIAL.search(str(exc)):
        _denied[found.group(1).lower()] = time.monotonic()


def denied(subject: str) -> bool:
    """Return whether the server lately refused this process's user the right to publish to ``subject``."""
    at = _denied.get(subject.lower())
    return at is not None and time.monotonic() - at < DENIED_FOR


def subject_matches(pattern: str, subject: str) -> bool:
    """Return whether ``subject`` matches the NATS subject ``pattern`` (``*`` one token, ``>`` the rest)."""
    tokens = subject.split(".")
    for i, token in enumerate(pattern.split(".")):
        if token == ">":
            return len(tokens) > i
        if i >= len(tokens) or token not in ("*", tokens[i]):
            return False
    return len(pattern.split(".")) == len(tokens)


def stream_of(subject: str) -> str | None:
    """Return the configured stream that takes ``subject``, or None."""
    for name, patterns in settings.EVENT_STREAMS.items():
        if any(subject_matches(p, subject) for p in patterns):
            return name
    return None


def wire_size(payload: bytes, headers: dict[str, str]) -> int:
    """Return the bytes the server counts against ``max_payload``: the header block and the payload."""
    # "NATS/1.0\r\n", a "key: value\r\n" per header, a blank line (https://docs.nats.io/reference/reference-protocols/nats-protocol#hpub)
    return len(payload) + 12 + sum(len(k) + len(v) + 4 for k, v in headers.items())


def refusal(exc: Exception, subject: str) -> str | None:
    """Return why a row failed if the fault is the row's own (sending it again fails alike), else None.

    No responders on a subject some configured stream takes is passing (a stream
    leader being elected, a stream being set up again); on a subject none takes,
    it is the row's. So is an error answer of the stream to that one message (400),
    and no ack on a subject this process's NATS user may not publish to.
    """
    if isinstance(exc, Unpublishable):
        return str(exc)
    if isinstance(exc, TimeoutError) and _denied and denied(subject):
        return f"this process's NATS user may not publish to {subject!r}"
    if isinstance(exc, NoStreamResponseError) and stream_of(subject) is None:
        return f"no stream takes subject {subject!r}"
    if isinstance(exc, BadRequestError | nats.errors.BadSubjectError | nats.errors.MaxPayloadError):
        return repr(exc)
    return None


def _check_size(payload: bytes, headers: dict[str, str], max_payload: int) -> None:
    """Raise Unpublishable for a row over the server's ``max_payload``.

    Checked before sending: the server would close the connection on it (a
    passing fault to the client, forever), and nats-py raises its own check only
    after taking a slot of ``publish_async``'s window, which it then never gives back.
    """
    if len(payload) + _HEADERS_AT_MOST > max_payload and (size := wire_size(payload, headers)) > max_payload:
        raise Unpublishable(f"{size} bytes with headers, over the server's max_payload of {max_payload} bytes")


async def publish_rows(
    js,
    rows: list[Row],
    max_in_flight: int,
    timeout: float,
    max_payload: int,
    on_sent: Callable[[], None] | None = None,
) -> Published:
    """Publish rows in order, up to ``max_in_flight`` awaiting their ack, each within ``timeout`` seconds.

    A row refused for its own fault is set aside and the next ones go on; a
    passing fault when sending stops the sending (the rest wait for another try).
    ``on_sent`` is called once every row is written to the connection, before
    the acks are awaited.
    """
    sending = await send_rows(js, rows, max_in_flight, timeout, max_payload)
    if on_sent is not None:
        await asyncio.sleep(0)  # one turn of the loop: nats-py's flusher writes what was just published
        on_sent()
    return await sending.acks(timeout)


@dataclass
class Sending:
    """Rows written to NATS, their acks still to come: ``acks`` awaits them."""

    result: Published
    futures: list[tuple[Row, float, asyncio.Future]]

    def __len__(self) -> int:
        return len(self.futures)

    async def acks(self, timeout: float) -> Published:
        """Wait for the rows' acks, at most ``timeout`` seconds after the first was sent; return what they came to.

        One wait for them all, not a ``wait_for`` (a task and a timer) per row.
        """
        result = self.result
        if self.futures:
            remaining = max(0.01, timeout - (time.monotonic() - self.futures[0][1]))
            await asyncio.wait([future for _, _, future in self.futures], timeout=remaining)
        for row, _, future in self.futures:
            if not future.done():
                future.cancel()
                exc: BaseException | None = TimeoutError(f"no ack within {timeout}s")
            else:
                exc = asyncio.CancelledError() if future.cancelled() else future.exception()
            if exc is not None:  # timeout, or an error answer from JetStream
                if not _refused(result, row, exc):
                    log.warning("no ack for event %s: %r", row[1], exc)
                continue
            ack = future.result()
            result.acked.append(row)
            if getattr(ack, "duplicate", False):
                result.duplicates.add(row[1])
        if result.duplicates:
            log.debug("%d of %d events were in the stream already (kept once)", len(result.duplicates), len(self))
        return result


async def send_rows(js, rows: list[Row], max_in_flight: int, timeout: float, max_payload: int, in_flight: int = 0):
    """Write rows to NATS in order without waiting for their acks; return the ``Sending`` that awaits them.

    ``in_flight``: how many of this connection's publishes already await their
    ack elsewhere (they count against ``max_in_flight`` too).
    """
    result = Published()
    futures = []
    for row in rows:
        _, event_id, subject, payload, traceparent, *_ = row
        headers = message_headers(event_id, traceparent)
        # Below the in-flight bound the semaphore cannot block; nats-py's wait_stall would
        # still wrap each publish in asyncio.wait_for, a task and a loop turn per message,
        # which lets its flusher write every message with a send() of its own.
        stall = timeout if in_flight + len(futures) >= max_in_flight else None
        try:
            _check_size(payload, headers, max_payload)
            if _denied and denied(subject):
                raise Unpublishable(f"this process's NATS user may not publish to {subject!r}")
            future = await js.publish_async(subject, bytes(payload), wait_stall=stall, headers=headers)
        except Exception as exc:
            if _refused(result, row, exc):
                continue
            log.warning("publish of %s failed: %r", subject, exc)
            break
        futures.append((row, time.monotonic(), future))
    return Sending(result, futures)


def _refused(result: Published, row: Row, exc: Exception) -> bool:
    """Set ``row`` aside in ``result`` if ``exc`` is its own fault; return whether it was."""
    why = refusal(exc, row[2])
    if why is None:
        return False
    log.warning("event %s (%s on %s) cannot be published: %s", row[1], row[5], row[2], why)
    result.refused.append((row, why))
    return True
