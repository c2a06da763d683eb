"""The devstack supervisor: embedded servers plus every process of the system.

It starts PostgreSQL and NATS from their wheels (unless ``DATABASE_URL`` /
``NATS_URL`` are set), migrates, creates the streams, seeds the demo catalog
when the database is empty, then runs the web server, the relay and the
workers as children. A child that dies is restarted with a backoff, and so
is an embedded server, on the same data folder and ports, so its clients
reconnect where they were and ``/readyz`` recovers by itself. The embedded
NATS has a user per service (``devstack/natsauth.py``): each child connects as
its own, ``setup_streams`` and the commands run beside the devstack as admin.
On SIGINT/SIGTERM every child and server is stopped; if the supervisor itself
is killed, the kernel signals each child (``PR_SET_PDEATHSIG``), so nothing is
left behind. While it runs, ``.data/devstack/state.json`` tells other
``manage.py`` commands in this checkout where its servers are.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from . import natsauth, state
from .embedded import EmbeddedError, EmbeddedNats, EmbeddedPostgres, claim, free_port, live_command, web_command
from .process import Process, group_alive, http_ok, parent_death_signal

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = str(BASE_DIR / "manage.py")

# What the stack knows of the apps it runs: the command that seeds the demo, and the pages it points to.
SEED_COMMAND = ("seed_demo", "--if-empty")


def where_to_look(port: int, live_port: int, live: int, flow_log: str = "") -> list[str]:
    """Return the lines that tell where the running demo's pages (and its flow log) are."""
    base = f"http://127.0.0.1:{port}"
    lines = [
        f"ready: storefront {base}/ · API {base}/api/products · staff pages /staff/ (admin/admin) · websockets on "
        f"port {live_port} ({live} ASGI processes) · Ctrl-C stops everything",
        f"ops page {base}/ops/ (staff) · metrics {base}/metrics · readiness {base}/readyz",
    ]
    if flow_log:
        lines.append(f"every request and event is logged to {flow_log}: grep an order id there for its story")
    return lines


class DevstackError(RuntimeError):
    """The devstack cannot start; the message says what to do."""


class _Stop(BaseException):
    """Raised by the signal handler to leave whatever the supervisor was doing."""


def _port_or_free(port: int) -> int:
    """Return ``port`` if nothing listens on it, else any free port."""
    with socket.socket() as sock:
        # As the servers bind (granian sets SO_REUSEADDR): a port left in TIME_WAIT by a killed run is free
        # to them, so it is free here too (https://man7.org/linux/man-pages/man7/socket.7.html).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


@dataclass
class Backoff:
    """When to try again after a process died: 1, 2, 4 … 30 s; the count resets after a minute up."""

    restarts: int = 0
    restart_at: float = 0.0
    started_at: float = 0.0

    def due(self, now: float) -> bool:
        """Return whether the wait scheduled by ``schedule`` is over."""
        return bool(self.restart_at) and now >= self.restart_at

    def schedule(self, now: float) -> float:
        """Start the wait before the next try; return its length in seconds."""
        if now - self.started_at > 60:
            self.restarts = 0
        delay = min(2**self.restarts, 30)
        self.restart_at = now + delay
        return delay

    def started(self, now: float) -> None:
        self.restarts += 1
        self.restart_at = 0.0
        self.started_at = now


@dataclass
class Child:
    """One supervised process, its output echoed with its name, restarted with a backoff when it dies."""

    name: str
    command: list[str]
    env: dict[str, str]
    process: Process | None = None
    backoff: Backoff = field(default_factory=Backoff)

    def start(self) -> None:
        self.process = Process(self.name, self.command, self.env, echo=True).start()
        self.backoff.started_at = time.monotonic()

    def check(self, say) -> None:
        """Restart the process if it died, after its backoff."""
        if self.process is None or self.process.alive():
            return
        now = time.monotonic()
        if not self.backoff.restart_at:
            delay = self.backoff.schedule(now)
            say(f"{self.name} exited with code {self.process.returncode}; restarting in {delay}s")
        elif self.backoff.due(now):
            self.backoff.started(now)
            self.start()
            say(f"{self.name} restarted (pid {self.process.proc.pid})")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the child's process group, then SIGKILL it if it lingers."""
        if self.process is not None:
            self.process.stop(timeout=timeout)


@dataclass
class Server:
    """An embedded PostgreSQL or nats-server, restarted on its data folder and ports when it dies.

    Its clients need no restart: NATS clients reconnect forever (``events.bus.connect``),
    and a pooled PostgreSQL connection that broke is dropped by the pool when handed back.
    """

    name: str
    server: EmbeddedPostgres | EmbeddedNats
    backoff: Backoff = field(default_factory=Backoff)

    def alive(self) -> bool:
        """Return whether the server, or any process of its group, still runs.

        A PostgreSQL killed with SIGKILL leaves its backends behind for a moment; a new
        server must not start beside them on the same data folder.
        """
        proc = self.server.proc
        return proc is not None and (proc.poll() is None or group_alive(proc.pid))

    def check(self, say) -> None:
        """Start the server again if it died, after its backoff; a failed start waits longer."""
        if self.alive():
            return
        now = time.monotonic()
        if not self.backoff.restart_at:
            code = self.server.proc.returncode if self.server.proc is not None else None
            delay = self.backoff.schedule(now)
            say(f"{self.name} exited with code {code}; restarting in {delay}s on the same data and port")
        elif self.backoff.due(now):
            self.backoff.started(now)
            try:
                self.server.start()  # the same data folder, port and monitoring port
            except EmbeddedError as exc:
                self.server.stop()  # one that started but never became ready
                say(f"{self.name} did not start again ({exc}); retrying in {self.backoff.schedule(now)}s")
                return
            say(f"{self.name} restarted (pid {self.server.proc.pid})")

    def stop(self) -> None:
        self.server.stop()


@dataclass
class Devstack:
    """Everything ``make demo`` runs."""

    port: int = 8000
    web: int = 1
    live: int = 2  # ASGI processes (websockets and pages), each with its own near cache and NATS subscription
    live_port: int = 0  # default: port + 1
    workers: int = 1
    nats_cluster: int = 1
    fresh: bool = False
    data_dir: Path = BASE_DIR / ".data" / "devstack"
    children: list[Child] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    stopping: bool = False
    flow_file: str = ""  # where the flow log goes, said in the ready lines

    def __post_init__(self) -> None:
        self.live_port = self.live_port or _port_or_free(self.port + 1)
        claim(self.port, self.live_port)  # the embedded servers' free ports must not be these

    @property
    def state_file(self) -> Path:
        return self.data_dir / "state.json"

    @property
    def flow_log(self) -> Path:
        return self.data_dir / "flow.log"

    def say(self, message: str) -> None:
        print(f"[devstack] {message}", flush=True)

    def run(self) -> int:
        """Start everything, supervise until a signal, stop everything."""
        self._refuse_second_instance()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            env = self._start_servers()
            self._prepare(env)
            self._start_children(env)
            self._wait_ready()
            while not self.stopping:
                for server in self.servers:
                    server.check(self.say)
                for child in self.children:
                    child.check(self.say)
                time.sleep(0.5)
            return 0
        except _Stop:
            return 0
        except (EmbeddedError, DevstackError, subprocess.CalledProcessError) as exc:
            self.say(f"error: {exc}")
            return 1
        finally:
            self.shutdown()

    def _on_signal(self, signum, frame) -> None:
        if not self.stopping:
            self.stopping = True
            raise _Stop

    def _refuse_second_instance(self) -> None:
        pid = state.running(self.state_file).get("pid")
        if pid is None:
            return
        raise SystemExit(f"error: a devstack already runs in this checkout (pid {pid}); stop it first")

    def _start_servers(self) -> dict[str, str]:
        if self.fresh and self.data_dir.exists():
            self.say(f"--fresh: removing {self.data_dir}")
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # Metrics of every child go to one empty folder; the web's /metrics adds them up.
        metrics_dir = self.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        env.setdefault("LOG_FLOW", "1")  # one log line per request and per event: grep an order id
        env.setdefault("DJANGO_HTTPS", "0")  # it serves plain HTTP on 127.0.0.1 (config/settings.py, HTTPS)
        env.setdefault("RATE_LIMITS", "0")  # load from one address measures the shop, not its abuse limits
        # ... in a file, not on the terminal, which keeps the ready line and the errors (a new file each run).
        if "LOG_FLOW_FILE" not in env:
            env["LOG_FLOW_FILE"] = str(self.flow_log)
            self.flow_log.write_text("")
        flow = Path(env["LOG_FLOW_FILE"]).resolve() if env["LOG_FLOW_FILE"] else None
        if flow and env["LOG_FLOW"].lower() not in ("0", "false", "off", "no", ""):
            self.flow_file = str(flow.relative_to(BASE_DIR) if flow.is_relative_to(BASE_DIR) else flow)
        if not env.get("DATABASE_URL"):
            pg = EmbeddedPostgres(self.data_dir / "pg")
            self.servers.append(Server("postgres", pg))
            env["DATABASE_URL"] = pg.start()
            self.say(f"embedded PostgreSQL on {env['DATABASE_URL']} (pid {pg.proc.pid})")
        if not env.get("NATS_URL"):
            url, users = self._start_nats()
            # Commands (setup_streams, and those run beside the devstack) as admin; each child as its service.
            env["NATS_URL"] = natsauth.url_as(url, "admin", users)
            env["NATS_SERVICE_URLS"] = json.dumps(natsauth.service_urls(url, users))
            if self.nats_cluster > 1:
                env["EVENT_STREAM_REPLICAS"] = str(self.nats_cluster)
        state.write(
            self.state_file,
            {
                "pid": os.getpid(),
                "database_url": env["DATABASE_URL"],
                "nats_url": env["NATS_URL"],
                "web_url": f"http://127.0.0.1:{self.port}/",
                "rate_limits": env["RATE_LIMITS"],
                "live_url": f"http://127.0.0.1:{self.live_port}/",
                "live_processes": self.live,
                "nats_monitor_urls": [
                    f"http://127.0.0.1:{s.server.monitor_port}"
                    for s in self.servers
                    if isinstance(s.server, EmbeddedNats)
                ],
            },
        )
        return env

    def _start_nats(self) -> tuple[str, dict[str, str]]:
        """Start the node(s), with the users of this devstack (generated once, kept beside its data)."""
        users = natsauth.passwords(self.data_dir / "nats-users.json")
        count = self.nats_cluster
        cluster_ports = [free_port() for _ in range(count)] if count > 1 else [0]
        nodes = []
        for i in range(count):
            node = EmbeddedNats(
                self.data_dir / f"nats-{i}" if count > 1 else self.data_dir / "nats",
                name=f"nats-{i}",
                cluster_port=cluster_ports[i],
                routes=[p for j, p in enumerate(cluster_ports) if j != i] if count > 1 else [],
                users=users,
            )
            node.start(wait=False)
            nodes.append(node)
            self.servers.append(Server(node.name, node))
        for node in nodes:
            node.wait_ready()
        url = ",".join(node.url for node in nodes)
        monitoring = f"http://127.0.0.1:{nodes[0].monitor_port}"
        self.say(f"embedded NATS on {url}, a user per service (monitoring {monitoring})")
        return url, users

    def _manage(self, env: dict[str, str], *args: str) -> None:
        subprocess.run(
            [sys.executable, MANAGE, *args],
            env=env,
            cwd=BASE_DIR,
            check=True,
            preexec_fn=parent_death_signal(signal.SIGTERM),
        )

    def _prepare(self, env: dict[str, str]) -> None:
        self._manage(env, "migrate", "--noinput", "-v", "0")
        deadline = time.monotonic() + 60
        while True:  # a fresh cluster elects its JetStream leader after a moment
            try:
                self._manage(env, "setup_streams")
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self._manage(env, *SEED_COMMAND)
        self._manage(env, "collectstatic", "--noinput", "-v", "0")

    def _start_children(self, env: dict[str, str]) -> None:
        python = sys.executable
        # granian serves /static/ itself, from what collectstatic gathered.
        static = (
            "--respawn-failed-workers",
            "--static-path-route",
            "/static",
            "--static-path-mount",
            str(settings.STATIC_ROOT),
        )
        # Pages served by the WSGI workers open their websockets on the ASGI processes' port.
        web_env = {**env, **natsauth.service_env(env, "web"), "LIVE_WS_PORT": str(self.live_port)}
        self.children.append(Child("web", web_command(self.port, self.web, *static), web_env))
        if self.live:
            live_env = {**env, **natsauth.service_env(env, "live")}
            self.children.append(Child("live", live_command(self.live_port, self.live, *static), live_env))
        self.children.append(
            Child("relay", [python, MANAGE, "run_relay"], {**env, **natsauth.service_env(env, "relay")})
        )
        workers_env = {**env, **natsauth.service_env(env, "workers")}
        for i in range(self.workers):
            self.children.append(Child(f"workers-{i + 1}", [python, MANAGE, "run_workers"], workers_env))
        for child in self.children:
            child.start()

    def _wait_ready(self) -> None:
        url = f"http://127.0.0.1:{self.port}/readyz"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.stopping:
            if http_ok(url) and self._live_ready():
                for line in where_to_look(self.port, self.live_port, self.live, self.flow_file):
                    self.say(line)
                return
            time.sleep(0.2)
        raise DevstackError(f"the web server did not become ready on port {self.port}; is the port free?")

    def _live_ready(self) -> bool:
        return not self.live or http_ok(f"http://127.0.0.1:{self.live_port}/healthz")

    def shutdown(self) -> None:
        """Stop children (newest first), then the servers; forget the state file."""
        self.stopping = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in reversed(self.children):
            child.stop()
        for server in reversed(self.servers):
            server.stop()
        state.forget(self.state_file)
        self.say("stopped")
