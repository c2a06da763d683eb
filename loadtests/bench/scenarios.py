"""The scenarios of the bench and how one is run: load, wait for every order's end, read the figures."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from . import cpu, db
from .load import LoadResult, closed_loop, open_loop, post_request, threads_loop
from .stack import BenchError, Stack

QUIESCE_TIMEOUT = 120.0  # seconds for the outbox and the consumers to empty between scenarios


@dataclass(frozen=True)
class Scenario:
    """One way of placing orders: through HTTP, the service, or paced HTTP; with or without the pipeline."""

    name: str
    about: str
    load: str  # "http" (closed loop), "service" (threads in-process) or "paced" (open loop)
    pipeline: bool = True  # relay and workers running during the load
    batch_size: int = 100  # EVENT_BATCH_SIZE of the workers


SCENARIOS = [
    Scenario("main", "HTTP POST /api/orders through web, relay and workers", "http"),
    Scenario("service", "shop.services.order_place from C threads in-process, no HTTP", "service"),
    Scenario("acceptance-only", "the main HTTP load with relay and workers stopped", "http", pipeline=False),
    Scenario("batch-1", "like main, workers fetch and commit one event at a time", "http", batch_size=1),
    Scenario("half-rate", "N/2 orders sent at a fixed 50% of main's end-to-end rate", "paced"),
]


@dataclass
class Figures:
    """The measured figures of one scenario (None where they do not apply)."""

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
    batch_size: int
    rate: float | None = None  # half-rate: the orders/s it was paced at
    rate_from: str = ""  # and where that rate came from
    drain_per_s: float | None = None  # acceptance-only: the backlog's pace once relay and workers start
    first_error: str = ""
    # CPU ms per accepted order and process group, from load start to every order final and the pipeline idle
    # (acceptance-only: the load phase alone, since relay and workers do not run in it).
    cpu_ms: dict[str, float] = field(default_factory=dict)


def percentile(ordered: list[float], p: float) -> float:
    """Return the nearest-rank ``p``-th percentile of sorted values."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _ms(ordered: list[float], p: float) -> float | None:
    return round(percentile(ordered, p) * 1000, 1) if ordered else None


@dataclass
class Bench:
    """One bench run: the processes, the catalog, the options, and the figures so far."""

    stack: Stack
    skus: list[str]
    orders: int
    concurrency: int
    run_id: str
    rate: float | None = None
    results: dict[str, Figures] = field(default_factory=dict)

    def email(self, tag: str) -> str:
        """Return the e-mail address that marks the orders of one scenario of this run."""
        return f"{tag}.{self.run_id}@bench.example.org"

    def _requests(self, email: str) -> Callable[[], bytes]:
        """Return a function giving the bytes of a one-line order of a random product, built once per SKU."""
        built = [
            post_request("127.0.0.1", self.stack.port, "/api/orders",
                         json.dumps({"email": email, "lines": [{"sku": sku, "quantity": 1}]}).encode())
            for sku in self.skus
        ]  # fmt: skip
        return lambda: random.choice(built)

    def _deadline(self, n: int) -> float:
        """Return the seconds ``n`` orders may take to become final."""
        return max(120.0, n / 10)

    def warm_up(self) -> None:
        """Start the pipeline, prove it with a probe, and send a few untimed orders through HTTP."""
        self.stack.pipeline(True)
        db.probe(self.email("probe"), self.skus[0])
        n = min(200, self.orders)
        asyncio.run(
            closed_loop("127.0.0.1", self.stack.port, self._requests(self.email("warmup")), n, self.concurrency)
        )
        self._settle(self.email("warmup"), n)

    def run(self, scenario: Scenario) -> Figures:
        """Run one scenario and return its figures; leave the system idle with every order final."""
        if self.stack.pipeline(scenario.pipeline, scenario.batch_size) and scenario.pipeline:
            db.probe(self.email(f"probe-{scenario.name}"), self.skus[0])
        email = self.email(scenario.name)
        n, rate = self._size(scenario)
        load, not_final, used = self._measure(scenario, email, n, rate)
        figures = self._figures(scenario, load, db.outcome(email), n, not_final, rate)
        figures.rate_from = ("--rate" if self.rate else "50% of main's end-to-end rate") if rate else ""
        figures.cpu_ms = {group: round(s * 1000 / max(load.accepted, 1), 2) for group, s in used.items()}
        self.results[scenario.name] = figures
        return figures

    def _measure(
        self, scenario: Scenario, email: str, n: int, rate: float | None
    ) -> tuple[LoadResult, int, dict[str, float]]:
        """Drive the load and wait for every order's end; return the load, the orders not final, the CPU used.

        CPU counts until the pipeline is idle again, or, when it did not run
        during the load, until the load's end (its start-up is not the web path's cost).
        """
        before = cpu.snapshot(self.stack.sessions())
        load = self._drive(scenario, email, n, rate)
        self.stack.check_alive()
        after = None if scenario.pipeline else cpu.snapshot(self.stack.sessions())
        self.stack.pipeline(True, scenario.batch_size if scenario.pipeline else 100)  # no-op if it runs
        not_final = self._settle(email, n)
        after = after or cpu.snapshot(self.stack.sessions())
        return load, not_final, cpu.used(before, after)

    def _size(self, scenario: Scenario) -> tuple[int, float | None]:
        """Return the number of orders of a scenario and, for paced load, its rate."""
        if scenario.load != "paced":
            return self.orders, None
        main = self.results.get("main")
        rate = self.rate or (main.end_to_end_per_s / 2 if main and main.end_to_end_per_s else None)
        if not rate:
            raise BenchError("half-rate needs the main scenario in the same run, or --rate")
        return max(1, self.orders // 2), rate

    def _drive(self, scenario: Scenario, email: str, n: int, rate: float | None) -> LoadResult:
        """Place ``n`` orders of ``email`` the scenario's way."""
        if scenario.load == "service":
            return threads_loop(lambda: db.place(email, random.choice(self.skus)), n, self.concurrency)
        requests, port = self._requests(email), self.stack.port
        if scenario.load == "paced":
            return asyncio.run(open_loop("127.0.0.1", port, requests, n, rate, self.concurrency))
        return asyncio.run(closed_loop("127.0.0.1", port, requests, n, self.concurrency))

    def _settle(self, email: str, n: int) -> int:
        """Wait until the orders of ``email`` are final and the pipeline idle; return how many are not final."""
        not_final = db.wait_final(email, self._deadline(n))
        if not db.quiesce(QUIESCE_TIMEOUT):
            print(f"warning: outbox or consumers still busy after {QUIESCE_TIMEOUT:.0f}s", flush=True)
        return not_final

    def _figures(
        self, scenario: Scenario, load: LoadResult, out: db.Outcome, n: int, not_final: int, rate: float | None
    ) -> Figures:
        timed = scenario.pipeline and out.final > 0
        lat, answers = sorted(out.latencies) if timed else [], sorted(load.latencies)
        return Figures(
            name=scenario.name, about=scenario.about, orders=n, accepted=load.accepted, errors=load.errors,
            load_seconds=round(load.seconds, 3), accepted_per_s=round(load.accepted / load.seconds, 1),
            end_to_end_per_s=round(out.final / _span(out.first_created, out.last_final), 1) if timed else None,
            p50_ms=_ms(lat, 50), p95_ms=_ms(lat, 95), p99_ms=_ms(lat, 99),
            answer_p50_ms=_ms(answers, 50), answer_p99_ms=_ms(answers, 99),
            not_final=not_final, rejected=out.rejected, batch_size=scenario.batch_size,
            rate=round(rate, 1) if rate else None, first_error=load.first_error,
            drain_per_s=None if scenario.pipeline or not out.final
            else round(out.final / _span(out.first_final, out.last_final), 1),
        )  # fmt: skip


def _span(start: datetime, end: datetime) -> float:
    """Return the seconds from ``start`` to ``end``, never zero."""
    return max((end - start).total_seconds(), 1e-3)
