"""The comparison from start to end: each system in turn, the same two steps, one at a time on the machine."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from ..stack import BenchError
from . import devstack
from .steps import Step, closed_step, open_step
from .targets import Target, catalog, choose, top_up

LAB, DEVSTACK = "project-lab", "project-devstack"  # the project's own rows; no --against may take these names
WARM_UP = 200  # untimed orders first, on every system: connections, pools and caches warm


@dataclass
class System:
    """One system's figures: the closed-loop and open-loop steps, and what the reader must know about them."""

    name: str
    runs_on: str
    url: str
    closed: Step | None = None
    open: Step | None = None
    notes: list[str] = field(default_factory=list)
    # The project on the lab's stack: {hop: (p50 ms, p99 ms)} of the open loop's orders, from the event tables.
    hops: dict[str, tuple[float, float]] | None = None


async def _measure(target: Target, args: argparse.Namespace, run_id: str, say) -> System:
    system = System(target.name, target.runs_on, target.url)
    open_n = max(1, round(args.open_rate * args.open_seconds))
    warm = min(WARM_UP, args.orders)
    try:
        products = await catalog(target)
    except (OSError, EOFError, ValueError, TimeoutError, RuntimeError) as exc:
        raise BenchError(f"{target.name} at {target.url} cannot be read ({exc!r}): is it running?") from exc
    if not products:
        raise BenchError(f"{target.name} at {target.url}: GET /api/products lists no product")
    skus = choose(products)
    system.notes += await top_up(target, products, skus, warm + args.orders + open_n)

    def email(step: str) -> str:
        return f"compare-{target.name}-{step}.{run_id}@bench.example.org"

    say(f"{target.name}: {warm} orders to warm up, on {len(skus)} products")
    await closed_step(target.address, skus, email("warmup"), warm, args.concurrency)
    say(f"{target.name}: closed loop, {args.orders} orders from {args.concurrency} clients")
    system.closed = await closed_step(target.address, skus, email("closed"), args.orders, args.concurrency)
    say(f"{target.name}: {system.closed.confirmed_per_s} confirmed/s, {system.closed.errors} errors")
    say(f"{target.name}: open loop, {args.open_rate:g} orders/s for {args.open_seconds:g}s")
    system.open = await open_step(target.address, skus, email("open"), args.open_rate, args.open_seconds)
    o = system.open
    say(f"{target.name}: p50 {o.p50_ms} ms, p99 {o.p99_ms} ms, max {o.max_ms} ms, {o.not_final} not final")
    if target.name == LAB:  # its database is the bench's own: where the open loop's time went, hop by hop
        from ..db import hop_quantiles  # imports the apps: only once Django is set up

        system.hops = await asyncio.to_thread(hop_quantiles, o.accepted)
        say(f"{target.name}: per hop p50/p99 ms: " + ", ".join(f"{h} {a}/{b}" for h, (a, b) in system.hops.items()))
    for step in (system.closed, system.open):
        if step.errors:
            system.notes.append(f"{target.name}, {step.kind} loop: {step.errors} errors, the first: {step.first_error}")
    return system


def measure(target: Target, args: argparse.Namespace, run_id: str, say=print) -> System:
    """Run the warm-up, the closed-loop and the open-loop step against one system; return its figures."""
    return asyncio.run(_measure(target, args, run_id, say))


def lab(port: int, args: argparse.Namespace, run_id: str, say=print) -> System:
    """Measure the project on the lab's stack (running, in the baseline's configuration, on ``port``)."""
    return measure(Target(LAB, f"http://127.0.0.1:{port}", "lab stack"), args, run_id, say)


def others(args: argparse.Namespace, env: dict[str, str], log_dir: Path, run_id: str, say=print) -> list[System]:
    """Measure a devstack (with ``--devstack``) and each ``--against`` system, one after the other."""
    systems = []
    if args.devstack:
        with devstack.running(log_dir, env, say) as target:
            renamed = Target(DEVSTACK, target.url, "devstack (as `make demo`)", target.token)
            systems.append(measure(renamed, args, run_id, say))
    tokens = dict(args.against_token)
    for name, url in args.against:
        systems.append(measure(Target(name, url.rstrip("/"), url, tokens.get(name, "")), args, run_id, say))
    return systems
