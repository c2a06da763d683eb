"""Prometheus metrics of the HTTP requests the web processes answer.

Labelled by the URL pattern (``route``), never by the path, so that an id
never becomes a label (https://prometheus.io/docs/practices/naming/#labels).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from events.logcontext import flow
from events.metrics import LATENCY_BUCKETS

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered.", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds", "Seconds to answer an HTTP request.", ["method", "route"], buckets=LATENCY_BUCKETS
)

# Any other method a client sends counts as "other", so that the label stays bounded.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def answered(method: str, route: str, status: int, seconds: float, path: str) -> None:
    """Count an HTTP answer by route (the URL pattern, never the path: ids stay out of labels)."""
    method = method if method in METHODS else "other"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)
    flow.info("%s %s %d %.1f ms", method, path, status, seconds * 1000)
