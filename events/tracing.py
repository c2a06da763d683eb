"""Trace context across the bus: W3C ``traceparent`` on every event.

The web takes the ``traceparent`` of an incoming request (or starts a trace);
each event recorded while it works stores the current ``traceparent`` in its
outbox row; the relay sends it as a NATS message header; the consumer runner
continues the trace from that header around the handlers, so the events they
record carry it on. One order is one trace, whatever the processes it crossed
(https://www.w3.org/TR/trace-context/#traceparent-header).

OpenTelemetry is optional: when ``TRACING_OTEL`` is on and the
``opentelemetry-api`` package is installed (with an SDK and exporter configured,
e.g. by ``opentelemetry-instrument``), the same headers become real spans
that join into one trace in the exporter. Without it, ids are still generated
and carried, and they appear in the logs as ``trace_id``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from functools import cache

from django.conf import settings

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\Z")

_current: ContextVar[str | None] = ContextVar("traceparent", default=None)
# In a set-based run of a batch handler: the traceparent of each handled event's span, by event id.
_by_cause: ContextVar[dict[str, str] | None] = ContextVar("traceparent_by_cause", default=None)


def parse(traceparent: str | None) -> tuple[str, str] | None:
    """Return (trace id, parent span id) of a valid ``traceparent``, else None."""
    match = TRACEPARENT.match(traceparent or "")
    if match is None or match[1] == "0" * 32 or match[2] == "0" * 16:
        return None
    return match[1], match[2]


def new_traceparent(trace_id: str | None = None) -> str:
    """Return a ``traceparent`` of a new span, in ``trace_id`` or in a new trace."""
    return f"00-{trace_id or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def current() -> str:
    """Return the ``traceparent`` of the work in progress (a new trace outside any)."""
    return _current.get() or new_traceparent()


def child_of(parent: str | None) -> str:
    """Return a new span's ``traceparent`` in ``parent``'s trace (a new trace if it is not valid)."""
    parsed = parse(parent)
    return new_traceparent(parsed[0] if parsed else None)


@contextmanager
def per_cause(traceparents: dict[str, str]) -> Iterator[None]:
    """Within a batch handler's run: each event recorded carries the trace of the event that caused it."""
    token = _by_cause.set(traceparents)
    try:
        yield
    finally:
        _by_cause.reset(token)


def for_cause(cause) -> str:
    """Return the ``traceparent`` for an event caused by ``cause`` (an Envelope, or None)."""
    spans = _by_cause.get()
    if spans and cause is not None and cause.event_id in spans:
        return spans[cause.event_id]
    return current()


def trace_id(traceparent: str) -> str:
    """Return the trace id of a valid ``traceparent``."""
    return traceparent.split("-")[1]


@cache
def _otel():
    """Return (tracer, propagator) when OpenTelemetry is enabled and installed, else None."""
    if not settings.TRACING_OTEL:
        return None
    try:
        from opentelemetry import propagate, trace
    except ImportError:
        return None
    return trace.get_tracer("event-shop"), propagate


@contextmanager
def continued(parent: str | None, name: str) -> Iterator[str]:
    """Run the block as a span, child of ``parent`` (a ``traceparent``) when valid; yield its ``traceparent``."""
    otel = _otel()
    with ExitStack() as stack:
        if otel is not None:
            tracer, propagate = otel
            context = propagate.extract({"traceparent": parent} if parent else {})
            stack.enter_context(tracer.start_as_current_span(name, context=context))
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            mine = carrier.get("traceparent") or new_traceparent()
        else:
            parsed = parse(parent)
            mine = new_traceparent(parsed[0] if parsed else None)
        token = _current.set(mine)
        try:
            yield mine
        finally:
            _current.reset(token)
