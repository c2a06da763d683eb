"""Prometheus metrics of the event bus, and the registry ``GET /metrics`` serves (every app's metrics too).

Web, relay and workers are several processes, so metrics live in
prometheus-client's multiprocess mode: whoever starts the processes sets
``PROMETHEUS_MULTIPROC_DIR`` (an empty folder) in their environment, each
process writes its samples there, and the web's ``/metrics`` adds them up
(https://prometheus.github.io/client_python/multiprocess/). Without it, each
process keeps its own (the relay and workers may then serve theirs on
``METRICS_PORT``).

Names follow https://prometheus.io/docs/practices/naming/: base units
(seconds), ``_total`` on counters, and only **bounded** labels: an event
type, a consumer, a durable, a hop, a route. Never an order id or a SKU.

Figures read from PostgreSQL (outbox depth, oldest unpublished event, failed
events, dead letters waiting) are computed when scraped, by ``DatabaseCollector``.
JetStream's pending counts per durable are sampled every second by the relay,
which is connected to NATS anyway (``events.observe.sample_consumers``): the
web never talks to NATS while serving, and a scrape never waits on it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

# Seconds: from a fraction of a millisecond (one hop on an idle system) to a minute (a backlog draining).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

# --- the outbox and the relay
RECORDED = Counter("events_recorded_total", "Events committed to the outbox, by type.", ["type"])
PUBLISHED = Counter(
    "events_published_total", "Events published (after commit, or by the relay) and acknowledged.", ["type"]
)
PUBLISH_FAILURES = Counter(
    "events_publish_failures_total", "Outbox rows a publish could not get acknowledged for a passing fault."
)
PUBLISH_REFUSED = Counter(
    "events_publish_refused_total",
    "Publishes refused for the row's own fault (over max_payload, no stream for its subject), by type.",
    ["type"],
)
PUBLISH_DUPLICATES = Counter(
    "events_publish_duplicates_total", "Publishes JetStream acknowledged as copies of an event it had (kept once)."
)
RELAY_LAG = Histogram(
    "events_relay_lag_seconds",
    "Seconds from an event's commit to its publication (commit → publish).",
    ["type"],
    buckets=LATENCY_BUCKETS,
)

# --- consumers
CONSUMED = Counter("events_consumed_total", "Events a consumer applied and committed.", ["consumer", "type"])
HANDED_OFF = Counter(
    "events_handed_off_total", "Events a worker handed to its own consumer in process, applied or not.", ["consumer"]
)
HANDOFF_COPIES = Counter(
    "events_handoff_copies_total", "Stream copies of handed-off events acked without applying them again.", ["consumer"]
)
HANDLER_FAILURES = Counter("events_handler_failures_total", "Handler runs that raised.", ["consumer", "type"])
HANDLER_DURATION = Histogram(
    "events_handler_duration_seconds",
    "Seconds a consumer's handlers took on one event.",
    ["consumer", "type"],
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram("events_batch_size", "Messages per fetched batch.", ["consumer"], buckets=BATCH_BUCKETS)
BATCH_DURATION = Histogram(
    "events_batch_duration_seconds",
    "Seconds from fetching a batch to settling it (consumer start → ack).",
    ["consumer"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "events_queue_wait_seconds",
    "Seconds a message waited in JetStream before a worker fetched it (publish → start).",
    ["consumer"],
    buckets=LATENCY_BUCKETS,
)
APPLY_LAG = Histogram(
    "events_apply_lag_seconds",
    "Seconds from an event's commit to the commit of a consumer that applied it.",
    ["consumer"],
    buckets=LATENCY_BUCKETS,
)
REDELIVERIES = Counter("events_redeliveries_total", "Messages delivered more than once.", ["consumer"])
DEAD_LETTERS = Counter("events_dead_letters_total", "Messages parked in the dead-letter store.", ["consumer"])
REPLAYS = Counter("events_dead_letter_replays_total", "Dead letters published again by staff.", ["consumer"])

# --- JetStream, sampled by the relay ("mostrecent": the latest sample of any process wins)
JS_PENDING = Gauge(
    "events_jetstream_pending_messages",
    "Messages of a durable consumer not yet delivered.",
    ["stream", "durable"],
    multiprocess_mode="mostrecent",
)
JS_ACK_PENDING = Gauge(
    "events_jetstream_ack_pending_messages",
    "Messages delivered to a durable consumer and not yet acknowledged.",
    ["stream", "durable"],
    multiprocess_mode="mostrecent",
)
JS_SAMPLED = Gauge(
    "events_jetstream_sampled_timestamp_seconds",
    "When the JetStream figures were last read (Unix time).",
    multiprocess_mode="mostrecent",
)


class DatabaseCollector:
    """The outbox and the dead-letter store, read from PostgreSQL at scrape time."""

    OUTBOX = """
        SELECT count(*), coalesce(extract(epoch FROM clock_timestamp() - min(queued_at)), 0),
               count(*) FILTER (WHERE attempts > 0)
        FROM events_outbox
    """
    WAITING = "SELECT count(*) FROM events_deadletter WHERE replayed_at IS NULL"

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import connection

        with connection.cursor() as cursor:
            # The outbox holds only the events in flight: cheap whatever the size of the log.
            cursor.execute(self.OUTBOX)
            depth, oldest, failed = cursor.fetchone()
            cursor.execute(self.WAITING)
            (waiting,) = cursor.fetchone()
        yield GaugeMetricFamily("events_outbox_depth", "Events committed and not yet published.", value=depth)
        yield GaugeMetricFamily(
            "events_outbox_oldest_age_seconds",
            "Age of the oldest unpublished event (0 when none).",
            value=float(oldest),
        )
        yield GaugeMetricFamily(
            "events_outbox_failed",
            "Unpublished events refused for a fault of their own, waiting for their next try.",
            value=failed,
        )
        yield GaugeMetricFamily("events_dead_letters_waiting", "Dead letters not replayed yet.", value=waiting)


class _ThisProcess:
    """The metrics of this process alone (when not in multiprocess mode)."""

    def collect(self):
        return REGISTRY.collect()


class _SharedSamples(MultiProcessCollector):
    """Every process's samples, as prometheus-client merges them, but for files still being created.

    A process creating its samples file holds it empty for an instant (created, not yet
    sized); prometheus-client would fail the whole scrape on it. Its samples wait for the next.
    """

    def collect(self):
        files = [f for f in glob.glob(os.path.join(self._path, "*.db")) if _sized(f)]
        return self.merge(files, accumulate=True)


def _sized(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except FileNotFoundError:
        return False  # a live gauge's file, removed since the glob


def multiprocess_dir() -> str | None:
    """Return the folder the processes share their samples in, if multiprocess mode is on."""
    # prometheus_client reads this variable from the environment itself, at import (not from the settings):
    # https://prometheus.github.io/client_python/multiprocess/
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return path if path and os.path.isdir(path) else None


def forget_dead_processes(path: str) -> None:
    """Remove the live-gauge files of processes that are gone (a restarted worker keeps no open sockets)."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = int(name.rsplit("_", 1)[1].removesuffix(".db"))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os.remove(name)
        except PermissionError:
            pass


def registry(*, database: bool = True) -> CollectorRegistry:
    """Return a registry of every process's metrics, plus the database's figures."""
    result = CollectorRegistry()
    path = multiprocess_dir()
    if path:
        forget_dead_processes(path)
        _SharedSamples(result, path)
    else:
        result.register(_ThisProcess())
    if database:
        result.register(DatabaseCollector())
    return result


def serve(port: int) -> None:
    """Serve this process's metrics on ``port`` (0: don't), for a relay or worker not behind the web's /metrics."""
    if port:
        from prometheus_client import start_http_server

        start_http_server(port, registry=registry(database=False))
