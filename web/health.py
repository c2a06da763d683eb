"""Liveness and readiness probes."""

import socket
import time
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

from .openapi import Component, operation

PROBE = Component(
    "Probe",
    {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["ok", "ready", "unavailable"]},
            "checks": {
                "type": "object",
                "description": "database and nats: each {status, ms} or {status: unavailable, error}",
                "additionalProperties": {"type": "object", "required": ["status"]},
            },
        },
    },
)


@operation("Liveness: the process serves requests", {200: ("alive", PROBE)}, tag="probes")
def healthz(request):
    """Answer 200 while the process serves requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_nats() -> str:
    """Read the INFO line of a NATS server of ``NATS_URL``: any one of a cluster's will do, as for the clients."""
    if not settings.NATS_URL:
        raise RuntimeError("NATS_URL not configured")
    error: Exception = RuntimeError("no NATS server in NATS_URL")
    for server in settings.NATS_URL.split(","):
        try:
            _nats_info(urlparse(server.strip()))
            return "ok"
        except (OSError, RuntimeError) as exc:  # this node is down: the clients reconnect to another
            error = exc
    raise error


def _nats_info(url) -> None:
    with socket.create_connection((url.hostname, url.port or 4222), timeout=1) as sock:
        sock.settimeout(1)
        if not sock.recv(1024).startswith(b"INFO"):
            raise RuntimeError("not a NATS server")


@operation(
    "Readiness: PostgreSQL and NATS reachable",
    {200: ("ready", PROBE), 503: ("the database or NATS is unreachable (named in checks)", PROBE)},
    tag="probes",
)
def readyz(request):
    """Answer 200 when PostgreSQL and NATS are reachable, 503 otherwise, naming each."""
    checks, ready = {}, True
    for name, check in (("database", _check_database), ("nats", _check_nats)):
        started = time.monotonic()
        try:
            checks[name] = {"status": check(), "ms": round((time.monotonic() - started) * 1000, 1)}
        except Exception as exc:
            checks[name] = {"status": "unavailable", "error": str(exc)[:200]}
            ready = False
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
