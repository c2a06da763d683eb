"""The devstack from the outside: embedded servers, ready line, restarts, and nothing left behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from devstack import state as devstack_state
from devstack.embedded import free_port
from devstack.process import parent_death_signal
from tests.pipeline import MANAGE, wait_for


class Output:
    """Collect a process's output lines from a background thread."""

    def __init__(self, stream):
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead
        return f.read().split(")")[-1].split()[0] != "Z"


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split() if alive(parent) else []:
            found.add(int(child))
            todo.append(int(child))
    return found


def cmdline(pid: int) -> str:
    """Return a process's command line, or "" if it exited meanwhile."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""


@contextlib.contextmanager
def running_devstack(data: Path, *options: str, ready_within: float = 120):
    """Run `manage.py devstack --data DATA OPTIONS` on a free port with its own embedded servers, until ready.

    Yield (process, its output, the web's base URL); on the way out stop it by its PID and wait
    until every process it started (children and servers) is gone.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL", "NATS_SERVICE_URLS")}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, MANAGE, "devstack", "--port", str(port), *options, "--data", str(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=parent_death_signal(signal.SIGTERM),
    )
    out = Output(proc.stdout)
    family: set[int] = set()
    try:
        wait_for(lambda: out.has("ready") or proc.poll() is not None, ready_within, "the ready line")
        assert proc.poll() is None, "".join(out.lines)
        yield proc, out, f"http://127.0.0.1:{port}"
    finally:
        family = descendants(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        wait_for(lambda: not [p for p in family if alive(p)], 30, "every child and server to exit")


@pytest.fixture
def devstack(tmp_path):
    """Start `manage.py devstack` with its own embedded servers in a temporary folder."""
    with running_devstack(tmp_path / "stack") as (proc, out, base):
        yield proc, out, base, tmp_path / "stack"


def test_devstack_serves_the_demo_restarts_a_dead_child_and_leaves_nothing_behind(devstack):
    proc, out, base, data = devstack
    state = json.loads((data / "state.json").read_text())
    assert state["pid"] == proc.pid

    products = httpx.get(f"{base}/api/products").json()
    assert products["items"] and products["pages"] >= 1
    sku = products["items"][0]["sku"]
    image = httpx.get(products["items"][0]["image_url"])
    assert image.status_code == 200 and image.text.startswith("<svg")
    assert "Catalog" in httpx.get(f"{base}/").text
    order = httpx.post(f"{base}/api/orders", json={"email": "e@example.org", "lines": [{"sku": sku, "quantity": 1}]})
    assert order.status_code == 202
    wait_for(lambda: httpx.get(order.json()["status_url"]).json()["status"] == "confirmed", 30, "confirmation")
    # The terminal keeps the ready lines; the flow log holds the order's story, one grep away.
    order_id = order.json()["id"]
    flow = data / "flow.log"
    assert out.has(f"logged to {flow.resolve()}: grep an order id")
    story = lambda: [line for line in flow.read_text().splitlines() if order_id in line]  # noqa: E731
    wait_for(lambda: any("recorded OrderConfirmed" in line for line in story()), 30, "the story in the flow log")
    assert any("POST /api/orders 202" in line for line in story())
    assert any("published OrderPlaced" in line for line in story())
    assert not out.has(order_id)

    # Another manage.py command in the checkout finds the running servers.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL")}
    env["DEVSTACK_STATE"] = str(data / "state.json")
    for command in (["verify_invariants"], ["issue_token", "admin"]):
        check = subprocess.run([sys.executable, MANAGE, *command], env=env, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr

    family = descendants(proc.pid)
    workers = [p for p in family if "run_workers" in cmdline(p)]
    os.kill(workers[0], signal.SIGKILL)
    wait_for(lambda: out.has("workers-1 restarted"), 30, "the worker to be restarted")

    family |= descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    wait_for(lambda: not [p for p in family if alive(p)], 15, "every child to exit")
    assert out.has("stopped")
    assert not (data / "state.json").exists()


def test_a_killed_devstack_leaves_no_server_behind(devstack):
    proc, out, base, data = devstack
    family = descendants(proc.pid)
    names = {Path(f"/proc/{p}/comm").read_text().strip() for p in family if alive(p)}
    assert {"postgres", "nats-server"} <= names

    proc.kill()
    proc.wait(10)

    # Nobody stops them but the kernel, which signals each child of a dead parent (PR_SET_PDEATHSIG).
    wait_for(lambda: not [p for p in family if alive(p)], 30, "every child and server to exit")


def test_the_websockets_port_left_in_time_wait_by_a_killed_run_is_taken_again():
    from devstack.supervisor import _port_or_free

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server's side closes first, as when a server is killed: its port goes to TIME_WAIT
    client.close()
    server.close()

    def in_time_wait() -> bool:
        with socket.socket() as plain:
            try:
                plain.bind(("127.0.0.1", port))
            except OSError:
                return True
        return False

    wait_for(in_time_wait, 10, "the port to be in TIME_WAIT")
    assert _port_or_free(port) == port


def test_commands_beside_a_running_devstack_get_its_servers_unless_told_otherwise(tmp_path, monkeypatch):
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"pid": os.getpid(), "database_url": "postgresql://db", "nats_url": "nats://n"}))
    monkeypatch.setenv("DEVSTACK_STATE", str(state_file))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("NATS_URL", "nats://given")

    devstack_state.export_to_environ()

    assert os.environ["DATABASE_URL"] == "postgresql://db"
    assert os.environ["NATS_URL"] == "nats://given"


def test_the_state_of_a_stopped_devstack_is_ignored(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"pid": int(gone.stdout), "database_url": "postgresql://db"}))

    assert devstack_state.running(state_file) == {}
    assert devstack_state.running(tmp_path / "missing.json") == {}


def test_a_free_port_is_never_one_this_process_gave_out_or_will_serve_on():
    from devstack import embedded

    embedded.claim(1)
    given = {embedded.free_port() for _ in range(200)}
    assert len(given) == 200 and 1 not in given  # each one once: not yet bound, still taken
    assert given <= embedded._claimed
