"""How fast a stock change reaches a browser: event → websocket frame, through several web processes.

Run it with its own embedded servers (it migrates and seeds what it needs)::

    python -m devstack.embedded -- .venv/bin/python -m loadtests.live_latency [--processes 3] [--changes 300]

It starts a relay, a worker and ``--processes`` ASGI web processes (one port
each, so every process is surely measured), opens ``--sockets`` websockets on
each, subscribes them to a few SKUs, then restocks those SKUs ``--changes``
times at ``--rate`` per second. For every ``StockLevelChanged`` it takes three
times on this machine's clock: when inventory recorded it (``occurred_at``),
when this script's own core-NATS subscription received it (≈ when the relay
published it), and when each websocket received the frame of that version.
It prints p50/p99/max of publish → frame (the web tier's share: NATS fan-out,
near cache, channel layer, websocket) and of recorded → frame (the whole path,
with the outbox, the relay and the shop's batching).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from devstack.process import Process, http_ok
from loadtests.stats import percentile

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = str(BASE_DIR / "manage.py")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.live_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=3, help="ASGI web processes (default 3)")
    parser.add_argument("--sockets", type=int, default=4, help="websockets per process (default 4)")
    parser.add_argument("--skus", type=int, default=4, help="SKUs changed (default 4)")
    parser.add_argument("--changes", type=int, default=300, help="stock changes (default 300)")
    parser.add_argument("--rate", type=float, default=30, help="changes per second (default 30)")
    args = parser.parse_args(argv)
    if min(args.processes, args.sockets, args.skus, args.changes) < 1 or args.rate <= 0:
        parser.error("every count must be at least 1 and --rate positive")
    return args


def frame_level(raw: str | bytes) -> tuple[str, int] | None:
    """Return the (sku, version) a websocket frame carries, or None for an error frame."""
    frame = json.loads(raw)
    if "error" in frame:
        return None
    return frame["sku"], frame["version"]


class Processes:
    """The children this script starts, each in its own session, always stopped."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.children: list[Process] = []

    def start(self, name: str, command: list[str]) -> None:
        self.children.append(Process(name, command, log_path=self.log_dir / f"{name}.log").start())

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


def _subscribed(log: Path) -> bool:
    """Return whether a web process says its live feed is subscribed."""
    return "live feed subscribed" in log.read_text(errors="replace")


def prepare(skus: list[str]) -> None:
    """Migrate, create the streams, and make sure the measured SKUs exist."""
    from django.core.management import call_command

    from inventory.services import stock_receive
    from shop.models import Category, Product

    call_command("migrate", verbosity=0)
    call_command("setup_streams", verbosity=0)
    category, _ = Category.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    for sku in skus:
        _, created = Product.objects.get_or_create(sku=sku, defaults={"name": sku, "price": 1, "category": category})
        if created:
            stock_receive(sku=sku, quantity=1, create=True)


async def measure(args: argparse.Namespace, ports: list[int], skus: list[str]) -> dict[tuple[str, int], dict]:
    """Open the sockets, make the changes, and return the times seen per (sku, version)."""
    import nats
    from websockets.asyncio.client import connect

    from events.base import decode_envelope
    from inventory.services import stock_receive

    seen: dict[tuple[str, int], dict] = {}

    def record(sku: str, version: int) -> dict:
        return seen.setdefault((sku, version), {"frames": []})

    async def on_nats(msg) -> None:
        now = time.time()
        envelope, data = decode_envelope(msg.data)
        entry = record(data["sku"], data["version"])
        entry["published"], entry["occurred"] = now, envelope.occurred_at.timestamp()

    nc = await nats.connect(os.environ["NATS_URL"].split(",")[0])
    await nc.subscribe("inventory.stock.>", cb=on_nats)
    sockets = []
    for port in ports:
        for _ in range(args.sockets):
            sock = await connect(f"ws://127.0.0.1:{port}/ws/stock/", origin=f"http://127.0.0.1:{port}")
            await sock.send(json.dumps({"subscribe": skus}))
            for _ in skus:  # the current levels first
                await sock.recv()
            sockets.append(sock)

    async def read(sock) -> None:
        async for raw in sock:
            now, level = time.time(), frame_level(raw)
            if level is None:
                print(f"error frame skipped: {raw!r:.200}", file=sys.stderr)
                continue
            record(*level)["frames"].append(now)

    readers = [asyncio.create_task(read(sock)) for sock in sockets]
    start = time.monotonic()
    for i in range(args.changes):
        await asyncio.to_thread(stock_receive, sku=skus[i % len(skus)], quantity=1)
        # Pace the changes (this is a load generator's clock, not a wait for a result).
        await asyncio.sleep(max(0.0, start + (i + 1) / args.rate - time.monotonic()))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(len(e["frames"]) for e in seen.values()) < args.changes * len(sockets):
        await asyncio.sleep(0.1)
    for task in readers:
        task.cancel()
    for sock in sockets:
        await sock.close()
    await nc.close()
    return seen


def report(seen: dict[tuple[str, int], dict], expected_frames: int) -> str:
    """Return the table of latencies, in milliseconds."""
    published = [1000 * (t - e["published"]) for e in seen.values() if "published" in e for t in e["frames"]]
    recorded = [1000 * (t - e["occurred"]) for e in seen.values() if "occurred" in e for t in e["frames"]]
    frames = sum(len(e["frames"]) for e in seen.values())
    lines = [
        f"frames received: {frames} of {expected_frames}",
        "",
        "| path | p50 ms | p99 ms | max ms | mean ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in [
        ("relay publish → websocket frame", published),
        ("event recorded → websocket frame", recorded),
    ]:
        if values:
            lines.append(
                f"| {name} | {percentile(values, 0.5):.1f} | {percentile(values, 0.99):.1f} | "
                f"{max(values):.1f} | {statistics.fmean(values):.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.environ.get("DATABASE_URL") or not os.environ.get("NATS_URL"):
        print(
            "error: run it as `python -m devstack.embedded -- .venv/bin/python -m loadtests.live_latency`, "
            "or set DATABASE_URL and NATS_URL",
            file=sys.stderr,
        )
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from devstack.embedded import free_port, live_command

    skus = [f"LAT-{i + 1}" for i in range(args.skus)]
    prepare(skus)
    (BASE_DIR / ".data").mkdir(exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="live-latency-", dir=BASE_DIR / ".data"))
    procs = Processes(log_dir)
    ports = [free_port() for _ in range(args.processes)]
    try:
        procs.start("relay", [sys.executable, MANAGE, "run_relay"])
        procs.start("workers", [sys.executable, MANAGE, "run_workers"])
        for i, port in enumerate(ports):
            procs.start(f"live-{i + 1}", live_command(port, 1))
        deadline = time.monotonic() + 60
        while not all(
            http_ok(f"http://127.0.0.1:{p}/healthz") and _subscribed(log_dir / f"live-{i + 1}.log")
            for i, p in enumerate(ports)
        ):
            if time.monotonic() > deadline:
                print(f"error: the web processes did not start; see {log_dir}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        started = datetime.now().isoformat(timespec="seconds")
        seen = asyncio.run(measure(args, ports, skus))
    finally:
        procs.stop()
    print(
        f"live latency, {started}: {args.processes} ASGI processes × {args.sockets} sockets, "
        f"{args.changes} changes at {args.rate:g}/s on {args.skus} SKUs (logs: {log_dir})"
    )
    print(report(seen, args.changes * args.processes * args.sockets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
