"""Text the database can store, and e-mail addresses a person can read: one rule for every input.

PostgreSQL ``text`` holds no NUL character (``\\x00``) and is UTF-8, which
has no encoding for a lone surrogate (``"\\ud800"`` in JSON, or the raw bytes
``\\xed\\xa0\\x80``): either one reaching a query fails there, a 500. JSON
bodies (``web.api.json_body``), query strings and forms (``StorableTextForm``)
refuse them with this module's ``unstorable`` before any query runs.
https://www.postgresql.org/docs/current/datatype-character.html
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

REASON = "must not contain NUL characters or lone surrogates"


def unstorable(text: str) -> bool:
    """Return whether ``text`` holds a character PostgreSQL cannot store (NUL, a lone surrogate)."""
    if "\x00" in text:
        return True
    if text.isascii():  # the usual case, and no surrogate can be ASCII
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable_paths(value: Any, path: str = "") -> Iterator[str]:
    """Yield the path (``lines[0].sku``) of each string of a decoded JSON value, key or value, that is unstorable."""
    if isinstance(value, str):
        if unstorable(value):
            yield path or "body"
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if unstorable(key):
                yield path or "body"
            else:
                yield from unstorable_paths(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from unstorable_paths(item, f"{path}[{i}]")


def validate_storable(value: Any) -> None:
    """Raise ValidationError if a form value is text PostgreSQL cannot store."""
    if isinstance(value, str) and unstorable(value):
        raise ValidationError(f"This value {REASON}.", code="unstorable")


def validate_email_address(value: str) -> None:
    """Raise ValidationError unless ``value`` is an address Django accepts, storable, with no control character.

    Django's validator follows RFC 5322, whose quoted local parts may hold
    control characters (``"a\\x01b"@example.com``): valid on paper, useless to
    mail and a trap for every log or page that shows the address.
    """
    validate_storable(value)
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValidationError("Enter an e-mail address without control characters.", code="invalid")
    validate_email(value)


class StorableTextForm(forms.Form):
    """A form whose every field refuses text PostgreSQL cannot store (Django's own fields refuse only NUL)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():  # each form instance has its own copies of the fields
            field.validators.append(validate_storable)
