"""More faults, each against real servers: the guarantees of DESIGN §5 when the infrastructure misbehaves.

Which test covers which fault (issue 11, item 8):

- one node of a 3-node NATS cluster killed mid-load, the stream leader:
  ``test_killing_the_stream_leader_of_a_three_node_cluster_loses_and_doubles_nothing``
  (the node stays down: two carry the R3 streams on), and
  ``test_a_devstack_cluster_node_killed_mid_load_is_restarted_and_catches_up`` (the
  devstack's ``--nats-cluster 3``, its NATS users and supervisor);
- PostgreSQL restarted mid-load, nothing restarted around it:
  ``test_a_postgres_restart_mid_load_is_survived_by_the_running_pipeline`` (a
  ``kill -9`` of PostgreSQL under the devstack's supervision is
  tests/test_devstack_recovery.py's);
- a consumer stopped past ``AckWait``, its work redone elsewhere, its late
  ack after: ``test_a_consumer_stopped_past_ack_wait_comes_back_and_doubles_nothing``
  (a worker killed mid-batch, redelivered after a restart, is
  tests/test_faults.py's ``test_killing_a_worker_mid_batch_loses_and_doubles_nothing``);
- a cancel that overtakes its order on the bus:
  ``test_a_cancel_that_overtakes_its_order_ends_cancelled_and_never_holds_stock``
  (the inventory's rule alone, handler against handler, is
  inventory/tests/test_reservations.py's).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import nats
import psycopg
import pytest
from django.db import connection
from django.db.models import Count

from devstack.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from events.models import DeadLetter, ProcessedEvent, StoredEvent, Unpublished
from inventory.models import Reservation, StockItem
from shop.models import Order, TimelineEntry
from tests.pipeline import MANAGE, Pipeline, pending, reset_streams, run_async, wait_for
from tests.test_devstack import cmdline, descendants, running_devstack
from tests.test_devstack_recovery import EMAIL, OrderStream, every_order_ends
from tests.test_faults import all_final, assert_each_effect_once, place_many
from tests.test_publish_after_commit import start_workers

pytestmark = pytest.mark.pipeline


# --- a node of a NATS cluster, the stream leader, killed mid-load


@pytest.fixture
def nats_cluster(tmp_path):
    """Three nats-servers routed into one JetStream cluster, on free ports, without users."""
    ports = [free_port() for _ in range(3)]
    nodes = [
        EmbeddedNats(
            tmp_path / f"nats-{i}",
            name=f"nats-{i}",
            cluster_port=ports[i],
            routes=[p for j, p in enumerate(ports) if j != i],
        )
        for i in range(3)
    ]
    try:
        for node in nodes:
            node.start(wait=False)
        for node in nodes:
            node.wait_ready(60)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def _stream_state(url: str, stream: str) -> tuple[str | None, int, int]:
    """Return (the stream's leader, its current replicas, its messages), asked of a server of ``url``."""
    nc = await nats.connect(servers=url.split(","), connect_timeout=2, max_reconnect_attempts=1)
    try:
        info = await nc.jetstream(timeout=5).stream_info(stream)
        current = sum(1 for r in info.cluster.replicas or [] if r.current) + 1
        return info.cluster.leader, current, info.state.messages
    finally:
        await nc.close()


def stream_state(url: str, stream: str) -> tuple[str | None, int, int] | None:
    """Return what ``_stream_state`` does, or None while the cluster cannot answer (electing a leader)."""
    try:
        return run_async(_stream_state(url, stream))
    except Exception:
        return None


def shop_leader(url: str) -> str:
    """Return the name of the node that leads the SHOP stream, waiting while there is none (an election)."""
    return wait_for(lambda: (s := stream_state(url, "SHOP")) and s[0], 60, "a leader of the SHOP stream")


def stream_holds(url: str, stream: str, count: int) -> bool:
    """Return whether the stream holds ``count`` messages, as the server at ``url`` says."""
    state = stream_state(url, stream)
    return state is not None and state[2] == count


def test_killing_the_stream_leader_of_a_three_node_cluster_loses_and_doubles_nothing(
    transactional_db, nats_cluster, make_product, tmp_path, settings
):
    settings.EVENT_STREAM_REPLICAS = 3  # the streams this test sets up, as the relay and workers see them
    make_product("A", stock=1000)
    make_product("B", stock=15)  # 20 orders of 2 ask for 40: some must be rejected
    any_order = ",".join(node.url for node in nats_cluster)
    wait_for(lambda: _try(lambda: run_async(reset_streams(any_order))), 60, "the cluster to take the streams")
    wait_for(lambda: (s := stream_state(nats_cluster[0].url, "SHOP")) and s[1] == 3, 60, "three current replicas")
    # Every process's first server is the leader: the one each of them connects to is the one killed.
    leader = shop_leader(nats_cluster[0].url)
    url = ",".join(node.url for node in sorted(nats_cluster, key=lambda node: node.name != leader))
    pipe = Pipeline(tmp=tmp_path, nats_url=url, extra_env={"EVENT_STREAM_REPLICAS": "3"})
    try:
        pipe.relay()
        pipe.workers()
        pipe.workers()
        base = pipe.web()
        stream = OrderStream(base, ["A", "B"], "cluster", count=40).start()
        wait_for(lambda: len(stream.accepted) >= 10, 60, "the first orders of the stream")
        wait_for(lambda: Order.objects.exclude(status=Order.Status.PENDING).count() >= 5, 60, "the first decisions")

        leader = shop_leader(nats_cluster[0].url)  # the same one, unless it moved meanwhile
        victim = next(node for node in nats_cluster if node.name == leader)
        victim.kill()
        survivors = [node for node in nats_cluster if node is not victim]
        # The web stays ready: a cluster with one node down is NATS reachable.
        wait_for(lambda: httpx.get(f"{base}/readyz", timeout=10).status_code == 200, 30, "the web to be ready")

        accepted = stream.join()
        all_final(timeout=120)
        # Orders placed after the kill went through the two nodes left, under a new leader.
        assert shop_leader(survivors[0].url) != leader
        # Nothing lost: one order per key, each one final; nothing doubled: each event once in its stream.
        assert len(set(accepted.values())) == len(accepted) == Order.objects.filter(email=EMAIL).count() == 40
        wait_for(lambda: not StoredEvent.objects.filter(unpublished__isnull=False).exists(), 60, "outbox drained")
        for name, prefix in (("SHOP", "shop."), ("INVENTORY", "inventory.")):
            held = StoredEvent.objects.filter(subject__startswith=prefix).count()
            wait_for(functools.partial(stream_holds, survivors[0].url, name, held), 30, f"{name} = the outbox")
        assert_each_effect_once()
        assert Order.objects.filter(status=Order.Status.CONFIRMED, lines__sku="B").count() == 7  # 15 // 2
        assert not DeadLetter.objects.exists()
    finally:
        pipe.stop()


def _try(action) -> bool:
    """Return whether ``action()`` ran without raising."""
    try:
        action()
    except Exception:
        return False
    return True


@pytest.fixture
def cluster_devstack(tmp_path):
    """Start `manage.py devstack --nats-cluster 3` with its own embedded servers: a web, two workers, no ASGI."""
    options = ("--web", "1", "--live", "0", "--workers", "2", "--nats-cluster", "3")
    with running_devstack(tmp_path / "stack", *options, ready_within=180) as (proc, out, base):
        yield proc, out, base, tmp_path / "stack" / "state.json"


def node_pid(devstack_pid: int, name: str) -> int:
    """Return the PID of the devstack's nats-server named ``name`` (its ``-n``)."""
    for pid in descendants(devstack_pid):
        args = cmdline(pid).split("\0")
        if Path(args[0]).name == "nats-server" and args[args.index("-n") + 1] == name:
            return pid
    raise AssertionError(f"no nats-server {name} under the devstack")


def test_a_devstack_cluster_node_killed_mid_load_is_restarted_and_catches_up(cluster_devstack):
    proc, out, base, state_file = cluster_devstack
    state = json.loads(state_file.read_text())
    admin = state["nats_url"]  # every node, as the admin user
    wait_for(lambda: (s := stream_state(admin, "SHOP")) and s[1] == 3, 60, "the devstack's streams to be R3")
    skus = [p["sku"] for p in httpx.get(f"{base}/api/products").json()["items"][:3]]

    stream = OrderStream(base, skus, "node", count=40).start()
    wait_for(lambda: len(stream.accepted) >= 10, 60, "the first orders of the stream")
    leader = shop_leader(admin)
    victim = node_pid(proc.pid, leader)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: out.has(f"{leader} exited with code -9"), 30, f"the supervisor to see {leader} die")
    wait_for(lambda: out.has(f"{leader} restarted"), 90, f"{leader} to be restarted")

    accepted = stream.join()
    final = every_order_ends(base, accepted)
    assert set(final.values()) <= {"confirmed", "rejected"}
    # The node came back on its data and caught up: three current replicas again, under some leader.
    wait_for(lambda: (s := stream_state(admin, "SHOP")) and s[1] == 3 and s[0], 60, "three current replicas again")

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL", "NATS_SERVICE_URLS")}
    env["DEVSTACK_STATE"] = str(state_file)
    check = subprocess.run([sys.executable, MANAGE, "verify_invariants"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with psycopg.connect(state["database_url"]) as db:
        (orders,) = db.execute("SELECT count(*) FROM shop_order WHERE email = %s", [EMAIL]).fetchone()
        assert len(set(accepted.values())) == len(accepted) == orders == 40
        drained = "SELECT NOT EXISTS (SELECT 1 FROM events_outbox)"
        wait_for(lambda: db.execute(drained).fetchone()[0], 60, "the outbox drained")
        for name, prefix in (("SHOP", "shop.%"), ("INVENTORY", "inventory.%")):
            query = "SELECT count(*) FROM events_storedevent WHERE subject LIKE %s"
            (held,) = db.execute(query, [prefix]).fetchone()
            # Each event once in its stream: nothing lost, nothing doubled by the publishers' retries.
            wait_for(functools.partial(stream_holds, admin, name, held), 30, f"{name} = the outbox")


# --- PostgreSQL restarted mid-load


@pytest.fixture
def own_postgres(tmp_path):
    """A PostgreSQL server of this test's own, migrated, which it may stop and start again (same port and data)."""
    server = EmbeddedPostgres(tmp_path / "pg")
    try:
        url = server.start()
        env = {**os.environ, "DATABASE_URL": url}
        for command in (["migrate", "--noinput", "-v", "0"], ["seed_demo", "--products", "3", "--stock", "20"]):
            subprocess.run([sys.executable, MANAGE, *command], env=env, check=True, capture_output=True)
        yield server
    finally:
        server.stop()


def test_a_postgres_restart_mid_load_is_survived_by_the_running_pipeline(own_postgres, nats_url, tmp_path):
    run_async(reset_streams(nats_url))
    pipe = Pipeline(tmp=tmp_path, nats_url=nats_url, extra_env={"DATABASE_URL": own_postgres.url})
    try:
        pipe.relay()
        pipe.workers()
        base = pipe.web()
        skus = [p["sku"] for p in httpx.get(f"{base}/api/products").json()["items"]]
        stream = OrderStream(base, skus, "restart", count=40).start()
        wait_for(lambda: len(stream.accepted) >= 10, 60, "the first orders of the stream")

        own_postgres.stop()  # a fast shutdown: every connection of every process is cut
        own_postgres.start()

        accepted = stream.join()
        with psycopg.connect(own_postgres.url) as db:
            query = "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FROM shop_order WHERE email = %s"
            wait_for(lambda: db.execute(query, [EMAIL]).fetchone() == (0, 40), 120, "every order final", 0.5)
        assert len(set(accepted.values())) == len(accepted) == 40
        # The same processes, not restarted: each of them got over the restart by itself.
        assert all(proc.alive() for proc in pipe.procs), pipe.logs()
        check = subprocess.run(
            [sys.executable, MANAGE, "verify_invariants"],
            env=pipe.env(),
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        with psycopg.connect(own_postgres.url) as db:
            decisions = db.execute(
                "SELECT count(*), count(DISTINCT aggregate_id) FROM events_storedevent "
                "WHERE type IN ('StockReserved', 'StockReservationRejected')"
            ).fetchone()
            receipts = db.execute(
                "SELECT count(*) FROM events_processedevent p JOIN events_storedevent e ON e.event_id = p.event_id "
                "WHERE p.consumer = 'inventory' AND e.type = 'OrderPlaced'"
            ).fetchone()
        assert decisions == (40, 40)  # each order decided once
        assert receipts == (40,)
    finally:
        pipe.stop()


# --- a consumer stopped past AckWait, whose work is redone elsewhere


def backends_waiting_for_a_lock() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def test_a_consumer_stopped_past_ack_wait_comes_back_and_doubles_nothing(pipeline, make_product):
    """The shop's consumer is stopped in its batch; another worker gets the messages and applies them; the first
    comes back, applies its batch again and acks it late: the receipts make all of that change nothing.

    Without the receipts, the second go would note each reservation on its order's timeline again: the
    unique event id of a timeline entry refuses that, and the message fails instead of being acked.
    """
    make_product("A", stock=100)
    orders = place_many(20)
    pipeline.extra_env["LOG_FLOW"] = "1"  # a line per handled event, with its delivery count
    # The orders' rows are held: the shop's consumer stops inside its transaction, before commit.
    blocker = psycopg.connect(**connection.get_connection_params())
    blocker.execute("SELECT id FROM shop_order FOR UPDATE")
    try:
        pipeline.relay()
        first = pipeline.workers()
        wait_for(lambda: StoredEvent.objects.filter(type="StockReserved").count() == 20, 60, "20 reservations")
        (waiting,) = wait_for(backends_waiting_for_a_lock, 30, "the shop's consumer to wait inside its batch")
        os.kill(first.proc.pid, signal.SIGSTOP)  # stopped: no ack, no commit, for as long as the test says
        with connection.cursor() as cursor:  # its transaction is undone, as when PostgreSQL gives up on it
            cursor.execute("SELECT pg_terminate_backend(%s)", [waiting])
    finally:
        blocker.rollback()
        blocker.close()
    try:
        second = pipeline.workers()
        all_final(60)  # by the second worker alone, once AckWait let the messages go to it
        wait_for(lambda: "delivery=2" in second.log_text(), 30, "a redelivery to the second worker")
        assert set(Order.objects.values_list("status", flat=True)) == {Order.Status.CONFIRMED}
    finally:
        os.kill(first.proc.pid, signal.SIGCONT)
    # Back, the first worker finds its connection gone, applies its batch again and acks it: late.
    wait_for(lambda: "message by message" in first.log_text(), 30, "the first worker to apply its batch again")
    first.stop()  # a clean stop: its batch is settled (acked, late) before it exits
    # Its second go skipped every message as one it had seen (the receipts), rather than failing on one.
    assert " failed on " not in first.log_text() and not DeadLetter.objects.exists()
    wait_for(lambda: run_async(pending(pipeline.nats_url, "INVENTORY", "shop")) == (0, 0), 30, "nothing pending")

    reserved = TimelineEntry.objects.filter(type="StockReserved")
    assert reserved.count() == 20
    assert set(reserved.values("order").annotate(n=Count("id")).values_list("n", flat=True)) == {1}
    assert StoredEvent.objects.filter(type="OrderConfirmed").count() == 20
    causes = StoredEvent.objects.filter(type="StockReserved").values_list("event_id", flat=True)
    assert ProcessedEvent.objects.filter(consumer="shop", event_id__in=causes).count() == 20
    assert {str(o) for o in Order.objects.values_list("id", flat=True)} == set(orders)
    assert_each_effect_once()


# --- a cancel that overtakes its order


def test_a_cancel_that_overtakes_its_order_ends_cancelled_and_never_holds_stock(pipeline, make_product):
    make_product("A", stock=5)
    start_workers(pipeline)
    # No relay yet: each event is published by the process that commits it. The web the order is placed on
    # holds its publish for a minute; the one it is cancelled on publishes at once: the cancel is on the bus first.
    slow = pipeline.web(1, EVENT_PUBLISH_DELAY="60")
    fast = pipeline.web(1)
    body = {"email": "early@example.org", "lines": [{"sku": "A", "quantity": 2}]}
    order_id = httpx.post(f"{slow}/api/orders", json=body).json()["id"]
    assert httpx.post(f"{fast}/api/orders/{order_id}/cancel").status_code == 202

    placed = StoredEvent.objects.get(type="OrderPlaced", aggregate_id=order_id)
    cancelled = StoredEvent.objects.get(type="OrderCancelled", aggregate_id=order_id)
    receipts = ProcessedEvent.objects.filter(consumer="inventory")
    wait_for(lambda: receipts.filter(event_id=cancelled.event_id).exists(), 30, "the cancel to reach the inventory")
    assert not receipts.filter(event_id=placed.event_id).exists()
    assert Unpublished.objects.filter(seq=placed.seq).exists()  # not published yet
    # Then the order arrives, late: the relay sweeps up what the slow web has not published yet.
    pipeline.relay()
    wait_for(lambda: receipts.filter(event_id=placed.event_id).exists(), 30, "the order to reach the inventory")
    first = receipts.get(event_id=cancelled.event_id).processed_at
    assert first < receipts.get(event_id=placed.event_id).processed_at  # the cancel came first

    # Remembered, so the late order held nothing and no one waits for anything of it.
    assert Reservation.objects.get(order_id=order_id).status == Reservation.Status.CANCELLED_BEFORE_PLACED
    assert Order.objects.get(id=order_id).status == Order.Status.CANCELLED
    item = StockItem.objects.get(sku="A")
    assert (item.on_hand, item.reserved) == (5, 0)
    assert not StoredEvent.objects.filter(type__in=["StockReserved", "StockReleased", "StockReservationRejected"])
    wait_for(lambda: run_async(pending(pipeline.nats_url, "SHOP", "inventory")) == (0, 0), 30, "nothing pending")
    assert not DeadLetter.objects.exists()

    # Every unit is still for sale: an order of all five is confirmed.
    whole = {"email": "later@example.org", "lines": [{"sku": "A", "quantity": 5}]}
    later = httpx.post(f"{fast}/api/orders", json=whole).json()["id"]
    wait_for(lambda: Order.objects.get(id=later).status != Order.Status.PENDING, 30, "the later order")
    assert Order.objects.get(id=later).status == Order.Status.CONFIRMED
    item = StockItem.objects.get(sku="A")
    assert (item.on_hand, item.reserved) == (5, 5)
    assert StoredEvent.objects.filter(type="StockReserved").count() == 1
