"""Structured logs: the fields of the flow a line belongs to, and two formats.

A context variable holds ``correlation_id`` (the order), ``event_id``,
``causation_id``, ``consumer``, ``delivery`` and ``trace_id`` of the work in
progress: the consumer runner binds them around each message, the web's
middleware around each request (the order id once it is known), the relay
around each publication. Every log line carries them, so one ``grep`` of an
order id shows its whole story across processes.

``LOG_FORMAT=json`` writes one JSON object a line; the default console format
appends the same fields as ``key=value``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

_fields: ContextVar[dict[str, object]] = ContextVar("log_fields", default={})  # noqa: B039 - never mutated
_scopes: ContextVar[int] = ContextVar("log_scopes", default=0)

# One line per HTTP request, per event recorded, published and handled (LOG_FLOW=1 turns them on).
flow = logging.getLogger("events.flow")


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add ``fields`` to every log line written inside the block."""
    token = _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})
    depth = _scopes.set(_scopes.get() + 1)
    try:
        yield
    finally:
        _scopes.reset(depth)
        _fields.reset(token)


def bind(**fields: object) -> None:
    """Add ``fields`` until the enclosing ``bound`` block ends (e.g. the order id once a request knows it).

    Outside any ``bound`` block it does nothing: a field bound there would stick to the thread.
    """
    if _scopes.get():
        _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})


def current() -> dict[str, object]:
    """Return the fields bound here."""
    return _fields.get()


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, process, and the bound fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process or os.getpid(),
            **current(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class ConsoleFormatter(logging.Formatter):
    """The human format: ``time level logger message key=value …``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = current()
        if not fields:
            return text
        return text + " " + " ".join(f"{key}={value}" for key, value in fields.items())
