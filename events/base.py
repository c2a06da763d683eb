"""Domain events: the base class, the envelope, the registry and the wire format.

An event is a frozen dataclass with a stable wire name (``TYPE``), a version
and a subject. On the wire it is JSON: the envelope fields of DESIGN §4 and the
event's own fields under ``data``::

    {"event_id": "…", "type": "OrderPlaced", "version": 1,
     "occurred_at": "2026-01-01T12:00:00.000000+00:00",
     "aggregate_id": "…", "correlation_id": "…", "causation_id": "…",
     "data": {"order_id": "…", "lines": [{"sku": "…", "quantity": 2}]}}
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

# A SKU is one NATS subject token: letters, digits, '-' and '_'.
SKU_CHARACTERS = "[A-Za-z0-9_-]"
SKU_PATTERN = re.compile(SKU_CHARACTERS + r"{1,64}\Z")


def is_sku(value: object) -> bool:
    """Say whether ``value`` is a valid SKU: a string that is one NATS subject token."""
    # fullmatch: "$" would let a trailing newline through ("A-1\n").
    return isinstance(value, str) and SKU_PATTERN.fullmatch(value) is not None


class DecodeError(ValueError):
    """A message that is not a well-formed event of a known type."""


@dataclass(frozen=True)
class Line:
    """A quantity of one SKU: an order line from the API through the events to a reservation.

    On the wire and in a reservation's row it is ``{"sku": "…", "quantity": 2}``. A line with a SKU
    that is no string, or a quantity that is no whole number above zero, cannot be made: a message
    carrying one fails to decode (and is dead-lettered at its first delivery), and no reader casts.
    """

    sku: str
    quantity: int

    def __post_init__(self) -> None:
        if not isinstance(self.sku, str):
            raise TypeError(f"a line's sku must be a string, not {self.sku!r}")
        # type() rather than isinstance(): True is an int to Python, not a quantity.
        if type(self.quantity) is not int or self.quantity < 1:
            raise ValueError(f"a line's quantity must be a whole number above zero, not {self.quantity!r}")


def _value_from(cls: type, data: Any) -> Any:
    """Build a value dataclass from its JSON object, ignoring unknown fields."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def _value_to(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every domain event: past tense, immutable, flat."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def subject(self) -> str:
        """Return the NATS subject this event is published on."""
        raise NotImplementedError

    def aggregate_id(self) -> str:
        """Return the id of the aggregate this event is about."""
        raise NotImplementedError

    def to_data(self) -> dict[str, Any]:
        """Return the event's own fields as JSON-ready values."""
        # A shallow dict: json.dumps only reads the values, and dataclasses.asdict deep-copies each one.
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in self.value_lists():
            data[name] = [_value_to(value) for value in data[name]]
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Event:
        """Build the event from its ``data`` object, ignoring unknown fields."""
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in names}
        try:
            for name, value_cls in cls.value_lists().items():
                if name in fields:
                    fields[name] = [_value_from(value_cls, item) for item in fields[name]]
            return cls(**fields)
        except (TypeError, ValueError, AttributeError) as exc:
            raise DecodeError(f"{cls.TYPE}: {exc}") from None

    @classmethod
    def value_lists(cls) -> dict[str, type]:
        """Return the fields that hold a list of value dataclasses (such as ``Line``), with the value's class."""
        found = cls.__dict__.get("_value_lists")
        if found is None:
            # Worked out once per class: the hints are strings until resolved.
            found = {}
            for name, hint in typing.get_type_hints(cls).items():
                args = typing.get_args(hint)
                if typing.get_origin(hint) is list and args and dataclasses.is_dataclass(args[0]):
                    found[name] = args[0]
            cls._value_lists = found
        return found


@dataclass(frozen=True)
class Envelope:
    """What every event carries besides its own fields."""

    event_id: str
    type: str
    version: int
    occurred_at: datetime
    aggregate_id: str
    correlation_id: str
    causation_id: str | None


def new_envelope(event: Event, *, correlation_id: str | None, causation_id: str | None) -> Envelope:
    """Give ``event`` a fresh id; its correlation defaults to its own aggregate."""
    return Envelope(
        event_id=str(uuid.uuid4()),
        type=event.TYPE,
        version=event.VERSION,
        occurred_at=datetime.now(UTC),
        aggregate_id=event.aggregate_id(),
        correlation_id=correlation_id or event.aggregate_id(),
        causation_id=causation_id,
    )


def encode(envelope: Envelope, data: dict[str, Any]) -> bytes:
    """Serialise an envelope and an event's data to the JSON wire format."""
    body = {f.name: getattr(envelope, f.name) for f in dataclasses.fields(envelope)}
    body["occurred_at"] = envelope.occurred_at.isoformat()
    body["data"] = data
    return json.dumps(body, separators=(",", ":")).encode()


EventTypes = dict[tuple[str, int], type[Event]]


def index(classes: Iterable[type[Event]]) -> EventTypes:
    """Map (wire name, version) to class, as a consumer reads them."""
    return {(cls.TYPE, cls.VERSION): cls for cls in classes}


def decode_envelope(raw: bytes) -> tuple[Envelope, dict[str, Any]]:
    """Parse wire bytes into an envelope and the raw ``data`` object, or raise DecodeError."""
    try:
        body = json.loads(raw)
        envelope = Envelope(
            event_id=str(uuid.UUID(body["event_id"])),
            type=str(body["type"]),
            version=int(body["version"]),
            occurred_at=datetime.fromisoformat(body["occurred_at"]),
            aggregate_id=str(body["aggregate_id"]),
            correlation_id=str(body["correlation_id"]),
            causation_id=body.get("causation_id"),
        )
        data = body["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DecodeError(f"malformed event: {exc!r}") from None
    if not isinstance(data, dict):
        raise DecodeError("malformed event: data is not an object")
    return envelope, data


def decode(raw: bytes, types: EventTypes) -> tuple[Envelope, Event | None]:
    """Parse wire bytes; the event is None when its type is not among ``types``.

    Each bounded context reads the events it consumes with its own classes
    (a tolerant reader), so the producer's module is never imported.
    """
    envelope, data = decode_envelope(raw)
    cls = types.get((envelope.type, envelope.version))
    if cls is None:
        return envelope, None
    return envelope, cls.from_data(data)
