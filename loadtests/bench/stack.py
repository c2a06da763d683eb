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
    """The web server, the relay and the workers of one bench run, in one configuration at a time.

    A configuration is an environment (applied to every process, as the
    settings read it) and a number of ``run_workers`` processes; changing it
    restarts only what must restart (the web server when the environment
    changes, the relay and workers whenever it changes).
    """

    log_dir: Path
    env: dict[str, str]
    web_workers: int = 2
    port: int = 0
    web: Child | None = None
    relay: Child | None = None
    workers: list[Child] = field(default_factory=list)
    web_env: dict[str, str] = field(default_factory=dict)
    pipeline_config: tuple[tuple[tuple[str, str], ...], int] | None = None
    starts: int = field(default=0, repr=False)

    def _child(self, name: str, command: list[str], env: dict[str, str]) -> Child:
        self.starts += 1
        log = self.log_dir / f"{self.starts:02d}-{name}.log"
        return Child(name, command, {**self.env, **env}, log).start()

    def start_web(self, env: dict[str, str] | None = None) -> bool:
        """Have granian (WSGI) running with ``env`` as the devstack runs it; return whether it (re)started."""
        env = dict(env or {})
        if self.web is not None and self.web.alive() and env == self.web_env:
            return False
        if self.web is not None:
            self.web.stop()
        self.port = free_port()
        self.web, self.web_env = self._child("web", web_command(self.port, self.web_workers), env), env
        base = f"http://127.0.0.1:{self.port}"
        self._wait(self.web, lambda: _http_ok(f"{base}/healthz"), "the web server")
        return True

    def pipeline(self, running: bool, env: dict[str, str] | None = None, workers: int = 1) -> bool:
        """Have the relay and ``workers`` worker processes running with ``env``, or none; return whether it changed."""
        if not running:
            changed = self.relay is not None or bool(self.workers)
            self._stop_pipeline()
            return changed
        config = (tuple(sorted((env or {}).items())), workers)
        alive = self.relay is not None and self.relay.alive() and all(w.alive() for w in self.workers)
        if alive and self.pipeline_config == config:
            return False
        self._stop_pipeline()
        self.relay = self._child("relay", [sys.executable, MANAGE, "run_relay"], env or {})
        self.workers = [self._child(f"workers-{i + 1}", [sys.executable, MANAGE, "run_workers"], env or {})
                        for i in range(workers)]  # fmt: skip
        self.pipeline_config = config
        return True

    def wait_pipeline_ready(self, consumers: int) -> None:
        """Wait until the relay runs and every worker process consumes from its ``consumers`` durables."""
        self._wait(self.relay, lambda: _logged(self.relay, "relay running") >= 1, "the relay", poll=0.01)
        for worker in self.workers:
            self._wait(worker, lambda w=worker: _logged(w, "consuming ") >= consumers, worker.name, poll=0.01)

    def sessions(self) -> dict[int, str]:
        """Return {session id: group} of the running children (each leads its own session)."""
        children = [(self.web, "web"), (self.relay, "relay"), *((w, "workers") for w in self.workers)]
        return {c.proc.pid: group for c, group in children if c is not None and c.alive()}

    def check_alive(self) -> None:
        """Raise BenchError if a process that should run has died."""
        for child in (self.web, self.relay, *self.workers):
            if child is not None and not child.alive():
                raise BenchError(f"{child.name} exited with code {child.proc.returncode}; see {child.log_path}")

    def _stop_pipeline(self) -> None:
        for child in (*self.workers, self.relay):
            if child is not None:
                child.stop()
        self.relay, self.workers, self.pipeline_config = None, [], None

    def stop(self) -> None:
        """Stop every process this stack started."""
        self._stop_pipeline()
        if self.web is not None:
            self.web.stop()
            self.web = None

    def _wait(self, child: Child, ready: Callable[[], bool], what: str, timeout: float = 60, poll: float = 0.1) -> None:
        """Wait until ``ready()`` is true; raise BenchError if the child dies or time runs out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not child.alive():
                raise BenchError(f"{what} exited with code {child.proc.returncode}; see {child.log_path}")
            if time.monotonic() > deadline:
                raise BenchError(f"{what} not ready after {timeout:.0f}s; see {child.log_path}")
            time.sleep(poll)


def _logged(child: Child, text: str) -> int:
    """Return how many times ``text`` is in the child's log of this start."""
    try:
        return child.log_path.read_text(errors="replace").count(text)
    except OSError:
        return 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False
