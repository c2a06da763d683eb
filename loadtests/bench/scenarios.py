"""The scenarios of the bench and how one is run: load, wait for every order's end, read the figures."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings

from ..stats import percentile
from . import cpu, db
from .load import LoadResult, closed_loop, open_loop, post_request, threads_loop
from .stack import BenchError, Stack

QUIESCE_TIMEOUT = 120.0  # seconds for the outbox and the consumers to empty between scenarios


@dataclass(frozen=True)
class Scenario:
    """One configuration of the system and one way of loading it; the first one is the baseline.

    ``env`` is applied to every process (web, relay, workers) as the settings
    read it, ``workers`` is the number of ``run_workers`` processes. A new
    lever is one more line in SCENARIOS.
    """

    name: str
    about: str
    load: str = "http"  # "http" (closed loop) or "service" (threads in-process)
    pipeline: bool = True  # relay and workers running during the load
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1


BASELINE = "baseline"
SCENARIOS = [
    Scenario(BASELINE, "HTTP POST /api/orders through web, relay and 1 worker process, batch 100"),
    Scenario("service", "shop.services.order_place from C threads in-process, no HTTP", load="service"),
    # Nothing of the event machinery runs, the web's publisher neither: the orders' events wait in the outbox.
    Scenario(
        "acceptance-only",
        "the baseline HTTP load with relay, workers and publish after commit stopped",
        env={"EVENT_PUBLISH_AFTER_COMMIT": "0"},
        pipeline=False,
    ),
    Scenario("batch-10", "consumers fetch and commit 10 events at a time", env={"EVENT_BATCH_SIZE": "10"}),
    Scenario("batch-1", "consumers fetch and commit one event at a time", env={"EVENT_BATCH_SIZE": "1"}),
    Scenario("workers-2", "two run_workers processes compete for the durable consumers", workers=2),
    Scenario(
        "relay-only",
        "no publish after commit: the relay publishes every event (polling every 5 ms)",
        env={"EVENT_PUBLISH_AFTER_COMMIT": "0"},
    ),
    # The relay's own levers, where the relay publishes every event.
    Scenario(
        "relay-notify",
        "relay-only, the relay woken by LISTEN/NOTIFY instead of polling",
        env={"EVENT_PUBLISH_AFTER_COMMIT": "0", "RELAY_WAKEUP": "notify"},
    ),
    Scenario(
        "relay-eager",
        "relay-only, the relay starts its next round at once after a partial one",
        env={"EVENT_PUBLISH_AFTER_COMMIT": "0", "RELAY_LINGER": "0"},
    ),
    Scenario(
        "fetch-linger",
        "consumers wait 5 ms after a partial batch before fetching again",
        env={"EVENT_FETCH_LINGER": "0.005"},
    ),
    Scenario(
        "server-binding",
        "psycopg's server-side binding: parameters sent apart from the statement, statements run often prepared",
        env={"DB_SERVER_SIDE_BINDING": "1"},
    ),
    Scenario(
        "linger-off",
        "no adaptive linger: consumers fetch again at once after any partial batch",
        env={"EVENT_FETCH_LINGER_MAX": "0"},
    ),
    Scenario(
        "gc-unfrozen",
        "the start-up heap left in the garbage collector's walks (no gc.freeze(); events/heap.py)",
        env={"GC_FREEZE": "0"},
    ),
    Scenario(
        "publisher-thread",
        "a worker hands its batches' events to a publisher thread instead of sending them from its runner's loop",
        env={"EVENT_RUNNER_PUBLISHES": "0"},
    ),
    Scenario(
        "handoff-off",
        "a worker's consumers get the events its own batches commit from the bus only, not handed off in process",
        env={"EVENT_HANDOFF": "0"},
    ),
    # The stock read path (near cache or database) has its own read load: see reads.py.
]
SCENARIO_NAMES = [s.name for s in SCENARIOS]


@dataclass
class Figures:
    """The measured figures of one scenario or ladder step (None where they do not apply)."""

    name: str
    about: str
    orders: int
    accepted: int
    errors: int
    load_seconds: float
    accepted_per_s: float
    end_to_end_per_s: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    answer_p50_ms: float | None  # client-side: request sent (or due) -> 202 read; or the service call
    answer_p99_ms: float | None
    not_final: int
    rejected: int
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1
    rate: float | None = None  # paced load: the orders/s offered
    backlog: int = 0  # paced load: orders not yet final when the load ended
    drain_per_s: float | None = None  # acceptance-only: the backlog's pace once relay and workers start
    # acceptance-only: CPU ms per order and group while relay and workers drain the backlog (from the moment
    # all are ready, so not their start-up): the event machinery's cost when every batch is full.
    drain_cpu_ms: dict[str, float] = field(default_factory=dict)
    first_error: str = ""
    round_rates: list[float] = field(default_factory=list)  # the rate of every round, when run in rounds
    # CPU ms per accepted order and process group, from load start to every order final and the pipeline idle
    # (acceptance-only: the load phase alone, since relay and workers do not run in it).
    cpu_ms: dict[str, float] = field(default_factory=dict)


def _ms(ordered: list[float], p: float) -> float | None:
    return round(percentile(ordered, p / 100) * 1000, 1) if ordered else None


@dataclass
class Bench:
    """One bench run: the processes, the catalog, the options, and the figures so far."""

    stack: Stack
    skus: list[str]
    orders: int
    concurrency: int
    run_id: str
    results: dict[str, Figures] = field(default_factory=dict)
    drained: dict[str, float] = field(default_factory=dict, repr=False)  # CPU seconds of the last drain

    def email(self, tag: str) -> str:
        """Return the e-mail address that marks the orders of one scenario of this run."""
        return f"{tag}.{self.run_id}@bench.example.org"

    def _requests(self, email: str) -> Callable[[], bytes]:
        """Return a function giving the bytes of a one-line order of a random product, built once per SKU."""
        built = [
            post_request(
                "127.0.0.1",
                self.stack.port,
                "/api/orders",
                json.dumps({"email": email, "lines": [{"sku": sku, "quantity": 1}]}).encode(),
            )
            for sku in self.skus
        ]
        return lambda: random.choice(built)

    def _deadline(self, n: int) -> float:
        """Return the seconds ``n`` orders may take to become final."""
        return max(120.0, n / 10)

    def warm_up(self, n: int) -> None:
        """Prove the running pipeline with a probe, and send ``n`` untimed orders through HTTP."""
        tag = f"warmup-{self.stack.starts}"
        db.probe(self.email(f"probe-{self.stack.starts}"), self.skus[0])
        asyncio.run(closed_loop("127.0.0.1", self.stack.port, self._requests(self.email(tag)), n, self.concurrency))
        self._settle(self.email(tag), n)

    def configure(self, scenario: Scenario, running: bool | None = None) -> None:
        """Bring the processes to the scenario's configuration; warm up a new web server, probe a new pipeline."""
        running = scenario.pipeline if running is None else running
        web = self.stack.start_web(scenario.env)
        if web:
            self.stack.pipeline(True, scenario.env, scenario.workers)
            self.warm_up(min(200, self.orders))
        changed = self.stack.pipeline(running, scenario.env, scenario.workers)
        if changed and running and not web:
            db.probe(self.email(f"probe-{self.stack.starts}"), self.skus[0])

    def run(self, scenario: Scenario, tag: str = "") -> Figures:
        """Run one scenario closed-loop and return its figures; leave the system idle with every order final.

        ``tag`` marks this run's orders (default: the scenario's name); each run of a scenario needs its own.
        """
        self.configure(scenario)
        email = self.email(tag or scenario.name)
        load, not_final, used, _ = self._measure(scenario, email, self.orders, None)
        figures = self._figures(scenario.name, scenario, load, db.outcome(email), self.orders, not_final, None)
        figures.cpu_ms = {group: round(s * 1000 / max(load.accepted, 1), 2) for group, s in used.items()}
        if self.drained:
            figures.drain_cpu_ms = {g: round(s * 1000 / max(load.accepted, 1), 2) for g, s in self.drained.items()}
        self.results[scenario.name] = figures
        return figures

    def paced(self, scenario: Scenario, tag: str, rate: float, seconds: float) -> Figures:
        """Offer ``rate`` orders/s for ``seconds`` (open loop) in the scenario's configuration; return the figures."""
        self.configure(scenario, running=True)
        email, n = self.email(tag), max(1, round(rate * seconds))
        load, not_final, used, backlog = self._measure(scenario, email, n, rate)
        figures = self._figures(tag, scenario, load, db.outcome(email), n, not_final, rate)
        figures.backlog = backlog
        figures.cpu_ms = {group: round(s * 1000 / max(load.accepted, 1), 2) for group, s in used.items()}
        return figures

    def _measure(
        self, scenario: Scenario, email: str, n: int, rate: float | None
    ) -> tuple[LoadResult, int, dict[str, float], int]:
        """Drive the load and wait for every order's end.

        Return the load, the orders not final at the deadline, the CPU used,
        and the orders not final yet when the load ended (the backlog). CPU
        counts until the pipeline is idle again, or, when it did not run
        during the load, until the load's end (its start-up is not the web path's cost).
        """
        before = cpu.snapshot(self.stack.sessions())
        load = self._drive(scenario, email, n, rate)
        backlog = db.pending_count(email)
        self.stack.check_alive()
        after = None if scenario.pipeline else cpu.snapshot(self.stack.sessions())
        self.stack.pipeline(True, scenario.env, scenario.workers)  # no-op if it runs
        ready = None
        if after is not None:  # the backlog drains: how much CPU does it take, start-up aside?
            self.stack.wait_pipeline_ready(len(settings.EVENT_CONSUMERS))
            ready = cpu.snapshot(self.stack.sessions())
        not_final = self._settle(email, n)
        done = cpu.snapshot(self.stack.sessions())
        self.drained = cpu.used(ready, done) if ready else {}
        return load, not_final, cpu.used(before, after or done), backlog

    def _drive(self, scenario: Scenario, email: str, n: int, rate: float | None) -> LoadResult:
        """Place ``n`` orders of ``email`` the scenario's way, paced at ``rate`` if given."""
        if scenario.load == "service":
            return threads_loop(lambda: db.place(email, random.choice(self.skus)), n, self.concurrency)
        requests, port = self._requests(email), self.stack.port
        if rate:
            return asyncio.run(open_loop("127.0.0.1", port, requests, n, rate, self.concurrency))
        return asyncio.run(closed_loop("127.0.0.1", port, requests, n, self.concurrency))

    def _settle(self, email: str, n: int) -> int:
        """Wait until the orders of ``email`` are final and the pipeline idle; return how many are not final."""
        not_final = db.wait_final(email, self._deadline(n))
        if not db.quiesce(QUIESCE_TIMEOUT):
            print(f"warning: outbox or consumers still busy after {QUIESCE_TIMEOUT:.0f}s", flush=True)
        return not_final

    def _figures(
        self,
        name: str,
        scenario: Scenario,
        load: LoadResult,
        out: db.Outcome,
        n: int,
        not_final: int,
        rate: float | None,
    ) -> Figures:
        if out.orders > n:
            raise BenchError(f"{name}: {out.orders} orders carry its tag but {n} were sent: tags must be unique")
        timed = scenario.pipeline and out.final > 0
        lat, answers = sorted(out.latencies) if timed else [], sorted(load.latencies)
        return Figures(
            name=name,
            about=scenario.about,
            orders=n,
            accepted=load.accepted,
            errors=load.errors,
            load_seconds=round(load.seconds, 3),
            accepted_per_s=round(load.accepted / load.seconds, 1),
            end_to_end_per_s=round(out.final / _span(out.first_created, out.last_final), 1) if timed else None,
            p50_ms=_ms(lat, 50),
            p95_ms=_ms(lat, 95),
            p99_ms=_ms(lat, 99),
            answer_p50_ms=_ms(answers, 50),
            answer_p99_ms=_ms(answers, 99),
            not_final=not_final,
            rejected=out.rejected,
            env=dict(scenario.env),
            workers=scenario.workers,
            rate=round(rate, 1) if rate else None,
            first_error=load.first_error,
            drain_per_s=None
            if scenario.pipeline or not out.final
            else round(out.final / _span(out.first_final, out.last_final), 1),
        )


def _span(start: datetime, end: datetime) -> float:
    """Return the seconds from ``start`` to ``end``, never zero."""
    return max((end - start).total_seconds(), 1e-3)
