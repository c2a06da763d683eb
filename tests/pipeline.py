"""Test helpers that run the real processes: relay, workers and the web server.

They talk to the same PostgreSQL test database and NATS server as the test
itself; every process started here is stopped by the fixture that started it,
even when the test fails (and the kernel stops it if pytest itself is killed).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from django.conf import settings
from django.db import connection

from devstack import natsauth
from devstack.embedded import free_port, live_command, web_command
from devstack.process import Process, http_ok

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = str(BASE_DIR / "manage.py")


def wait_for(predicate: Callable[[], Any], timeout: float = 30, message: str = "condition", interval: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def database_url_for_tests() -> str:
    """Return a URL of the database the tests run on (pytest-django's test database)."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"


@dataclass
class Pipeline:
    """Relay, workers and web server of one test, against the test database."""

    tmp: Path
    nats_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[Process] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url_for_tests(), NATS_URL=self.nats_url, DB_POOL_MAX_SIZE="8", LOG_LEVEL="INFO"
        )
        # A killed worker's unacked messages come back after 3 s, not 30, so the tests stay short.
        env["EVENT_ACK_WAIT_SECONDS"] = "3"
        # The test itself records events with no publisher of its own: the relay takes every row at
        # once (a row that a worker's publisher publishes too is kept once by JetStream).
        env["RELAY_SWEEP_AGE"] = "0"
        # Every process of the test writes its metrics here; the web's /metrics adds them up.
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)
        env.update(self.extra_env)
        env.update(overrides)
        return env

    @property
    def metrics_dir(self) -> Path:
        path = self.tmp / "metrics"
        path.mkdir(exist_ok=True)
        return path

    def _start(self, name: str, command: list[str], **env: str) -> Process:
        log = self.tmp / f"{name}-{len(self.procs)}.log"
        # Each process as its own NATS user, when the servers have users and are the suite's own.
        own = natsauth.service_env(self.env(), name) if self.nats_url == settings.NATS_URL else {}
        proc = Process(name, command, self.env(**{**own, **env}), log, death_signal=signal.SIGKILL).start()
        self.procs.append(proc)
        return proc

    def relay(self, **env: str) -> Process:
        return self._start("relay", [sys.executable, MANAGE, "run_relay"], **env)

    def workers(self, *args: str, **env: str) -> Process:
        return self._start("workers", [sys.executable, MANAGE, "run_workers", *args], **env)

    def web(self, workers: int = 2, *extra: str, **env: str) -> str:
        """Start the WSGI web server as the devstack does; return its base URL once ready."""
        port = free_port()
        self._start("web", web_command(port, workers, *extra), **env)
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_ok(f"{base}/healthz"), 30, "the web server")
        return base

    def live(self, workers: int = 1, *extra: str, port: int = 0, **env: str) -> str:
        """Start an ASGI web process (websockets and pages) as the devstack does; return its base URL once ready."""
        port = port or free_port()
        proc = self._start("live", live_command(port, workers, *extra), **env)
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if not proc.alive():
                raise AssertionError(f"the ASGI web server exited:\n{proc.tail()}")
            return http_ok(f"{base}/healthz")

        wait_for(up, 30, "the ASGI web server")
        return base

    def start(self) -> Pipeline:
        """Start one relay and one worker process."""
        self.relay()
        self.workers()
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log_path})\n{p.tail()}" for p in self.procs)


def run_async(coro):
    """Run a coroutine from a synchronous test (in a thread of its own if this thread runs a loop: Playwright)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


STORE_NOT_CREATED = 10049  # JSStreamStoreFailedErr


async def reset_streams(nats_url: str) -> None:
    """Delete the streams (and with them their consumers and dedup state) and create them again, empty.

    As ``setup_streams`` would: the relay's and the workers' NATS users may not.
    """
    from events import bus

    nc = await nats.connect(nats_url.split(",")[0])
    try:
        js = nc.jetstream()
        for name in settings.EVENT_STREAMS:
            try:
                await js.delete_stream(name)
            except nats.js.errors.NotFoundError:
                pass
        # Right after a delete, nats-server may still be removing the stream's files and answer
        # "error creating store for stream" (err_code 10049): try again until it can, with a deadline.
        deadline = time.monotonic() + 30
        while True:
            try:
                await bus.ensure_streams(js)
                return
            except nats.js.errors.ServerError as exc:
                if exc.err_code != STORE_NOT_CREATED or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def stream_messages(nats_url: str, stream: str) -> int:
    """Return how many messages a stream holds."""
    nc = await nats.connect(nats_url.split(",")[0])
    try:
        return (await nc.jetstream().stream_info(stream)).state.messages
    finally:
        await nc.close()


async def publish_raw(nats_url: str, subject: str, payload: bytes, msg_id: str | None = None) -> None:
    """Publish bytes to JetStream as any producer could."""
    from events import bus

    nc = await nats.connect(nats_url.split(",")[0])
    try:
        js = nc.jetstream()
        await bus.ensure_streams(js)
        await js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id} if msg_id else None)
    finally:
        await nc.close()


async def pending(nats_url: str, stream: str, durable: str) -> tuple[int, int]:
    """Return (num_pending, num_ack_pending) of a durable consumer."""
    from events import bus

    nc = await nats.connect(nats_url.split(",")[0])
    try:
        return await bus.consumer_pending(nc.jetstream(), stream, durable)
    finally:
        await nc.close()
