"""The processes under test, started exactly as the devstack starts them, and always stopped.

Each child runs in its own session (so its whole process group can be
signalled by PID) and is asked by the kernel to stop if the bench dies
(``PR_SET_PDEATHSIG``). Output goes to one log file per start.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devstack import natsauth
from devstack.embedded import free_port, web_command
from devstack.process import Process, ProcessError, http_ok

BASE_DIR = Path(__file__).resolve().parent.parent.parent
MANAGE = str(BASE_DIR / "manage.py")


class BenchError(RuntimeError):
    """The bench cannot go on; the message says what failed and where to look."""


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
    web: Process | None = None
    relay: Process | None = None
    workers: list[Process] = field(default_factory=list)
    web_env: dict[str, str] = field(default_factory=dict)
    pipeline_config: tuple[tuple[tuple[str, str], ...], int] | None = None
    starts: int = field(default=0, repr=False)

    def _child(self, name: str, command: list[str], env: dict[str, str]) -> Process:
        self.starts += 1
        log = self.log_dir / f"{self.starts:02d}-{name}.log"
        # Each process as its own NATS user, as the devstack runs it (when the servers have users).
        own = natsauth.service_env({**self.env, **env}, name.split("-")[0])
        return Process(name, command, {**self.env, **own, **env}, log).start()

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
        self._wait(self.web, lambda: http_ok(f"{base}/healthz"), "the web server")
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
        self.workers = [
            self._child(f"workers-{i + 1}", [sys.executable, MANAGE, "run_workers"], env or {}) for i in range(workers)
        ]
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

    def _wait(
        self, child: Process, ready: Callable[[], bool], what: str, timeout: float = 60, poll: float = 0.1
    ) -> None:
        """Wait until ``ready()`` is true; raise BenchError if the child dies or time runs out."""
        try:
            child.wait_until(ready, what, timeout, poll)
        except ProcessError as exc:
            raise BenchError(str(exc)) from exc


def _logged(child: Process, text: str) -> int:
    """Return how many times ``text`` is in the child's log of this start."""
    return child.log_text().count(text)
