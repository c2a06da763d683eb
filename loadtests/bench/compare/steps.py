"""The two steps run against every system: closed-loop saturation and a fixed-rate open loop.

Both read their outcome through the HTTP contract alone: each accepted
order's id from its 202 answer, then, after the load, ``GET /api/orders/{id}``
for its status, ``created_at`` and the ``at`` of its final timeline entry
(``OrderConfirmed`` / ``OrderRejected`` here, ``confirmed`` / ``rejected`` in
the peers: the type is compared without its ``Order`` prefix, case aside).
Every time is the server's wall clock but the open loop's scheduled send,
the bench's: both are the same machine's.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ...stats import percentile
from ..load import REQUEST_TIMEOUT, Connection, LoadResult, closed_loop
from .http import call, request

FINAL_TYPES = {"confirmed", "rejected"}
READERS = 4  # connections that read the orders back after the load
WATCH_EVERY = 0.25  # seconds between looks at the last order placed, while the rest is decided


@dataclass
class Step:
    """What one step measured on one system (None where it does not apply or nothing was final)."""

    kind: str  # "closed" or "open"
    orders: int  # sent
    accepted: int
    errors: int
    confirmed: int
    rejected: int
    not_final: int  # accepted but not final when the reading gave up
    load_seconds: float
    rate: float | None = None  # open loop: orders/s offered
    confirmed_per_s: float | None = None  # confirmed ÷ (first order placed → last decided)
    p50_ms: float | None = None  # closed: placed → final; open: scheduled send → final
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    answer_p50_ms: float | None = None  # client-side: request sent (or due) → 202 read
    answer_p99_ms: float | None = None
    first_error: str = ""


@dataclass(frozen=True)
class Final:
    """What ``GET /api/orders/{id}`` says of one order: its status, when placed, when decided (epoch seconds)."""

    status: str
    created_at: float
    final_at: float | None


def order_requests(host: str, port: int, email: str, skus: list[str]) -> Callable[[], bytes]:
    """Return a function giving the bytes of an order of 1 or 2 distinct random products, quantity 1 each."""
    post = lambda *chosen: request(  # noqa: E731
        "POST", host, port, "/api/orders", {"email": email, "lines": [{"sku": s, "quantity": 1} for s in chosen]}
    )
    singles = [post(sku) for sku in skus]
    pairs = [post(a, b) for a, b in itertools.combinations(skus, 2)] or singles
    return lambda: random.choice(singles if random.random() < 0.5 else pairs)


def _epoch(text: str) -> float:
    at = datetime.fromisoformat(text)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def parse_order(body: dict) -> Final:
    """Return the status, placing time and final time (None while pending) of an order's JSON."""
    finals = [e["at"] for e in body.get("timeline", []) if e["type"].lower().removeprefix("order") in FINAL_TYPES]
    at = max((_epoch(a) for a in finals), default=None)
    return Final(status=body["status"], created_at=_epoch(body["created_at"]), final_at=at)


async def _read(host: str, port: int, ids: list[str]) -> dict[str, Final]:
    """Read each order once, on a few connections; leave out those that did not answer 200."""
    found: dict[str, Final] = {}
    todo = iter(ids)

    async def reader() -> None:
        conn = Connection(host, port)
        try:
            for order_id in todo:
                try:
                    status, body = await call(conn, "GET", f"/api/orders/{order_id}")
                except (OSError, EOFError, ValueError, IndexError, TimeoutError):
                    conn.close()
                    continue
                if status == 200 and isinstance(body, dict):
                    found[order_id] = parse_order(body)
        finally:
            conn.close()

    await asyncio.gather(*(reader() for _ in range(READERS)))
    return found


async def read_finals(host: str, port: int, ids: list[str], timeout: float) -> dict[str, Final]:
    """Wait until every order is final (at most ``timeout`` s) and return what each one's JSON says.

    While the system still decides them, only the last order placed is looked
    at, every quarter of a second, so the reading takes little of the CPU the
    deciding needs; then all are read, and those still pending again until the deadline.
    """
    deadline = time.monotonic() + timeout
    while ids and time.monotonic() < deadline:
        last = await _read(host, port, ids[-1:])
        if last and all(f.final_at is not None for f in last.values()):
            break
        await asyncio.sleep(WATCH_EVERY)
    found: dict[str, Final] = {}
    todo = list(ids)
    while todo:
        found.update(await _read(host, port, todo))
        todo = [i for i in todo if i not in found or found[i].final_at is None]
        if not todo or time.monotonic() > deadline:
            break
        await asyncio.sleep(WATCH_EVERY)
    return found


def _ms(values: list[float], q: float) -> float | None:
    return round(percentile(values, q) * 1000, 1) if values else None


def _ids(bodies: list[bytes]) -> list[str]:
    return [json.loads(b)["id"] for b in bodies]


def _figures(kind: str, n: int, load: LoadResult, finals: dict[str, Final], latencies: list[float]) -> Step:
    """Return a step's figures from its load, what its orders became, and each final order's latency (s)."""
    decided = [f for f in finals.values() if f.final_at is not None]
    confirmed = [f for f in decided if f.status == "confirmed"]
    span = None
    if confirmed:
        span = max(max(f.final_at for f in confirmed) - min(f.created_at for f in finals.values()), 1e-3)
    answers = sorted(load.latencies)
    return Step(
        kind=kind,
        orders=n,
        accepted=load.accepted,
        errors=load.errors,
        confirmed=len(confirmed),
        rejected=sum(f.status == "rejected" for f in decided),
        not_final=load.accepted - len(decided),
        load_seconds=round(load.seconds, 3),
        confirmed_per_s=round(len(confirmed) / span, 1) if span else None,
        p50_ms=_ms(latencies, 0.50),
        p90_ms=_ms(latencies, 0.90),
        p99_ms=_ms(latencies, 0.99),
        max_ms=round(max(latencies) * 1000, 1) if latencies else None,
        answer_p50_ms=_ms(answers, 0.50),
        answer_p99_ms=_ms(answers, 0.99),
        first_error=load.first_error,
    )


def deadline(n: int) -> float:
    """Return the seconds ``n`` orders may take to become final once the load ends (as the lab allows)."""
    return max(120.0, n / 10)


async def closed_step(
    address: tuple[str, int], skus: list[str], email: str, n: int, concurrency: int, timeout: float | None = None
) -> Step:
    """Place ``n`` orders from ``concurrency`` clients (each sends its next when answered); return the figures.

    Confirmed orders/s counts from the first order placed to the last one
    decided, so a system that answers fast and decides later is not flattered.
    """
    host, port = address
    load = await closed_loop(host, port, order_requests(host, port, email, skus), n, concurrency, keep=True)
    finals = await read_finals(host, port, _ids(load.bodies), timeout or deadline(n))
    lat = sorted(f.final_at - f.created_at for f in finals.values() if f.final_at is not None)
    return _figures("closed", n, load, finals, lat)


async def fixed_rate(
    host: str, port: int, requests: Callable[[], bytes], n: int, rate: float
) -> tuple[LoadResult, list[tuple[float, bytes]]]:
    """Send ``n`` requests at ``rate`` per second on schedule, whatever the answers' pace (open loop).

    A request never waits for a connection: it takes an idle one or opens
    another. Return the load and, per accepted request, its scheduled send
    (epoch seconds) and its answer's body.
    """
    idle: list[Connection] = []
    result, placed = LoadResult(), []

    async def fire(due: float, due_wall: float) -> None:
        conn = idle.pop() if idle else Connection(host, port)
        result.sent += 1
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                status = await conn.send(requests())
        except (OSError, EOFError, ValueError, IndexError, TimeoutError) as exc:
            conn.close()
            result.fail(repr(exc))
            return
        finally:
            idle.append(conn)
        if status != 202:
            result.fail(f"HTTP {status}")
            return
        result.accepted += 1
        result.latencies.append(time.perf_counter() - due)
        placed.append((due_wall, conn.body))

    started, started_wall, tasks = time.perf_counter(), time.time(), []
    for i in range(n):
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(fire(due, started_wall + i / rate)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - started
    for conn in idle:
        conn.close()
    return result, placed


async def open_step(
    address: tuple[str, int], skus: list[str], email: str, rate: float, seconds: float, timeout: float | None = None
) -> Step:
    """Offer ``rate`` orders/s for ``seconds`` on a fixed schedule; return the figures.

    Latency is from each order's scheduled send to the ``at`` of its final
    timeline entry: a send late because the bench was busy is not hidden.
    """
    host, port = address
    n = max(1, round(rate * seconds))
    load, placed = await fixed_rate(host, port, order_requests(host, port, email, skus), n, rate)
    due = {json.loads(body)["id"]: at for at, body in placed}
    finals = await read_finals(host, port, list(due), timeout or deadline(n))
    lat = sorted(f.final_at - due[i] for i, f in finals.items() if f.final_at is not None)
    step = _figures("open", n, load, finals, lat)
    step.rate = rate
    return step
