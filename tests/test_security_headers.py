"""Security headers on every response: pages, API answers, and the JSON errors the error middleware builds.

They were missing on those errors (``GET /api/orders/not-a-uuid``) while
``JsonErrorsMiddleware`` sat outside ``SecurityMiddleware``: config/settings.py, MIDDLEWARE.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
REQUESTS = [
    ("get", "/api/orders/not-a-uuid", 404),  # no route: Django's 404, turned into JSON by the middleware
    ("get", "/api/no-such-endpoint", 404),
    ("get", "/api/orders/00000000-0000-0000-0000-000000000000", 404),  # the view's own JSON 404
    ("delete", "/api/orders", 405),
    ("post", "/api/orders", 415),
    ("get", "/api/products", 200),
    ("get", "/no-such-page/", 404),
    ("get", "/", 200),
    ("get", "/healthz", 200),
]


@pytest.mark.parametrize(("method", "path", "status"), REQUESTS)
def test_every_response_carries_the_security_headers(client, method, path, status):
    response = getattr(client, method)(path)

    assert response.status_code == status
    assert {name: response.get(name) for name in HEADERS} == HEADERS
