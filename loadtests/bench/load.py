"""Cheap load generators: a minimal HTTP/1.1 keep-alive client and a thread driver.

The generator shares a 2-core machine with the web server, the relay, the
workers, PostgreSQL and NATS, so every request it sends must cost it little:
no HTTP library, one persistent connection per simulated client, the request
bytes built once, the answer read just far enough to count its status.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

REQUEST_TIMEOUT = 30.0  # seconds; a request slower than this counts as an error


@dataclass
class LoadResult:
    """What one load phase did: requests sent, accepted, failed, and how long it took."""

    sent: int = 0
    accepted: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, per accepted request, client-side
    first_error: str = ""  # what went wrong the first time, to say in the report
    bodies: list[bytes] = field(default_factory=list)  # the accepted answers' bodies, when asked to keep them

    def fail(self, what: str) -> None:
        """Count an error, remembering the first one."""
        self.errors += 1
        self.first_error = self.first_error or what

    def add(self, other: LoadResult) -> None:
        """Merge the counts of another (per-client) result into this one."""
        self.sent += other.sent
        self.accepted += other.accepted
        self.errors += other.errors
        self.latencies += other.latencies
        self.bodies += other.bodies
        self.first_error = self.first_error or other.first_error


def post_request(host: str, port: int, path: str, body: bytes) -> bytes:
    """Return the bytes of a keep-alive HTTP/1.1 POST of a JSON body."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def get_request(host: str, port: int, path: str) -> bytes:
    """Return the bytes of a keep-alive HTTP/1.1 GET."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


class Connection:
    """One persistent HTTP/1.1 connection; reopened after an error or a ``Connection: close``."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.body = b""  # of the last answer
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> int:
        """Send one request and return the status of its answer, the body read and dropped."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(request)
        return await self._response()

    async def _response(self) -> int:
        line = await self.reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        status = int(line.split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while (header := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        self.body = await (self._read_chunks() if chunked else self.reader.readexactly(length))
        if close:
            self.close()
        return status

    async def _read_chunks(self) -> bytes:
        chunks = []
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            chunks.append((await self.reader.readexactly(size + 2))[:-2])
        await self.reader.readline()  # the blank line after the last chunk
        return b"".join(chunks)

    def close(self) -> None:
        """Drop the connection; the next request opens a new one."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _one(
    conn: Connection, request: bytes, result: LoadResult, started: float, ok: int = 202, keep: bool = False
) -> None:
    """Send one request; count an ``ok`` status as accepted (``keep``: its body too), anything else as an error."""
    result.sent += 1
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            status = await conn.send(request)
    except (OSError, EOFError, ValueError, IndexError, TimeoutError) as exc:
        conn.close()
        result.fail(repr(exc))
        return
    if status == ok:
        result.accepted += 1
        result.latencies.append(time.perf_counter() - started)
        if keep:
            result.bodies.append(conn.body)
    else:
        result.fail(f"HTTP {status}")


async def closed_loop(
    host: str, port: int, requests: Callable[[], bytes], n: int, concurrency: int, ok: int = 202, keep: bool = False
) -> LoadResult:
    """Send ``n`` requests from ``concurrency`` clients, each sending its next one as soon as answered.

    ``keep``: keep the accepted answers' bodies (the comparison reads the order ids in them).
    """
    tickets = iter(range(n))  # shared by the clients: each takes the next ticket until none is left
    result = LoadResult()

    async def client() -> None:
        conn = Connection(host, port)
        for _ in tickets:
            await _one(conn, requests(), result, time.perf_counter(), ok, keep)
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


async def open_loop(
    host: str, port: int, requests: Callable[[], bytes], n: int, rate: float, concurrency: int
) -> LoadResult:
    """Send ``n`` requests at a fixed ``rate`` per second on up to ``concurrency`` connections.

    Requests leave on schedule whatever the answers' pace (open loop). Latency
    counts from when a request was due, so a send delayed by busy connections
    is not hidden (no coordinated omission).
    """
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(concurrency):
        idle.put_nowait(Connection(host, port))
    result = LoadResult()

    async def fire(conn: Connection, due: float) -> None:
        try:
            await _one(conn, requests(), result, due)
        finally:
            idle.put_nowait(conn)

    started = time.perf_counter()
    tasks = []
    for i in range(n):
        due = started + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(fire(await idle.get(), due)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - started
    while not idle.empty():
        idle.get_nowait().close()
    return result


def threads_loop(place: Callable[[], None], n: int, concurrency: int) -> LoadResult:
    """Call ``place`` ``n`` times from ``concurrency`` threads; an exception counts as an error."""
    lock, stop = threading.Lock(), threading.Event()
    tickets = iter(range(n))

    def take() -> bool:
        with lock:
            return not stop.is_set() and next(tickets, None) is not None

    def worker() -> LoadResult:
        mine = LoadResult()
        while take():
            mine.sent += 1
            started = time.perf_counter()
            try:
                place()
            except Exception as exc:
                mine.fail(repr(exc))
                continue
            mine.accepted += 1
            mine.latencies.append(time.perf_counter() - started)
        return mine

    result = LoadResult()
    pool = ThreadPoolExecutor(concurrency, "bench")
    started = time.perf_counter()
    try:
        for part in [pool.submit(worker) for _ in range(concurrency)]:
            result.add(part.result())
    finally:
        stop.set()  # after Ctrl-C, each thread ends with its current call instead of taking the remaining tickets
        pool.shutdown(wait=True)
    result.seconds = time.perf_counter() - started
    return result
