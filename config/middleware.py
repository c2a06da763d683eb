"""Never answer an API client with an HTML error page."""

import logging

from django.http import Http404

from .api import error_response

log = logging.getLogger(__name__)


class JsonErrorsMiddleware:
    """Answer errors under /api/ (and the probes) as JSON: 404s, and unexpected exceptions as 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if self._is_api(request) and response.status_code == 404 and "json" not in response.get("Content-Type", ""):
            return error_response(404, "not_found", "no such resource")
        return response

    def process_exception(self, request, exception):
        if not self._is_api(request):
            return None
        if isinstance(exception, Http404):
            return error_response(404, "not_found", str(exception) or "no such resource")
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")

    @staticmethod
    def _is_api(request) -> bool:
        return request.path.startswith("/api/")
