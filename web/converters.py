"""Path converters: ``<sku:…>`` routes a path segment only if it is a valid SKU (a NATS subject token)."""

from django.urls import register_converter

from events.base import SKU_PATTERN


class SkuConverter:
    """The ``<sku:…>`` URL converter: a segment that is no valid SKU matches no route (a 404)."""

    regex = SKU_PATTERN.pattern.removesuffix(r"\Z")

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


# Once, at import: every URLconf that uses <sku:…> imports this module first.
register_converter(SkuConverter, "sku")
