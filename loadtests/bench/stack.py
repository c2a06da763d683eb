"""The processes under test, started exactly as the devstack starts them, and always stopped.

Each child runs in its own session (so its whole process group can be
signalled by PID) and is asked by the kernel to stop if the bench dies
(``PR_SET_PDEATHSIG``). Output goes to one log file per start.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from events.embedded import free_port, parent_death_signal, stop_process_group, web_command

BASE_DIR = Path(__file__).resolve().parent.parent.parent
MANAGE = str(BASE_DIR / "manage.py")


class BenchError(RuntimeError):
    """The bench cannot go on; the message says what failed and where to look."""


@dataclass
class Child:
    """One process under test, with its log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> Child:
        """Start the process in its own session, its output appended to its log."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command, env=self.env, cwd=BASE_DIR, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=parent_death_signal(signal.SIGTERM),
            )  # fmt: skip
        return self

    def alive(self) -> bool:
        """Return whether the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the child's process group, then SIGKILL it if it lingers."""
        stop_process_group(self.proc, timeout=timeout)


@dataclass
class Stack:
    """The web server, the relay and the workers of one bench run."""

    log_dir: Path
    env: dict[str, str]
    web_workers: int = 2
    port: int = 0
    web: Child | None = None
    relay: Child | None = None
    workers: Child | None = None
    batch_size: int = 0
    starts: int = field(default=0, repr=False)

    def _child(self, name: str, command: list[str], **env: str) -> Child:
        self.starts += 1
        log = self.log_dir / f"{self.starts:02d}-{name}.log"
        return Child(name, command, {**self.env, **env}, log).start()

    def start_web(self) -> str:
        """Start granian (WSGI) as the devstack does; return the base URL once it answers."""
        self.port = free_port()
        self.web = self._child("web", web_command(self.port, self.web_workers))
        base = f"http://127.0.0.1:{self.port}"
        self._wait(self.web, lambda: _http_ok(f"{base}/healthz"), "the web server")
        return base

    def pipeline(self, running: bool, batch_size: int = 100) -> bool:
        """Have the relay and workers running (with this batch size) or stopped; return whether it changed."""
        if not running:
            changed = self.relay is not None or self.workers is not None
            self._stop_pipeline()
            return changed
        if self.workers is not None and self.batch_size == batch_size and self.workers.alive() and self.relay.alive():
            return False
        self._stop_pipeline()
        self.relay = self._child("relay", [sys.executable, MANAGE, "run_relay"])
        self.workers = self._child("workers", [sys.executable, MANAGE, "run_workers"], EVENT_BATCH_SIZE=str(batch_size))
        self.batch_size = batch_size
        return True

    def sessions(self) -> dict[int, str]:
        """Return {session id: name} of the running children (each leads its own session)."""
        return {c.proc.pid: c.name for c in (self.web, self.relay, self.workers) if c is not None and c.alive()}

    def check_alive(self) -> None:
        """Raise BenchError if a process that should run has died."""
        for child in (self.web, self.relay, self.workers):
            if child is not None and not child.alive():
                raise BenchError(f"{child.name} exited with code {child.proc.returncode}; see {child.log_path}")

    def _stop_pipeline(self) -> None:
        for child in (self.workers, self.relay):
            if child is not None:
                child.stop()
        self.relay = self.workers = None

    def stop(self) -> None:
        """Stop every process this stack started."""
        self._stop_pipeline()
        if self.web is not None:
            self.web.stop()
            self.web = None

    def _wait(self, child: Child, ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
        """Wait until ``ready()`` is true; raise BenchError if the child dies or time runs out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not child.alive():
                raise BenchError(f"{what} exited with code {child.proc.returncode}; see {child.log_path}")
            if time.monotonic() > deadline:
                raise BenchError(f"{what} not ready after {timeout:.0f}s; see {child.log_path}")
            time.sleep(0.1)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False
