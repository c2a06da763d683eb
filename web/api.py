"""JSON API plumbing shared by the apps: errors of one shape, bodies parsed safely.

Every error answers ``{"error": {"code", "message", "fields"}}`` (DESIGN §7).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse

from .text import REASON, unstorable, unstorable_paths


class ApiError(Exception):
    """An error a client can act on; the view answers it as JSON with ``status``."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def error_response(status: int, code: str, message: str, fields: dict[str, str] | None = None) -> JsonResponse:
    """Return the JSON error of DESIGN §7."""
    return JsonResponse({"error": {"code": code, "message": message, "fields": fields or {}}}, status=status)


def api_view(*methods: str) -> Callable:
    """Allow only ``methods``, and turn ApiError into its JSON answer."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any):
            if request.method not in methods:
                response = error_response(405, "method_not_allowed", f"use {' or '.join(methods)}")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.message, exc.fields)

        wrapper.methods = methods  # read by web.openapi
        wrapper.csrf_exempt = True  # token or idempotency-key clients; session writes check CSRF themselves
        return wrapper

    return decorator


def json_body(request: HttpRequest) -> dict[str, Any]:
    """Return the request's JSON object, or raise ApiError (413, 415, 400).

    A string the database could not store (a NUL, a lone surrogate: ``web.text``), anywhere in
    the object, is refused here, for every endpoint, with the path of each such field.
    """
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(413, "body_too_large", "the request body is too large") from None
    content_type = request.content_type or ""
    if content_type and content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting deeper than the stack
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    bad = list(dict.fromkeys(unstorable_paths(body)))
    if bad:
        raise ApiError(400, "invalid_text", f"{bad[0]} {REASON}", {path: REASON for path in bad})
    return body


def text_param(request: HttpRequest, name: str, limit: int) -> str:
    """Return a query string parameter cut to ``limit`` characters, or raise ApiError 400 if it is unstorable."""
    value = request.GET.get(name, "")[:limit]
    if unstorable(value):
        raise ApiError(400, "invalid_text", f"{name} {REASON}", {name: REASON})
    return value


def positive_int(value: Any, *, field: str, maximum: int) -> int:
    """Return ``value`` if it is a JSON integer in 1..maximum, else raise ApiError 422."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(422, "invalid", f"{field} must be an integer", {field: "must be an integer"})
    if not 1 <= value <= maximum:
        raise ApiError(422, "invalid", f"{field} must be between 1 and {maximum}", {field: f"must be 1..{maximum}"})
    return value
