"""JSON over the lab's minimal HTTP client: the catalog, restocks and order reads of the comparison."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

from ..load import REQUEST_TIMEOUT, Connection


def host_port(url: str) -> tuple[str, int]:
    """Return the host and port of an ``http://`` base URL (port 80 if none)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// URL")
    return parts.hostname, parts.port or 80


def request(method: str, host: str, port: int, path: str, body: object = None, token: str = "") -> bytes:
    """Return the bytes of a keep-alive HTTP/1.1 request, its body JSON, with a bearer token if given."""
    data = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return (head + "\r\n").encode() + data


async def call(conn: Connection, method: str, path: str, body: object = None, token: str = "") -> tuple[int, object]:
    """Send one request on ``conn``; return its status and its JSON answer (None if not JSON)."""
    async with asyncio.timeout(REQUEST_TIMEOUT):
        status = await conn.send(request(method, conn.host, conn.port, path, body, token))
    try:
        return status, json.loads(conn.body)
    except ValueError:
        return status, None
