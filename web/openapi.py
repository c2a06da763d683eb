"""The HTTP API's contract (DESIGN §7) as an OpenAPI 3.1 document, built from the code.

The paths, their parameters and their methods come from the URLconf and from
``api_view``; what each operation takes and answers is declared beside the
view with ``@operation(...)``, in the app that owns it. ``python manage.py
export_openapi`` writes ``docs/openapi.json`` and ``--check`` fails when it is
stale; ``tests/test_openapi.py`` runs schemathesis against a live server with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import UUIDConverter


@dataclass(frozen=True)
class Component:
    """A named schema, written once under ``components`` and referred to by ``$ref``.

    ``schema`` may be a function returning it: limits read from settings are read
    when the document is built, not at import.
    """

    name: str
    schema: dict[str, Any] | Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: dict[int, tuple[str, Component | dict | None]]
    body: Component | None = None
    query: tuple[tuple[str, dict, str], ...] = ()
    headers: tuple[tuple[str, dict, str], ...] = ()
    staff: bool = False
    tag: str = "shop"


ERROR = Component(
    "Error",
    {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "fields"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                },
            }
        },
    },
)

# What any API view may answer besides its own: a body it cannot read, or too many requests.
REFUSALS = {
    400: "the body is not JSON, or a parameter is malformed",
    413: "the body is too large",
    415: "the body is not application/json",
    429: "too many requests; try again later",
}
# Sent with every 429 (web/ratelimit.py).
RETRY_AFTER = {"description": "seconds to wait before trying again", "schema": {"type": "integer", "minimum": 1}}


def errors(*statuses: int, **described: str) -> dict[int, tuple[str, Component]]:
    """Return error responses: ``statuses`` with their usual meaning, ``described`` as ``_404="..."``."""
    found = {status: (REFUSALS[status], ERROR) for status in statuses}
    found.update({int(key.lstrip("_")): (text, ERROR) for key, text in described.items()})
    return found


def operation(summary: str, responses: dict[int, tuple[str, Component | dict | None]], **options: Any) -> Callable:
    """Declare what a view takes and answers (``body``, ``query``, ``headers``, ``staff``, ``tag``)."""

    def decorator(view: Callable) -> Callable:
        view.openapi = Operation(summary, responses, **options)
        return view

    return decorator


def _routes(patterns: list, prefix: str = "") -> Iterator[tuple[str, dict, Callable]]:
    """Yield (route, converters, view) of every URL pattern whose view declares an operation."""
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and hasattr(entry.callback, "openapi"):
            yield prefix + str(entry.pattern), entry.pattern.converters, entry.callback


def _path(route: str, converters: dict) -> tuple[str, list[dict]]:
    """Turn ``api/orders/<uuid:order_id>`` into ``/api/orders/{order_id}`` and its path parameters."""
    path, parameters = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route), []
    for name, converter in converters.items():
        schema = {"type": "string", "format": "uuid"} if isinstance(converter, UUIDConverter) else None
        schema = schema or {"type": "string", "pattern": f"^{converter.regex}$"}
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return path, parameters


class _Components:
    """The named schemas met while building, each written once."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, value: Any) -> Any:
        if isinstance(value, Component):
            if value.name not in self.schemas:
                self.schemas[value.name] = {}  # reserved first: a schema may refer to itself
                schema = value.schema() if callable(value.schema) else value.schema
                self.schemas[value.name] = self.ref(schema)
            return {"$ref": f"#/components/schemas/{value.name}"}
        if isinstance(value, dict):
            return {k: self.ref(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.ref(v) for v in value]
        return value


def _operation(op: Operation, method: str, parameters: list[dict], components: _Components) -> dict:
    out: dict[str, Any] = {"summary": op.summary, "operationId": "", "tags": [op.tag]}
    params = list(parameters)
    params += [{"name": n, "in": "query", "required": False, "schema": s, "description": d} for n, s, d in op.query]
    params += [{"name": n, "in": "header", "required": False, "schema": s, "description": d} for n, s, d in op.headers]
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": components.ref(op.body)}}}
    if op.staff:
        out["security"] = [{"bearer": []}]
    responses = {}
    for status, (description, schema) in sorted(op.responses.items()):
        answer: dict[str, Any] = {"description": description}
        if schema is not None:
            answer["content"] = {"application/json": {"schema": components.ref(schema)}}
        if status == 429:
            answer["headers"] = {"Retry-After": RETRY_AFTER}
        responses[str(status)] = answer
    out["responses"] = responses
    return out


def document(urlconf: str | None = None) -> dict:
    """Return the OpenAPI 3.1 document of every view of ``urlconf`` that declares an operation."""
    components = _Components()
    paths: dict[str, dict] = {}
    for route, converters, view in _routes(get_resolver(urlconf).url_patterns):
        path, parameters = _path(route, converters)
        for method in getattr(view, "methods", ("GET",)):
            entry = _operation(view.openapi, method, parameters, components)
            entry["operationId"] = f"{method.lower()}_{view.__name__}"
            paths.setdefault(path, {})[method.lower()] = entry
    components.ref(ERROR)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Event Shop HTTP API",
            "version": "1",
            "description": "The storefront's JSON API (DESIGN §7). Every error answers "
            '{"error": {"code", "message", "fields"}}; bad input is a 4xx, never a 500.',
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token from `python manage.py issue_token <username>` (staff), or a staff session",
                }
            },
        },
    }
