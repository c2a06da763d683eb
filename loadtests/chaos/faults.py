"""The fault catalogue: each fault as production meets it, injected into the running devstack by PID.

A fault's ``inject`` breaks something once (it may hold it broken for a while,
as a paused worker); its ``check``, when it has one, adds what only that
fault can show (the poison message was dead-lettered, the unpublishable row
was marked failed) and puts things back (the failed row is removed, as an
operator would after reading it). The supervisor brings back what was killed:
nothing here restarts anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import nats
import psycopg

from .history import Verdict, wait_until
from .stack import ACK_WAIT, Stack

TOO_BIG = 1024 * 1024 + 1  # bytes: over nats-server's default max_payload (1 MB)
DUPLICATES = 100  # events published again, each with a new message id
PAUSE = ACK_WAIT + 2  # seconds a paused worker stays stopped: past its AckWait, so its late acks are tested


@dataclass
class Context:
    """What a fault needs: the stack, how long the phase lasts, and notes for the report."""

    stack: Stack
    seconds: float
    notes: list[str] = field(default_factory=list)
    row: int | None = None  # the unpublishable row's seq
    poison: bytes = b""  # the poison message's bytes


@dataclass(frozen=True)
class Fault:
    """One fault of the catalogue."""

    name: str
    title: str
    inject: Callable[[Context], None]
    check: Callable[[Context, Verdict], None] | None = None
    nats_nodes: int = 1  # the stack it needs: one NATS node, or a cluster of 3


def _kill(ctx: Context, what: str, *words: str, comm: str = "") -> None:
    pid = ctx.stack.pid_of(*words, comm=comm)
    os.kill(pid, signal.SIGKILL)
    ctx.notes.append(f"{what} pid {pid} killed (SIGKILL)")


def kill_worker(ctx: Context) -> None:
    """Kill the consumer worker process mid-batch."""
    _kill(ctx, "worker", "run_workers")


def kill_relay(ctx: Context) -> None:
    """Kill the outbox relay."""
    _kill(ctx, "relay", "run_relay")


def kill_nats(ctx: Context) -> None:
    """Kill the only nats-server."""
    _kill(ctx, "nats-server", comm="nats-server")


async def _stream_leader(url: str, stream: str) -> str:
    nc = await nats.connect(servers=url.split(","))
    try:
        return (await nc.jetstream().stream_info(stream)).cluster.leader
    finally:
        await nc.close()


def kill_nats_leader(ctx: Context) -> None:
    """Kill the node of the 3-node cluster that leads the SHOP stream (R3 streams elect another)."""
    leader = asyncio.run(_stream_leader(ctx.stack.nats_url, "SHOP"))
    _kill(ctx, f"SHOP stream leader {leader}", f"-n {leader} ", comm="nats-server")


def restart_postgres(ctx: Context) -> None:
    """Stop PostgreSQL with a fast shutdown (SIGINT), as a restart does; the supervisor starts it again."""
    pid = ctx.stack.pid_of(comm="postgres")
    os.kill(pid, signal.SIGINT)
    ctx.notes.append(f"postgres pid {pid} stopped (fast shutdown)")


def terminate_backends(ctx: Context) -> None:
    """Terminate every other client connection to the database (pg_terminate_backend)."""
    with psycopg.connect(ctx.stack.database_url, autocommit=True) as conn:
        ended = conn.execute(
            """
            SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
            """
        ).fetchone()[0]
    ctx.notes.append(f"{ended} backends terminated")


def pause_workers(ctx: Context) -> None:
    """Stop the worker process (SIGSTOP) past its AckWait, then let it go on (SIGCONT)."""
    pid = ctx.stack.pid_of("run_workers")
    pause = min(PAUSE, ctx.seconds / 2)
    os.killpg(pid, signal.SIGSTOP)  # its own process group (the supervisor starts each child in a session)
    try:
        time.sleep(pause)
    finally:
        os.killpg(pid, signal.SIGCONT)
    ctx.notes.append(f"worker pid {pid} stopped {pause:.0f} s (AckWait {ACK_WAIT} s)")


async def _publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    nc = await nats.connect(servers=url.split(","))
    try:
        js = nc.jetstream()
        for subject, payload in messages:
            await js.publish(subject, payload, headers={"Nats-Msg-Id": f"chaos-{uuid.uuid4()}"})
    finally:
        await nc.close()


def duplicate_events(ctx: Context) -> None:
    """Publish the latest events again with new message ids, so JetStream keeps both copies."""
    with psycopg.connect(ctx.stack.database_url) as conn:
        rows = conn.execute(
            "SELECT subject, payload FROM events_storedevent e"
            " WHERE NOT EXISTS (SELECT 1 FROM events_outbox o WHERE o.seq = e.seq) ORDER BY seq DESC LIMIT %s",
            [DUPLICATES],
        ).fetchall()
    asyncio.run(_publish(ctx.stack.nats_url, [(subject, bytes(payload)) for subject, payload in rows]))
    ctx.notes.append(f"{len(rows)} events published again with new message ids")


def _poison() -> bytes:
    return f"{{not json {uuid.uuid4()}".encode()


def poison_message(ctx: Context) -> None:
    """Publish bytes no consumer can decode to a consumed subject."""
    ctx.poison = _poison()
    asyncio.run(_publish(ctx.stack.nats_url, [("shop.order.placed", ctx.poison)]))
    ctx.notes.append("one undecodable message published to shop.order.placed")


def poison_dead_lettered(ctx: Context, verdict: Verdict) -> None:
    """The poison message is parked in the dead letters, once."""
    with psycopg.connect(ctx.stack.database_url) as conn:

        def letters() -> int:
            return conn.execute("SELECT count(*) FROM events_deadletter WHERE data = %s", [ctx.poison]).fetchone()[0]

        found = wait_until(letters, 30)
    if found != 1:
        verdict.problems.append(f"the poison message was dead-lettered {found} times, not once")


def unpublishable_row(ctx: Context) -> None:
    """Append an outbox row over the server's max_payload, as a producer with a bug would."""
    payload = json.dumps({"type": "OrderPlaced", "data": {"note": "x" * TOO_BIG}}).encode()
    with psycopg.connect(ctx.stack.database_url) as conn:
        ctx.row = conn.execute(
            """
            INSERT INTO events_storedevent (event_id, type, version, subject, aggregate_id, correlation_id,
                occurred_at, payload, traceparent)
            VALUES (%s, 'OrderPlaced', 1, 'shop.order.placed', 'chaos', 'chaos', now(), %s, '')
            RETURNING seq
            """,
            [uuid.uuid4(), payload],
        ).fetchone()[0]
    ctx.notes.append(f"outbox row {ctx.row} of {len(payload)} bytes appended")


def unpublishable_marked_failed(ctx: Context, verdict: Verdict) -> None:
    """The relay marked the row failed (and later rows flowed: every order ended); then the row is removed."""
    with psycopg.connect(ctx.stack.database_url, autocommit=True) as conn:

        def failed() -> bool:
            row = conn.execute(
                "SELECT attempts, error FROM events_outbox WHERE seq = %s",
                [ctx.row],
            ).fetchone()
            return row is not None and row[0] >= 1 and bool(row[1])

        if not wait_until(failed, 30):
            verdict.problems.append(f"outbox row {ctx.row} was not marked failed")
        conn.execute("DELETE FROM events_outbox WHERE seq = %s", [ctx.row])
        conn.execute("DELETE FROM events_storedevent WHERE seq = %s", [ctx.row])


FAULTS = {
    f.name: f
    for f in [
        Fault("worker", "worker kill -9", kill_worker),
        Fault("relay", "relay kill -9", kill_relay),
        Fault("nats", "nats-server kill -9", kill_nats),
        Fault("nats-node", "one node of 3 (the stream leader) kill -9", kill_nats_leader, nats_nodes=3),
        Fault("postgres", "PostgreSQL restart", restart_postgres),
        Fault("backends", "backends terminated", terminate_backends),
        Fault("pause", "worker paused past AckWait", pause_workers),
        Fault("duplicates", f"{DUPLICATES} events delivered twice", duplicate_events),
        Fault("poison", "a poison message", poison_message, poison_dead_lettered),
        Fault("unpublishable", "an outbox row over max_payload", unpublishable_row, unpublishable_marked_failed),
    ]
}
