"""The stock read path lever: a product's stock read through the near cache, or from the database.

Orders do not read stock levels, so this lever has its own load: closed-loop
``GET /api/products/{sku}`` of random bench products, against the same web
server configuration as the baseline, once with each web process's near cache
fed from NATS (``shop/live.py``, the default) and once with the feed off
(``LIVE_FEED=0``: every read goes to the shop's ``StockLevel`` projection).
CPU is counted for the web processes and PostgreSQL, per request.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ..stats import percentile
from . import cpu
from .load import closed_loop, get_request
from .scenarios import Bench

VARIANTS = [
    ("near-cache", "stock levels from each web process's near cache, fed by core NATS", {}),
    ("database", "the near cache off (LIVE_FEED=0): every read queries the projection", {"LIVE_FEED": "0"}),
]


@dataclass
class ReadFigures:
    """What one variant of the read path did."""

    name: str
    about: str
    env: dict[str, str]
    requests: int
    errors: int
    per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms: dict[str, float] = field(default_factory=dict)  # web and postgres, per request
    round_rates: list[float] = field(default_factory=list)


def measure(bench: Bench, n: int, rounds: int, say: Callable[[str], None]) -> list[ReadFigures]:
    """Run each variant ``rounds`` times (A B, B A, …); keep each one's best round, with every round's rate."""
    runs: dict[str, list[ReadFigures]] = {}
    for r in range(rounds):
        for name, about, env in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            say(f"read path {name} (round {r + 1} of {rounds}): {about}")
            runs.setdefault(name, []).append(_run(bench, name, about, env, n))
    best = []
    for name, _, _ in VARIANTS:
        found = runs[name]
        top = max(found, key=lambda f: f.per_s)
        top.round_rates = [f.per_s for f in found]
        best.append(top)
    return best


def _run(bench: Bench, name: str, about: str, env: dict[str, str], n: int) -> ReadFigures:
    stack = bench.stack
    stack.start_web(env)
    port = stack.port
    built = [get_request("127.0.0.1", port, f"/api/products/{sku}") for sku in bench.skus]

    def requests() -> bytes:
        return random.choice(built)

    asyncio.run(closed_loop("127.0.0.1", port, requests, min(n, 500), bench.concurrency, ok=200))  # warm up
    before = cpu.snapshot(stack.sessions())
    load = asyncio.run(closed_loop("127.0.0.1", port, requests, n, bench.concurrency, ok=200))
    used = cpu.used(before, cpu.snapshot(stack.sessions()))
    lat = sorted(load.latencies)
    return ReadFigures(
        name=name,
        about=about,
        env=dict(env),
        requests=load.accepted,
        errors=load.errors,
        per_s=round(load.accepted / load.seconds, 1),
        p50_ms=round(percentile(lat, 0.5) * 1000, 2) if lat else 0.0,
        p99_ms=round(percentile(lat, 0.99) * 1000, 2) if lat else 0.0,
        cpu_ms={g: round(used[g] * 1000 / max(load.accepted, 1), 3) for g in ("web", "postgres")},
    )


def _ratio(value: float, base: float) -> str:
    return f"x{value / base:.2f}" if base else "–"


def rows(results: list[ReadFigures]) -> list[list[str]]:
    """Return the header and one row per variant, ratios to the first (the near cache)."""
    base = results[0]
    head = [
        "read path",
        "GET /api/products/{sku} per s",
        "rounds",
        "p50 ms",
        "p99 ms",
        "CPU ms/request web",
        "CPU ms/request postgres",
        "errors",
    ]
    out = [head]
    for f in results:
        out.append(
            [
                f.name,
                f"{f.per_s:,.0f} ({_ratio(f.per_s, base.per_s)})",
                " / ".join(f"{r:,.0f}" for r in f.round_rates),
                f"{f.p50_ms} ({_ratio(f.p50_ms, base.p50_ms)})",
                f"{f.p99_ms} ({_ratio(f.p99_ms, base.p99_ms)})",
                f"{f.cpu_ms.get('web', 0):.2f}",
                f"{f.cpu_ms.get('postgres', 0):.2f}",
                str(f.errors),
            ]
        )
    return out


def table(results: list[ReadFigures]) -> str:
    """Return the read-path figures as a text table."""
    data = rows(results)
    widths = [max(len(r[i]) for r in data) for i in range(len(data[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in data]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(results: list[ReadFigures], concurrency: int, plot: str = "") -> str:
    """Return the read-path section of docs/benchmarks.md, with the plot at ``plot`` (a relative link) if given."""
    data = rows(results)
    lines = [
        "### Stock read path: near cache or database",
        "",
        f"Closed loop, {results[0].requests + results[0].errors} `GET /api/products/{{sku}}` a variant, "
        f"{concurrency} connections, the same web server as the baseline. Ratios are to the near cache.",
        "",
        "| " + " | ".join(data[0]) + " |",
        "|" + "---|" * len(data[0]),
        *("| " + " | ".join(r) + " |" for r in data[1:]),
    ]
    if plot:
        lines += ["", f"![stock reads through the near cache or the database]({plot})"]
    return "\n".join(lines)
