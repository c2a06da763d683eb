"""Path converters: ``<sku:…>`` routes a path segment only if it is a valid SKU (a NATS subject token),
``<text:…>`` any segment the database can store (``web.text``).
"""

from django.urls import register_converter
from django.urls.converters import StringConverter

from events.base import SKU_PATTERN

from .text import unstorable


class SkuConverter:
    """The ``<sku:…>`` URL converter: a segment that is no valid SKU matches no route (a 404)."""

    regex = SKU_PATTERN.pattern.removesuffix(r"\Z")

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class TextConverter(StringConverter):
    """The ``<text:…>`` URL converter: ``<str:…>``, but a segment the database cannot store matches no route."""

    def to_python(self, value: str) -> str:
        if unstorable(value):
            # https://docs.djangoproject.com/en/5.2/topics/http/urls/#registering-custom-path-converters
            raise ValueError(value)
        return value


# Once, at import: every URLconf that uses <sku:…> imports this module first.
register_converter(SkuConverter, "sku")
register_converter(TextConverter, "text")
