"""The HTTP API's contract: docs/openapi.json is generated from the code, and the live server keeps it.

Schemathesis generates requests from the document, valid ones and invalid ones,
sends them to a real web server (granian, as the devstack runs it) on the test
database, and checks every answer: never a 5xx, only documented statuses and
content types, every body as its schema says.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import schemathesis
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZ = settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def test_the_openapi_document_is_generated_from_the_code():
    call_command("export_openapi", "--check")  # raises CommandError when docs/openapi.json is stale


def test_every_api_route_declares_its_operation():
    def api_views(patterns):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from api_views(entry.url_patterns) if entry.namespace == "api" else ()
            elif isinstance(entry, URLPattern):
                yield entry.callback

    resolver = next(e for e in get_resolver().url_patterns if getattr(e, "namespace", None) == "api")
    views = list(api_views(resolver.url_patterns))
    assert len(views) == 7
    assert [v.__name__ for v in views if not hasattr(v, "openapi")] == []


@pytest.fixture
def live_api(pipeline, make_product, django_user_model):
    """A web server on the test database with two products, a placed order and a staff token."""
    from accounts.tokens import token_issue

    make_product("API-1", stock=50)
    make_product("API-2", stock=0)
    staff = django_user_model.objects.create_user("api-staff", password="x", is_staff=True)
    base = pipeline.web(workers=1)
    body = {"email": "a@example.org", "lines": [{"sku": "API-1", "quantity": 1}]}
    order = httpx.post(f"{base}/api/orders", json=body)
    assert order.status_code == 202, order.text
    return base, {"Authorization": f"Bearer {token_issue(username=staff.username)}"}, order.json()["id"]


def fuzz(op, mode: GenerationMode, pin: dict | None, base: str, headers: dict) -> None:
    """Send ``op`` the requests Hypothesis draws from its schema; check each answer against the document."""

    @FUZZ
    @given(case=op.as_strategy(mode, path_parameters=pin))
    def answers_as_documented(case):
        case.validate_response(case.call(base_url=base, headers=headers), checks=CHECKS)

    answers_as_documented()


def test_the_live_api_keeps_its_contract_whatever_it_is_sent(live_api):
    base, auth, order_id = live_api
    schema = schemathesis.openapi.from_path(str(DOCUMENT))
    real = {"sku": "API-1", "order_id": order_id}
    checked = 0
    for result in schema.get_all_operations():
        op = result.ok()
        names = {p.name for p in op.path_parameters}
        headers = auth if op.path.startswith("/api/inventory") else {}
        # Drawn path parameters (mostly 404s), then the real product and order, with drawn bodies and queries;
        # invalid requests too, wherever something is drawn that can be invalid.
        raw = op.definition.raw
        for pin in [None, {n: real[n] for n in names}] if names else [None]:
            drawn = [p for p in raw.get("parameters", []) if p["in"] != "path" or pin is None]
            takes = bool(drawn) or "requestBody" in raw
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes else (GenerationMode.POSITIVE,):
                fuzz(op, mode, pin, base, headers)
                checked += 1
    assert checked == 22  # 9 operations, with and without real path parameters, valid and invalid
