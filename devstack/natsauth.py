"""NATS users of the embedded servers: one per service, with the allow-lists of ``deploy/nats/auth.conf``.

The same file is the ``authorization`` block of compose's servers
(``deploy/nats/nats.conf`` includes it); it names each password by an
environment variable (``$WEB_NATS_PASSWORD``...), which nats-server reads from
its own environment. Here the passwords are generated once per devstack (or
test run) and kept beside its data, so a restarted server and the commands run
beside it use the same ones.

Each process is given its own user in its ``NATS_URL``; the harnesses that
start processes (the supervisor, the test pipeline, the bench stack) find the
URL of each service in ``NATS_SERVICE_URLS`` (JSON, set by whoever started the
servers) and pass it on with ``service_env``. Where no such variable is set (a
``NATS_URL`` naming an external server), every process keeps the one ``NATS_URL``.

This module imports nothing from Django: it runs before settings exist.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
AUTH_CONF = BASE_DIR / "deploy" / "nats" / "auth.conf"

# The users of auth.conf. admin: setup_streams (streams and consumers), and the commands an operator runs.
SERVICES = ("admin", "relay", "workers", "web", "ops")
# Which user each process connects as.
PROCESS_USER = {"web": "web", "live": "web", "relay": "relay", "workers": "workers", "setup_streams": "admin"}


def password_variable(service: str) -> str:
    """Return the environment variable auth.conf reads the password of ``service`` from."""
    return f"{service.upper()}_NATS_PASSWORD"


def passwords(path: Path | None = None) -> dict[str, str]:
    """Return a password per service: those kept at ``path`` if there are, else new ones (kept there, 0600)."""
    if path is not None and path.exists():
        return json.loads(path.read_text())
    # nats-server parses a variable's value as a config value: one starting with a digit or "-" is read
    # as a number and refused. Letters and digits after a letter always read as a string.
    result = {service: "p" + secrets.token_hex(16) for service in SERVICES}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(result))
    return result


def server_env(users: dict[str, str]) -> dict[str, str]:
    """Return the variables a nats-server started with ``-c auth.conf`` reads its users' passwords from."""
    return {password_variable(service): password for service, password in users.items()}


def url_as(url: str, service: str, users: dict[str, str]) -> str:
    """Return ``url`` (one server or several, comma-separated) with the credentials of ``service``."""
    password = users[service]
    return ",".join(part.strip().replace("nats://", f"nats://{service}:{password}@", 1) for part in url.split(","))


def service_urls(url: str, users: dict[str, str]) -> dict[str, str]:
    """Return the URL of each service for the servers at ``url``."""
    return {service: url_as(url, service, users) for service in SERVICES}


def service_env(env: dict[str, str], process: str) -> dict[str, str]:
    """Return the variables that give ``process`` its own NATS user, from ``NATS_SERVICE_URLS`` in ``env``.

    Empty when ``env`` names no service URLs: the process keeps ``env``'s ``NATS_URL``.
    """
    urls = json.loads(env.get("NATS_SERVICE_URLS") or "{}")
    if not urls:
        return {}
    result = {"NATS_URL": urls[PROCESS_USER[process]]}
    if process in ("web", "live"):
        # The staff's dead-letter replay publishes any consumed subject: a user of its own (ops/services.py).
        result["NATS_OPS_URL"] = urls["ops"]
    return result
