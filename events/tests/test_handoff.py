"""Hand-off in process: a runner's own consumers get what its batches commit at once; the bus's copies are acked.

A real runner, in this process, on the test database and the suite's NATS:
consumer ``handoff-decide`` takes ``Placed`` and records ``Decided``;
consumer ``handoff-apply`` takes ``Decided``. Each ``Decided`` reaches
``handoff-apply`` twice, handed off in process and as the stream's copy, and
must have its effect once either way.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass

import psycopg
import pytest
from django.db import connection

from events import metrics, outbox, publisher
from events.base import Event, encode, new_envelope
from events.consumer import Consumer, Message, Runner
from events.models import ProcessedEvent
from events.pg import database_conninfo
from tests.pipeline import pending, publish_raw, run_async, wait_for

pytestmark = pytest.mark.pipeline


@dataclass(frozen=True, kw_only=True)
class Placed(Event):
    TYPE = "HandoffPlaced"
    order_id: str

    def subject(self) -> str:
        return "shop.handoff.placed"

    def aggregate_id(self) -> str:
        return self.order_id


@dataclass(frozen=True, kw_only=True)
class Decided(Placed):
    TYPE = "HandoffDecided"

    def subject(self) -> str:
        return "shop.handoff.decided"


# order id → attempts of handoff-apply that still raise (a batch tries twice: whole, then message by message)
FAILS: dict[str, int] = {}


def effect(kind: str, order_id: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_processedevent (consumer, event_id, processed_at) "
            "VALUES (%s, gen_random_uuid(), now())",
            [f"effect:{kind}:{order_id}"],
        )


def decide(message: Message[Placed]) -> None:
    effect("decide", message.event.order_id)
    outbox.record(Decided(order_id=message.event.order_id), cause=message.envelope)


def apply(message: Message[Decided]) -> None:
    order_id = message.event.order_id
    if order_id.startswith("locked-"):  # waits while the test holds this lock
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [order_id])
    if FAILS.get(order_id):
        FAILS[order_id] -= 1
        raise RuntimeError("a passing fault")
    effect("apply", order_id)


DECIDE = Consumer(
    name="handoff-decide",
    app="test",
    stream="SHOP",
    subjects=("shop.handoff.placed",),
    subscriptions=((Placed, decide),),
)
APPLY = Consumer(
    name="handoff-apply",
    app="test",
    stream="SHOP",
    subjects=("shop.handoff.decided",),
    subscriptions=((Decided, apply),),
)


def effects(kind: str, order_id: str) -> int:
    return ProcessedEvent.objects.filter(consumer=f"effect:{kind}:{order_id}").count()


def counted(counter, consumer: str) -> float:
    return counter.labels(consumer)._value.get()


@pytest.fixture
def runner(pipeline, monkeypatch, settings):
    """A runner of both consumers on its own loop and thread, stopped (and waited for) after the test."""
    settings.EVENT_RUNNER_PUBLISHES = True
    settings.EVENT_PUBLISH_AFTER_COMMIT = True
    monkeypatch.setattr(publisher, "_name", None)  # the runner enables it for this process: undone after
    loop = asyncio.new_event_loop()
    runner = Runner([DECIDE, APPLY], handoff=True)
    thread = threading.Thread(target=loop.run_until_complete, args=(runner.run(),), daemon=True)
    thread.start()
    yield runner
    loop.call_soon_threadsafe(runner.stop.set)
    thread.join(30)
    assert not thread.is_alive(), "the runner did not stop"
    loop.close()


def place(nats_url: str, order_id: str) -> None:
    event = Placed(order_id=order_id)
    envelope = new_envelope(event, correlation_id=order_id, causation_id=None)
    run_async(publish_raw(nats_url, event.subject(), encode(envelope, event.to_data()), msg_id=envelope.event_id))


def test_a_handed_off_event_has_one_effect_and_its_copy_is_acked(pipeline, runner):
    copies = counted(metrics.HANDOFF_COPIES, "handoff-apply")
    ids = [f"o{i}-{uuid.uuid4().hex[:6]}" for i in range(5)]
    for order_id in ids:
        place(pipeline.nats_url, order_id)

    wait_for(lambda: all(effects("apply", i) for i in ids), 30, "every Decided applied")
    # Each copy came back to this runner and was acked without being applied again.
    wait_for(lambda: run_async(pending(pipeline.nats_url, "SHOP", "handoff-apply")) == (0, 0), 30, "copies acked")
    wait_for(lambda: counted(metrics.HANDOFF_COPIES, "handoff-apply") - copies == len(ids), 10, "the copies counted")
    for order_id in ids:
        assert effects("decide", order_id) == effects("apply", order_id) == 1
    assert ProcessedEvent.objects.filter(consumer="handoff-apply").count() == len(ids)


def test_a_hand_off_that_fails_leaves_the_event_to_its_copy(pipeline, runner):
    copies = counted(metrics.HANDOFF_COPIES, "handoff-apply")
    flaky = f"flaky-{uuid.uuid4().hex[:6]}"
    FAILS[flaky] = 2  # the hand-off's two attempts
    place(pipeline.nats_url, flaky)

    wait_for(lambda: effects("apply", flaky), 30, "the copy applied")
    wait_for(lambda: run_async(pending(pipeline.nats_url, "SHOP", "handoff-apply")) == (0, 0), 30, "the copy acked")
    assert FAILS[flaky] == 0  # the hand-off did meet the fault
    assert effects("decide", flaky) == effects("apply", flaky) == 1
    assert counted(metrics.HANDOFF_COPIES, "handoff-apply") == copies  # applied from the stream, not acked unapplied


def test_a_copy_that_comes_while_its_hand_off_runs_waits_for_it_and_is_acked(pipeline, runner):
    """The hand-off waits on a lock the test holds; the copy arrives meanwhile and must wait, not apply it too."""
    order_id = f"locked-{uuid.uuid4().hex[:6]}"
    copies = counted(metrics.HANDOFF_COPIES, "handoff-apply")
    with psycopg.connect(**database_conninfo(), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", [order_id])
        place(pipeline.nats_url, order_id)
        # The copy is at the runner, delivered and not acked, while the hand-off waits for the lock.
        wait_for(lambda: run_async(pending(pipeline.nats_url, "SHOP", "handoff-apply")) == (0, 1), 30, "the copy")
        assert effects("apply", order_id) == 0
        holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", [order_id])
    wait_for(lambda: run_async(pending(pipeline.nats_url, "SHOP", "handoff-apply")) == (0, 0), 30, "the copy acked")
    assert effects("apply", order_id) == 1
    assert counted(metrics.HANDOFF_COPIES, "handoff-apply") == copies + 1
