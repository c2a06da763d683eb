"""One phase of the chaos run: steady load, one fault, then the history checked and the recovery timed."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import psycopg

from .faults import Context, Fault
from .history import (
    Verdict,
    check_orders,
    check_stock,
    first_decided_after,
    pending_anywhere,
    projection_differences,
    wait_until,
)
from .load import History, OrderLoad
from .stack import Stack

WARMUP = 1 / 3  # of the phase: load before the fault
DRAIN = 90.0  # seconds for every accepted order to end once the load stops
SETTLE = 30.0  # seconds for the stock projection to catch up with inventory
RESTOCK = 5000  # units received by each SKU before the phases (LTD-001, the scarce lot, keeps its few)
SCARCE = "LTD-001"


@dataclass
class Result:
    """What one fault did to the shop, and whether every check held."""

    fault: Fault
    rate: float
    history: History
    verdict: Verdict
    recovered_s: float | None = None  # fault → the first order sent after it decided
    ready_back_s: float | None = None  # fault → /readyz answering 200 again (0: it never failed)
    notes: list[str] = field(default_factory=list)

    @property
    def recovered(self) -> bool:
        return self.recovered_s is not None and self.ready_back_s is not None and not self.verdict.stuck

    @property
    def ok(self) -> bool:
        return self.recovered and self.verdict.ok


class ReadyWatch:
    """Probe ``/readyz`` every quarter second from a thread; remember each answer's time and verdict."""

    def __init__(self, stack: Stack):
        self.stack, self.samples = stack, []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="readyz", daemon=True)

    def start(self) -> ReadyWatch:
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append((time.time(), self.stack.ready()))
            self.stopping.wait(0.25)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)

    def back_after(self, at: float) -> float | None:
        """Return seconds from ``at`` to /readyz answering 200 after its last failure (0: no failure; None: down)."""
        after = [(t, ok) for t, ok in self.samples if t >= at]
        failures = [t for t, ok in after if not ok]
        if not failures:
            return 0.0
        back = [t for t, ok in after if ok and t > failures[-1]]
        return back[0] - at if back else None


def products(base: str) -> list[str]:
    """Return every SKU of the catalog."""
    skus, page, pages = [], 1, 1
    with httpx.Client(base_url=base, timeout=30) as client:
        while page <= pages:
            body = client.get("/api/products", params={"page": page}).raise_for_status().json()
            skus += [p["sku"] for p in body["items"]]
            page, pages = page + 1, body["pages"]
    return skus


def restock(base: str, token: str, skus: list[str]) -> None:
    """Receive plenty of every SKU but the scarce lot, so the phases confirm orders (and reject some)."""
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        for sku in skus:
            if sku != SCARCE:
                client.post(f"/api/inventory/{sku}/restock", json={"quantity": RESTOCK}).raise_for_status()


def run_fault(stack: Stack, fault: Fault, skus: list[str], seconds: float, rate: float, say=print) -> Result:
    """Load the stack, inject ``fault`` a third of the way in, then check the phase's history."""
    ctx = Context(stack, seconds)
    load = OrderLoad(stack.url, skus, fault.name, rate).start()
    watch = ReadyWatch(stack).start()
    try:
        time.sleep(seconds * WARMUP)
        at = time.time()
        say(f"  {fault.name}: {fault.title}")
        fault.inject(ctx)
        time.sleep(max(0.0, load.history.started + seconds - time.time()))
    except BaseException:
        load.abort()
        watch.stop()
        raise
    history = load.stop()
    wait_until(stack.ready, 60)
    watch.stop()
    result = Result(fault, rate, history, Verdict(), notes=ctx.notes)
    result.ready_back_s = watch.back_after(at)
    if result.ready_back_s is None and stack.ready():
        result.ready_back_s = time.time() - at
    _check(stack, ctx, result, at)
    return result


def _check(stack: Stack, ctx: Context, result: Result, at: float) -> None:
    verdict = result.verdict
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        wait_until(lambda: pending_anywhere(conn) == 0, DRAIN)
        decided = first_decided_after(conn, result.history.email, at)
        result.recovered_s = max(0.0, decided - at) if decided is not None else None
        check_orders(conn, result.history, verdict)
        check_stock(conn, verdict)
        wait_until(lambda: not projection_differences(conn), SETTLE)
        verdict.projection = verdict.note("SKUs whose projection differs from the stock", projection_differences(conn))
    if result.fault.check is not None:
        result.fault.check(ctx, verdict)
    for args in (("verify_invariants",), ("rebuild_projections", "--check")):
        done = stack.manage(*args)
        if done.returncode != 0:
            verdict.problems.append(f"{' '.join(args)} failed: {(done.stdout + done.stderr).strip()[-300:]}")
