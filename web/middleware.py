"""Never answer an API client with an HTML error page; observe every request."""

import logging
import time

from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404

from events import observe

from . import metrics
from .api import error_response

log = logging.getLogger(__name__)

# Errors Django itself answers with an HTML page (its handler400/403/404, a DisallowedHost, ...), as JSON.
STATUS_ERRORS = {
    400: ("bad_request", "the request is malformed"),
    403: ("forbidden", "you may not do this"),
    404: ("not_found", "no such resource"),
    413: ("body_too_large", "the request body is too large"),
    500: ("internal_error", "an unexpected error occurred; it has been logged"),
}
# Exceptions of bad input, raised by Django while a view reads the request: the client's fault, not a 500.
CLIENT_ERRORS = [(RequestDataTooBig, 413), (SuspiciousOperation, 400), (BadRequest, 400), (PermissionDenied, 403)]


class JsonErrorsMiddleware:
    """Answer errors under /api/ as JSON: Django's own error pages, bad input, and unexpected exceptions as 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if self._is_api(request) and response.status_code >= 400 and "json" not in response.get("Content-Type", ""):
            return self._status_error(response.status_code)
        return response

    def process_exception(self, request, exception):
        if not self._is_api(request):
            return None
        if isinstance(exception, Http404):
            return error_response(404, "not_found", str(exception) or "no such resource")
        for kind, status in CLIENT_ERRORS:
            if isinstance(exception, kind):
                return self._status_error(status)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")

    @staticmethod
    def _status_error(status: int):
        """Return the JSON error for an HTTP status."""
        code, message = STATUS_ERRORS.get(status, ("error", "the request failed"))
        return error_response(status, code, message)

    @staticmethod
    def _is_api(request) -> bool:
        return request.path.startswith("/api/")


class RequestContextMiddleware:
    """Give each request a trace (continuing the caller's ``traceparent``) and log fields; count it by route."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        with observe.request(request.method, request.headers.get("traceparent")):
            response = self.get_response(request)
            match = request.resolver_match
            route = match.route if match is not None else "unmatched"
            metrics.answered(request.method, route, response.status_code, time.perf_counter() - started, request.path)
        return response
