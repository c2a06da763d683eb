"""A steady open-loop order load that retries each order with its key until it is accepted, as a careful client.

Orders leave at a fixed rate whatever the answers (open loop), each with its
own ``Idempotency-Key``. An answer other than 202 (a 503 while a server is
down, a connection refused, a timeout) is retried with the same key and body
until the shop accepts it or ``GIVE_UP`` passes; a 4xx other than 429 is an
answer a good order must never get, kept as unexpected. An order that
needed several tries is sent once more after its 202: the key must name the
same order. Every order's history is recorded: when it was first sent, every
id answered for its key, when it was accepted.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field

import httpx

REQUEST_TIMEOUT = 5.0  # seconds; a slower answer is retried
RETRY_EVERY = 0.25  # seconds between two tries of one order
GIVE_UP = 90.0  # seconds after its first try, an order not accepted yet is given up (and reported)


@dataclass
class Attempt:
    """One order of the load: its key, when it was first sent, the ids answered for it, when it was accepted."""

    key: str
    lines: list[dict]
    first_at: float  # wall-clock seconds
    tries: int = 0
    ids: set[str] = field(default_factory=set)
    accepted_at: float | None = None
    unexpected: str = ""  # a 4xx (not 429) answer to a good order

    @property
    def order_id(self) -> str | None:
        return next(iter(self.ids)) if len(self.ids) == 1 else None


@dataclass
class History:
    """Every order a load phase sent, and what went wrong on the way (refused answers while a server was down)."""

    email: str
    attempts: list[Attempt] = field(default_factory=list)
    refusals: int = 0  # answers retried: 5xx, 429, connection errors, timeouts
    started: float = 0.0
    ended: float = 0.0

    @property
    def accepted(self) -> list[Attempt]:
        return [a for a in self.attempts if a.accepted_at is not None]

    def orders_per_second(self) -> float:
        """Return the accepted orders per second of the phase."""
        seconds = self.ended - self.started
        return len(self.accepted) / seconds if seconds > 0 else 0.0


class OrderLoad:
    """Place orders at ``rate`` per second on ``skus`` from a thread of its own, until ``stop``."""

    def __init__(self, base: str, skus: list[str], phase: str, rate: float, seed: int = 0):
        self.base, self.skus, self.rate = base, skus, rate
        self.history = History(email=f"chaos-{phase}@example.org")
        self.phase = phase
        self.random = random.Random(f"{phase}-{seed}")
        self.stopping = threading.Event()
        self.aborting = threading.Event()  # Ctrl-C or a failure: no more tries either
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), name=f"load-{phase}", daemon=True)

    def start(self) -> OrderLoad:
        self.history.started = time.time()
        self.thread.start()
        return self

    def stop(self, timeout: float = GIVE_UP + 30) -> History:
        """Stop sending new orders; wait for those sent to be accepted (or given up); return the history."""
        self.stopping.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise RuntimeError(f"the load of {self.phase} did not finish in {timeout:.0f}s")
        return self.history

    def abort(self) -> None:
        """Stop at once: no new order, no more tries of those sent (after Ctrl-C or a failure)."""
        self.aborting.set()
        self.stopping.set()
        self.thread.join(REQUEST_TIMEOUT + 5)

    def _lines(self) -> list[dict]:
        skus = self.random.sample(self.skus, k=1 + (self.random.random() < 0.3))
        return [{"sku": sku, "quantity": self.random.randint(1, 2)} for sku in skus]

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=self.base, timeout=REQUEST_TIMEOUT, limits=limits) as client:
            tasks, started = [], time.perf_counter()
            i = 0
            while not self.stopping.is_set():
                due = started + i / self.rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                attempt = Attempt(f"{self.phase}-{i}", self._lines(), time.time())
                self.history.attempts.append(attempt)
                tasks.append(asyncio.create_task(self._place(client, attempt)))
                i += 1
            self.history.ended = time.time()
            await asyncio.gather(*tasks)

    async def _place(self, client: httpx.AsyncClient, attempt: Attempt) -> None:
        body = {"email": self.history.email, "lines": attempt.lines}
        headers = {"Idempotency-Key": attempt.key}
        while time.time() - attempt.first_at < GIVE_UP and not self.aborting.is_set():
            attempt.tries += 1
            try:
                resp = await client.post("/api/orders", json=body, headers=headers)
            except httpx.HTTPError:
                resp = None
            if resp is not None and resp.status_code == 202:
                attempt.ids.add(resp.json()["id"])
                attempt.accepted_at = time.time()
                if attempt.tries > 1:  # tried during the fault: the same key once more must name the same order
                    await self._again(client, body, headers, attempt)
                return
            if resp is not None and 400 <= resp.status_code < 500 and resp.status_code != 429:
                attempt.unexpected = f"{resp.status_code} {resp.text[:200]}"
                return
            self.history.refusals += 1
            await asyncio.sleep(RETRY_EVERY)

    async def _again(self, client: httpx.AsyncClient, body: dict, headers: dict, attempt: Attempt) -> None:
        try:
            resp = await client.post("/api/orders", json=body, headers=headers)
        except httpx.HTTPError:
            return
        if resp.status_code == 202:
            attempt.ids.add(resp.json()["id"])
