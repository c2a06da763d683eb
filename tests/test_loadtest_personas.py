"""The personas under Locust fail a request whose answer is wrong, not only one that is slow or refused.

Locust runs as a subprocess (importing it here would monkey-patch this test
run with gevent) against a small HTTP server of the test's own that answers
some requests right and others with a wrong body or status; Locust's CSV must
count exactly the wrong ones as failures.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from devstack.process import parent_death_signal

BASE_DIR = Path(__file__).resolve().parent.parent
LOCUST = str(Path(sys.executable).with_name("locust"))
PRODUCT = {
    "sku": "COF-001",
    "name": "Kenya Nyeri",
    "description": "Blackcurrant",
    "price": "16.00",
    "available": 5,
    "stock_status": "in_stock",
    "url": "http://x/products/COF-001/",
}


class WrongShop(BaseHTTPRequestHandler):
    """Right catalog pages and search; a product of the wrong SKU; an order answered as already confirmed."""

    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: object, kind: str = "application/json") -> None:
        data = (json.dumps(body) if kind == "application/json" else str(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path, q = url.path, parse_qs(url.query).get("q", [""])[0].lower()
        if path == "/api/products":  # right: the one product, when it matches the search
            found = [PRODUCT] if q in f"{PRODUCT['name']} {PRODUCT['description']}".lower() else []
            self._send(200, {"items": found, "page": 1, "pages": 1})
        elif path.startswith("/api/products/"):  # wrong body: another SKU
            self._send(200, {**PRODUCT, "sku": "TEA-001"})
        elif path == "/":  # wrong body: a 200 that is not the catalog
            self._send(200, "<h1>Maintenance</h1>", "text/html")
        else:
            self._send(404, {"error": {"code": "not_found", "message": "no"}})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        order = {"id": "x", "status": "confirmed", "lines": [], "total": "1.00", "status_url": "x"}
        self._send(202, order)  # wrong body: a new order cannot be confirmed yet

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def wrong_shop():
    server = ThreadingHTTPServer(("127.0.0.1", 0), WrongShop)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def stats(path: Path) -> dict[tuple[str, str], tuple[int, int]]:
    with open(path, newline="") as f:
        return {(r["Type"], r["Name"]): (int(r["Request Count"]), int(r["Failure Count"])) for r in csv.DictReader(f)}


def test_wrong_bodies_fail_their_requests_and_right_ones_pass(wrong_shop, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    # Browsers limited to the catalog page, search and the product API; buyers as they are.
    only = json.dumps({"user_class_name": "Browser", "tasks": ["catalog_page", "search", "product_api"]})
    done = subprocess.run(
        [
            LOCUST,
            "-f",
            str(BASE_DIR / "loadtests" / "locustfile.py"),
            "--headless",
            "--host",
            wrong_shop,
            "--users",
            "20",
            "--spawn-rate",
            "20",
            "--run-time",
            "8s",
            "--csv",
            str(tmp_path / "s"),
            "--config-users",
            only,
            "--only-summary",
        ],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=parent_death_signal(signal.SIGKILL),
    )
    assert done.returncode == 1, done.stderr[-3000:]  # Locust's own verdict: some requests failed
    found = stats(tmp_path / "s_stats.csv")
    assert found[("GET", "/api/products?page=[n]")][1] == 0, found  # right answers pass
    assert found[("GET", "/api/products?q=[term]")][1] == 0, found
    for name in (("GET", "/api/products/[sku]"), ("GET", "/"), ("POST", "/api/orders")):
        requests, failures = found[name]
        assert requests > 0 and failures == requests, (name, found)
    failures = (tmp_path / "s_failures.csv").read_text()
    assert "asked for COF-001, got 'TEA-001'" in failures
    assert "the page lacks 'Catalog'" in failures
    assert "a new order is 'confirmed', not pending" in failures
