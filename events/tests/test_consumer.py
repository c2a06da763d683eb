"""The consumer runner's batch semantics, on a real database (no NATS needed)."""

import json
from dataclasses import dataclass

import pytest
from django.db import connection

from events.base import Event, encode, new_envelope
from events.consumer import Consumer, Delivery, Message, Verdict, batch_handler, nak_delay, process_batch
from events.models import DeadLetter, ProcessedEvent


@dataclass(frozen=True, kw_only=True)
class OrderPlaced(Event):
    """A test event (events/ knows no app, so its tests bring their own)."""

    TYPE = "OrderPlaced"
    order_id: str
    lines: list[dict]

    def subject(self) -> str:
        return "shop.order.placed"

    def aggregate_id(self) -> str:
        return self.order_id


@dataclass(frozen=True, kw_only=True)
class OrderConfirmed(OrderPlaced):
    """An event type the test consumer does not subscribe to."""

    TYPE = "OrderConfirmed"


def remember(message: Message[OrderPlaced]) -> None:
    """Record the effect in the database, so a rolled-back savepoint undoes it."""
    event = message.event
    if event.order_id == "boom":
        raise RuntimeError("handler failed")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_processedevent (consumer, event_id, processed_at) "
            "VALUES (%s, gen_random_uuid(), now())",
            ["effect:" + event.order_id],
        )


RUNS: list[list[str]] = []  # the order ids each call of the batch handler got


@batch_handler
def remember_run(run: list[Message[OrderPlaced]]) -> None:
    """The same effect, set-based: a whole run of messages in one call."""
    RUNS.append([m.event.order_id for m in run])
    for m in run:
        remember(m)


CONSUMER = Consumer(
    name="test", app="test", stream="SHOP", subjects=("shop.>",), subscriptions=((OrderPlaced, remember),)
)
BATCH_CONSUMER = Consumer(
    name="test", app="test", stream="SHOP", subjects=("shop.>",), subscriptions=((OrderPlaced, remember_run),)
)


@pytest.fixture(params=["per-message", "set-based"])
def consumer(request):
    """Every guarantee below holds for a per-message handler and for a batch handler alike."""
    RUNS.clear()
    return CONSUMER if request.param == "per-message" else BATCH_CONSUMER


def delivery(order_id: str, num_delivered: int = 1, raw: bytes | None = None) -> Delivery:
    event = OrderPlaced(order_id=order_id, lines=[{"sku": "A", "quantity": 1}])
    data = (
        raw if raw is not None else encode(new_envelope(event, correlation_id=None, causation_id=None), event.to_data())
    )
    return Delivery(data=data, subject="shop.order.placed", headers={}, num_delivered=num_delivered, stream_seq=1)


def effects(order_id: str) -> int:
    return ProcessedEvent.objects.filter(consumer="effect:" + order_id).count()


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_applied_and_acked(consumer):
    verdicts = process_batch(consumer, [delivery("o1"), delivery("o2")], max_deliver=3)

    assert verdicts == [Verdict.ACK, Verdict.ACK]
    assert effects("o1") == effects("o2") == 1
    assert ProcessedEvent.objects.filter(consumer="test").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_event_is_acked_without_a_second_effect(consumer):
    first = delivery("o1")
    process_batch(consumer, [first], max_deliver=3)

    # The ack was lost after the commit: JetStream delivers the same event again.
    again = Delivery(first.data, first.subject, {}, num_delivered=2, stream_seq=1)
    assert process_batch(consumer, [again, again], max_deliver=3) == [Verdict.ACK, Verdict.ACK]

    assert effects("o1") == 1


@pytest.mark.django_db(transaction=True)
def test_one_failing_message_does_not_sink_the_batch(consumer):
    verdicts = process_batch(consumer, [delivery("o1"), delivery("boom"), delivery("o3")], max_deliver=3)

    assert verdicts == [Verdict.ACK, Verdict.NAK, Verdict.ACK]
    assert effects("o1") == effects("o3") == 1
    # The failed message left no receipt, so its redelivery will be applied.
    assert ProcessedEvent.objects.filter(consumer="test").count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_message_failing_on_its_last_delivery_is_dead_lettered(consumer):
    verdicts = process_batch(consumer, [delivery("boom", num_delivered=3)], max_deliver=3)

    assert verdicts == [Verdict.TERM]
    letter = DeadLetter.objects.get()
    assert letter.consumer == "test" and letter.deliveries == 3 and "handler failed" in letter.error


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", json.dumps({"type": "OrderPlaced"}).encode(), b'{"event_id": "x", "data": 1}'],
)
def test_an_undecodable_message_is_dead_lettered_at_once(consumer, raw):
    verdicts = process_batch(consumer, [delivery("o1", raw=raw), delivery("o2")], max_deliver=3)

    assert verdicts == [Verdict.TERM, Verdict.ACK]
    assert bytes(DeadLetter.objects.get().data) == raw
    assert effects("o2") == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_type_not_subscribed_is_acked_and_ignored(consumer):
    event = OrderConfirmed(order_id="o9", lines=[])
    raw = encode(new_envelope(event, correlation_id=None, causation_id=None), event.to_data())

    assert process_batch(consumer, [delivery("o9", raw=raw)], max_deliver=3) == [Verdict.ACK]
    assert ProcessedEvent.objects.filter(consumer="test").count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_batch_handler_gets_the_run_at_once_without_its_duplicates():
    RUNS.clear()
    first, third = delivery("o1"), delivery("o3")
    process_batch(BATCH_CONSUMER, [first], max_deliver=3)

    verdicts = process_batch(BATCH_CONSUMER, [first, delivery("o2"), third, third], max_deliver=3)

    assert verdicts == [Verdict.ACK] * 4
    # o1 was applied before; the second delivery of o3 is a copy of the first.
    assert RUNS == [["o1"], ["o2", "o3"]]
    assert effects("o1") == effects("o2") == effects("o3") == 1


@pytest.mark.django_db(transaction=True)
def test_a_failing_run_is_applied_again_one_message_at_a_time():
    RUNS.clear()
    verdicts = process_batch(BATCH_CONSUMER, [delivery("o1"), delivery("boom"), delivery("o3")], max_deliver=3)

    assert verdicts == [Verdict.ACK, Verdict.NAK, Verdict.ACK]
    assert RUNS == [["o1", "boom", "o3"], ["o1"], ["boom"], ["o3"]]  # set-based, rolled back, then one by one
    assert effects("o1") == effects("o3") == 1


def test_nak_backoff_grows_and_is_capped():
    delays = [nak_delay(n) for n in range(1, 10)]
    assert delays == sorted(delays)
    assert delays[0] == pytest.approx(0.2) and delays[-1] == 10.0


def test_a_consumer_lingers_only_when_messages_come_faster_than_it_applies_them():
    from events.consumer import linger_after

    busy = 2000.0  # messages/s: at least as many again as a batch of 5 within 4 ms
    assert linger_after(1, 100, took=0.003, fixed=0, adaptive_max=0.004, rate=busy) == 0  # one: never wait
    assert linger_after(5, 100, took=0.003, fixed=0, adaptive_max=0.004, rate=busy) == 0.003  # busy: as long as it took
    assert linger_after(5, 100, took=0.020, fixed=0, adaptive_max=0.004, rate=busy) == 0.004  # at most the bound
    assert linger_after(5, 100, took=0.003, fixed=0, adaptive_max=0.004, rate=200) == 0  # a few at once, rarely
    assert linger_after(100, 100, took=0.003, fixed=0, adaptive_max=0.004, rate=busy) == 0  # full: more is waiting
    assert linger_after(1, 100, took=0.003, fixed=0.005, adaptive_max=0.004, rate=0) == 0.005  # a fixed linger wins
    assert linger_after(5, 100, took=0.003, fixed=0, adaptive_max=0, rate=busy) == 0  # off


def test_the_arrival_rate_counts_the_messages_fetched_since_the_oldest_batch_of_its_window():
    from events.consumer import ArrivalRate

    rate = ArrivalRate(window=3)
    assert rate.fetched(3, at=10.0) == 0  # one batch: no span yet
    assert rate.fetched(2, at=10.5) == 4.0  # 2 since t=10
    assert rate.fetched(4, at=11.0) == 6.0  # 6 in a second
    assert rate.fetched(1, at=12.0) == pytest.approx(5 / 1.5)  # the first left the window: 4 + 1 since t=10.5


@dataclass(frozen=True, kw_only=True)
class LevelChanged(Event):
    """A test event of a read model: the newest version wins, so it commutes with the others."""

    TYPE = "LevelChanged"
    sku: str

    def subject(self) -> str:
        return f"shop.level.{self.sku}"

    def aggregate_id(self) -> str:
        return self.sku


def test_a_handler_marked_last_gets_all_its_messages_of_a_batch_in_one_run_after_the_rest():
    from events.consumer import _runs

    @batch_handler(last=True)
    def levels(run: list[Message[LevelChanged]]) -> None:
        pass

    consumer = Consumer(
        name="test",
        app="test",
        stream="SHOP",
        subjects=("shop.>",),
        subscriptions=((LevelChanged, levels), (OrderPlaced, remember_run)),
    )
    events = [OrderPlaced(order_id="o0", lines=[]), LevelChanged(sku="B"), OrderPlaced(order_id="o2", lines=[])]
    events += [LevelChanged(sku="A"), OrderPlaced(order_id="o4", lines=[])]

    runs = _runs(consumer, [(i, None, event) for i, event in enumerate(events)])

    # The placed orders in stream order, as one run (the levels between them commute); the levels last.
    assert [(handler, [i for i, _, _ in run]) for handler, run in runs] == [(remember_run, [0, 2, 4]), (levels, [1, 3])]
