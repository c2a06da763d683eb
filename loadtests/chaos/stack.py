"""The devstack under test: ``manage.py devstack`` on free ports, its processes found by PID, then stopped.

It runs as ``make demo`` runs it, with its own embedded servers and data
under the run's folder, and two changes said in the report: no ASGI
processes (the websockets are not under test, and the machine has two
cores) and ``EVENT_ACK_WAIT_SECONDS`` shortened, so that what a killed
worker had fetched comes back in seconds, not 30. Its processes are its
direct children, told apart by their command lines; only the devstack
itself is stopped from here, by its PID (the supervisor stops the rest).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack import state
from devstack.embedded import free_port
from devstack.process import Process, ProcessError, http_ok

BASE_DIR = Path(__file__).resolve().parent.parent.parent
MANAGE = str(BASE_DIR / "manage.py")
READY_TIMEOUT = 240.0  # seconds: embedded servers, migrations, the demo catalog, every process
STOP_TIMEOUT = 60.0  # seconds for the supervisor to stop its children and servers before SIGKILL
ACK_WAIT = 5  # seconds: EVENT_ACK_WAIT_SECONDS of the stack under test (30 by default)


class ChaosError(RuntimeError):
    """The run cannot go on; the message says what to do."""


@dataclass
class Stack:
    """A running devstack: its URL, its servers' URLs (admin on NATS) and its processes."""

    proc: Process
    data: Path
    env: dict[str, str]
    nats_nodes: int

    @property
    def state(self) -> dict:
        return state.running(self.data / "state.json")

    @property
    def url(self) -> str:
        return self.state["web_url"].rstrip("/")

    @property
    def database_url(self) -> str:
        return self.state["database_url"]

    @property
    def nats_url(self) -> str:
        """Return the servers' URL as the admin user (comma-separated when clustered)."""
        return self.state["nats_url"]

    def ready(self) -> bool:
        """Return whether ``/readyz`` answers 200 (database and NATS reachable)."""
        return http_ok(f"{self.url}/readyz")

    def children(self) -> list[tuple[int, str, str]]:
        """Return the supervisor's direct children: (PID, name, command line with spaces between arguments)."""
        found = []
        pid = self.proc.proc.pid
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            try:
                comm = Path(f"/proc/{child}/comm").read_text().strip()
                found.append((int(child), comm, Path(f"/proc/{child}/cmdline").read_text().replace("\0", " ")))
            except OSError:
                continue  # exited while we looked
        return found

    def pid_of(self, *words: str, comm: str = "") -> int:
        """Return the PID of the child named ``comm`` (if given) whose command line has every one of ``words``."""
        for pid, name, cmdline in self.children():
            if (not comm or name == comm) and all(word in cmdline for word in words):
                return pid
        raise ChaosError(f"no process of the devstack runs {comm} {' '.join(words)!r}; see {self.proc.log_path}")

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``manage.py ARGS`` beside the devstack, on its servers."""
        return subprocess.run(
            [sys.executable, MANAGE, *args],
            env={**self.env, "DEVSTACK_STATE": str(self.data / "state.json")},
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def token(self) -> str:
        """Return a staff API token (the demo's user ``admin``)."""
        done = self.manage("issue_token", "admin")
        if done.returncode != 0 or not done.stdout.strip():
            raise ChaosError(f"issue_token beside the devstack failed: {(done.stdout + done.stderr)[-500:]}")
        return done.stdout.strip().splitlines()[-1]


@contextmanager
def running(log_dir: Path, env: dict[str, str], nats_nodes: int = 1, say=print) -> Iterator[Stack]:
    """Start a devstack on free ports (``nats_nodes``: 1 or a cluster of 3), yield it once ready, stop it."""
    env = {k: v for k, v in env.items() if k not in state.OWN_VARIABLES}
    env["EVENT_ACK_WAIT_SECONDS"] = str(ACK_WAIT)
    name = f"devstack-nats{nats_nodes}"
    data = log_dir / f"{name}-data"
    command = [sys.executable, MANAGE, "devstack", "--port", str(free_port()), "--live", "0"]
    command += ["--nats-cluster", str(nats_nodes), "--data", str(data), "--fresh"]
    log = log_dir / f"{name}.log"
    log.unlink(missing_ok=True)  # its ready line is looked for there: not one of an earlier run
    proc = Process(name, command, env, log).start()
    say(f"devstack starting ({nats_nodes} NATS node{'s' if nats_nodes > 1 else ''}; pid {proc.proc.pid}; log {log})")
    try:
        try:
            started = lambda: state.ready(proc.log_text(), data / "state.json")  # noqa: E731
            proc.wait_until(started, "the devstack", READY_TIMEOUT, poll=0.5)
        except ProcessError as exc:
            raise ChaosError(str(exc)) from exc
        yield Stack(proc, data, env, nats_nodes)
    finally:
        proc.stop(timeout=STOP_TIMEOUT)
        say(f"devstack stopped (pid {proc.proc.pid})")
        shutil.rmtree(data, ignore_errors=True)  # its databases; the log stays
