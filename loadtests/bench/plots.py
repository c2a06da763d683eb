"""The lab's plots, as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402

from .ceilings import Ceilings  # noqa: E402
from .ladder import Ladder  # noqa: E402
from .reads import ReadFigures  # noqa: E402
from .scenarios import BASELINE, Figures  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scenarios(results: list[Figures], path: Path) -> Path:
    """Draw the end-to-end orders/s and p50/p99 place → final of each scenario, the baseline first."""
    timed = [f for f in results if f.end_to_end_per_s]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.5 * len(results) + 2))
    names = [f.name for f in results][::-1]
    rates = [(f.end_to_end_per_s or f.accepted_per_s) for f in results][::-1]
    colors = ["tab:gray" if not f.end_to_end_per_s else "tab:blue" for f in results][::-1]
    left.barh(names, rates, color=colors)
    base = next((f.end_to_end_per_s for f in results if f.name == BASELINE), None)
    for y, (f, rate) in enumerate(zip(results[::-1], rates, strict=True)):
        label = f"{rate:,.0f}" + (f"  x{rate / base:.2f}" if base and f.end_to_end_per_s else "  accepted/s")
        left.text(rate, y, " " + label, va="center", fontsize=8)
    left.set_xlabel("orders/s end to end (grey: accepted/s, no pipeline)")
    left.set_xlim(0, max(rates) * 1.35)
    left.set_title("Throughput at saturation (closed loop)")
    tnames = [f.name for f in timed][::-1]
    right.barh([n + " p99" for n in tnames], [f.p99_ms for f in timed][::-1], color="tab:red", alpha=0.6)
    right.barh([n + " p50" for n in tnames], [f.p50_ms for f in timed][::-1], color="tab:green", alpha=0.6)
    right.set_xscale("log")
    right.set_xlabel("place → final, ms (log)")
    right.set_title("Latency at saturation (mostly queueing)")
    return _save(fig, path)


def ladder(ladders: list[Ladder], path: Path) -> Path:
    """Draw end-to-end orders/s and p50/p99 latency against the offered rate, the knee marked."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for i, ld in enumerate(ladders):
        offered, color = [s.rate for s in ld.steps], f"C{i}"  # one colour per scenario
        top.plot(offered, [s.end_to_end_per_s or 0 for s in ld.steps], "o-", color=color, label=ld.scenario)
        bottom.plot(offered, [s.p50_ms for s in ld.steps], "o-", color=color, label=f"{ld.scenario}: p50")
        bottom.plot(offered, [s.p99_ms for s in ld.steps], "s--", color=color, alpha=0.7, label=f"{ld.scenario}: p99")
        if ld.knee:
            top.plot([ld.knee], [ld.knee_end_to_end or 0], "*", color=color, markersize=14)
            top.annotate(f"{ld.scenario} knee {ld.knee:.0f}/s", (ld.knee, ld.knee_end_to_end or 0),
                         textcoords="offset points", xytext=(8, -14 - 11 * i), fontsize=8, color=color)  # fmt: skip
    top_rate = max((s.rate or 0) for ld in ladders for s in ld.steps) or 1
    top.plot([0, top_rate], [0, top_rate], color="tab:gray", linewidth=0.8, label="offered = done")
    top.set_ylabel("orders/s end to end")
    top.set_title("Saturation ladder: open-loop load, step by step (★ the knee)")
    top.legend(fontsize=8)
    bottom.set_yscale("log")
    bottom.set_ylabel("place → final, ms (log)")
    bottom.set_xlabel("orders/s offered")
    bottom.legend(fontsize=8)
    return _save(fig, path)


def ceilings(knee: float | None, found: Ceilings, path: Path) -> Path:
    """Draw the pipeline's rate beside what PostgreSQL and JetStream alone do (log scale)."""
    bars = [("pipeline at the knee\n(orders/s)", knee, "tab:blue"),
            ("PostgreSQL: order writes\n(pgbench tx/s)", found.pg_orders_per_s, "tab:orange")]  # fmt: skip
    if knee and found.events_per_order:
        bars.append(("pipeline messages/s\n(knee × events/order)", knee * found.events_per_order, "tab:cyan"))
    bars += [("JetStream publish\n(msg/s)", found.js_publish_per_s, "tab:purple"),
             ("JetStream fetch+ack\n(msg/s)", found.js_consume_per_s, "tab:purple")]  # fmt: skip
    bars = [b for b in bars if b[1]]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    for x, (_, value, _) in enumerate(bars):
        ax.text(x, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("per second (log)")
    ax.set_title("The pipeline beside its physical ceilings, same machine")
    ax.tick_params(axis="x", labelsize=8)
    return _save(fig, path)


def reads(results: list[ReadFigures], path: Path) -> Path:
    """Draw the product reads/s and p50/p99 answer time of each read path, the near cache first."""
    names = [f.name for f in results][::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.6 * len(results) + 2))
    rates = [f.per_s for f in results][::-1]
    left.barh(names, rates, color="tab:blue")
    base = results[0].per_s
    for y, rate in enumerate(rates):
        left.text(rate, y, f" {rate:,.0f}" + (f"  x{rate / base:.2f}" if base else ""), va="center", fontsize=8)
    left.set_xlim(0, max(rates) * 1.35 or 1)
    left.set_xlabel("GET /api/products/{sku} per s")
    left.set_title("Stock reads (closed loop)")
    right.barh([n + " p99" for n in names], [f.p99_ms for f in results][::-1], color="tab:red", alpha=0.6)
    right.barh([n + " p50" for n in names], [f.p50_ms for f in results][::-1], color="tab:green", alpha=0.6)
    right.set_xlabel("answer time, ms")
    right.set_title("Latency of a product read")
    return _save(fig, path)
