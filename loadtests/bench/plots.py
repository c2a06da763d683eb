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
    """Draw each lever's end-to-end orders/s, p50 and p99 against the offered rate, its knee and half-knee marked."""
    fig, (rate, p50, p99) = plt.subplots(3, 1, figsize=(8, 10), sharex=True)
    for i, ld in enumerate(ladders):
        offered, color = [s.rate for s in ld.steps], f"C{i}"  # one colour per lever
        rate.plot(offered, [s.end_to_end_per_s or 0 for s in ld.steps], "o-", color=color, label=ld.scenario)
        p50.plot(offered, [s.p50_ms for s in ld.steps], "o-", color=color, label=ld.scenario)
        p99.plot(offered, [s.p99_ms for s in ld.steps], "o-", color=color, label=ld.scenario)
        if ld.knee:
            rate.plot([ld.knee], [ld.knee_end_to_end or 0], "*", color=color, markersize=14)
            rate.annotate(
                f"{ld.scenario} knee {ld.knee:.0f}/s",
                (ld.knee, ld.knee_end_to_end or 0),
                textcoords="offset points",
                xytext=(8, -14 - 11 * i),
                fontsize=8,
                color=color,
            )
        if ld.half_knee:
            p50.plot([ld.half_knee.rate], [ld.half_knee.p50_ms], "D", color=color, markerfacecolor="none")
            p99.plot([ld.half_knee.rate], [ld.half_knee.p99_ms], "D", color=color, markerfacecolor="none")
    top_rate = max((s.rate or 0) for ld in ladders for s in ld.steps) or 1
    rate.plot([0, top_rate], [0, top_rate], color="tab:gray", linewidth=0.8, label="offered = done")
    rate.set_ylabel("orders/s end to end")
    rate.set_title("Saturation ladder of each lever, open loop (★ knee, ◇ half the knee)")
    rate.legend(fontsize=8)
    for ax, name in ((p50, "p50"), (p99, "p99")):
        ax.set_yscale("log")
        ax.set_ylabel(f"place → final {name}, ms (log)")
    p99.set_xlabel("orders/s offered")
    return _save(fig, path)


def ceilings(knee: float | None, found: Ceilings, path: Path) -> Path:
    """Draw the pipeline's rate beside what PostgreSQL and JetStream alone do (log scale)."""
    bars = [
        ("pipeline at the knee\n(orders/s)", knee, "tab:blue"),
        ("PostgreSQL: order writes\n(pgbench tx/s)", found.pg_orders_per_s, "tab:orange"),
    ]
    if knee and found.events_per_order:
        bars.append(("pipeline messages/s\n(knee × events/order)", knee * found.events_per_order, "tab:cyan"))
    bars += [
        ("JetStream publish\n(msg/s)", found.js_publish_per_s, "tab:purple"),
        ("JetStream fetch+ack\n(msg/s)", found.js_consume_per_s, "tab:purple"),
    ]
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
