"""The devstack supervises its servers: a nats-server or PostgreSQL killed mid-load comes back by itself.

A modest stream of orders runs while each server is killed with SIGKILL. Every
order is sent with its own ``Idempotency-Key`` and sent again until it is
accepted, as a careful client would; then every accepted order must end
(confirmed or rejected), once: nothing lost, nothing doubled.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.pipeline import MANAGE, wait_for
from tests.test_devstack import Output, running_devstack

EMAIL = "recovery@example.org"


@pytest.fixture
def small_devstack(tmp_path):
    """Start `manage.py devstack` with one process of each kind and its own embedded servers."""
    with running_devstack(tmp_path / "stack", "--web", "1", "--live", "0") as (proc, out, base):
        yield proc, out, base, tmp_path / "stack"


class OrderStream:
    """Place ``count`` orders one after another, each sent again with its key until it is accepted."""

    def __init__(self, base: str, skus: list[str], phase: str, count: int):
        self.base, self.skus, self.phase, self.count = base, skus, phase, count
        self.accepted: dict[str, str] = {}  # Idempotency-Key -> order id
        self.failures: list[str] = []  # what the web answered while a server was down
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> OrderStream:
        self.thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=20) as client:
            for i in range(self.count):
                key = f"{self.phase}-{i}"
                lines = [{"sku": self.skus[i % len(self.skus)], "quantity": 1 + i % 2}]
                place = functools.partial(self._place, client, key, lines)
                self.accepted[key] = wait_for(place, 90, f"order {key} accepted")

    def _place(self, client: httpx.Client, key: str, lines: list[dict]) -> str | None:
        try:
            resp = client.post("/api/orders", json={"email": EMAIL, "lines": lines}, headers={"Idempotency-Key": key})
        except httpx.HTTPError as exc:
            self.failures.append(repr(exc))
            return None
        if resp.status_code == 202:
            return resp.json()["id"]
        self.failures.append(f"{resp.status_code} {resp.text[:200]}")
        assert resp.status_code >= 500 or resp.status_code == 429, resp.text  # never a 4xx for a good order
        return None

    def join(self) -> dict[str, str]:
        self.thread.join(120)
        assert not self.thread.is_alive(), "the order stream did not finish"
        assert len(self.accepted) == self.count, f"{len(self.accepted)} of {self.count} accepted; {self.failures[-5:]}"
        return self.accepted


def server_pid(devstack_pid: int, comm: str) -> int:
    """Return the PID of the devstack's own server process named ``comm`` (its direct child)."""
    for pid in Path(f"/proc/{devstack_pid}/task/{devstack_pid}/children").read_text().split():
        if Path(f"/proc/{pid}/comm").read_text().strip() == comm:
            return int(pid)
    raise AssertionError(f"no {comm} under the devstack")


def kill_mid_load(proc, out: Output, base: str, skus: list[str], comm: str, name: str) -> dict[str, str]:
    """Kill server ``comm`` while orders arrive; wait for the supervisor to start it again."""
    stream = OrderStream(base, skus, comm, count=40).start()
    wait_for(lambda: len(stream.accepted) >= 10, 60, "the first orders of the stream")
    victim = server_pid(proc.pid, comm)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: out.has(f"{name} exited with code -9"), 30, f"the supervisor to see {name} die")
    wait_for(lambda: out.has(f"{name} restarted"), 90, f"{name} to be restarted")
    assert server_pid(proc.pid, comm) != victim
    wait_for(lambda: httpx.get(f"{base}/readyz", timeout=15).status_code == 200, 60, "/readyz to recover")
    return stream.join()


def every_order_ends(base: str, accepted: dict[str, str]) -> dict[str, str]:
    """Wait until every accepted order is confirmed or rejected; return each one's final status."""
    final: dict[str, str] = {}

    def all_final() -> bool:
        for order_id in set(accepted.values()) - set(final):
            resp = httpx.get(f"{base}/api/orders/{order_id}", timeout=15)
            if resp.status_code == 200 and resp.json()["status"] in ("confirmed", "rejected"):
                final[order_id] = resp.json()["status"]
        return len(final) == len(set(accepted.values()))

    wait_for(all_final, 120, "every order to be confirmed or rejected", interval=0.5)
    return final


def test_killed_nats_and_postgres_are_restarted_and_every_order_ends_once(small_devstack):
    proc, out, base, data = small_devstack
    state = json.loads((data / "state.json").read_text())
    skus = [p["sku"] for p in httpx.get(f"{base}/api/products").json()["items"][:3]]

    accepted = kill_mid_load(proc, out, base, skus, "nats-server", "nats-0")
    accepted |= kill_mid_load(proc, out, base, skus, "postgres", "postgres")

    # Nothing doubled: one order per key, in the answers and in the database.
    assert len(set(accepted.values())) == len(accepted) == 80
    final = every_order_ends(base, accepted)
    assert set(final.values()) <= {"confirmed", "rejected"}
    with psycopg.connect(state["database_url"]) as conn:
        (orders,) = conn.execute("SELECT count(*) FROM shop_order WHERE email = %s", [EMAIL]).fetchone()
    assert orders == 80

    # Nothing lost or oversold, and stock is still the fold of its events.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL")}
    env["DEVSTACK_STATE"] = str(data / "state.json")
    check = subprocess.run([sys.executable, MANAGE, "verify_invariants"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
