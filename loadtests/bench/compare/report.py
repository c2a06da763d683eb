"""The comparison's output: one table with ratios to the lab stack, ``compare.png``, JSON and the docs block."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from ..report import machine_line  # noqa: E402
from .run import LAB, System  # noqa: E402

DOCS_BEGIN, DOCS_END = "<!-- compare:begin -->", "<!-- compare:end -->"


def _n(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _x(value: float | None, base: float | None) -> str:
    return f" (x{value / base:.2f})" if value is not None and base else ""


def _pair(closed: int | None, opened: int | None) -> str:
    return f"{'–' if closed is None else closed} / {'–' if opened is None else opened}"


def table(systems: list[System]) -> str:
    """Return the markdown table: a row a system, each figure with its ratio to the project on the lab stack."""
    lab = next((s for s in systems if s.name == LAB), None)
    rate = next((s.open.rate for s in systems if s.open), None)
    base_rate = lab.closed.confirmed_per_s if lab and lab.closed else None
    base = lab.open if lab else None
    rows = [
        f"| system | runs on | closed loop: confirmed orders/s | closed: place → final p99 ms | open loop at "
        f"{rate or 0:g}/s: p50 ms | p90 ms | p99 ms | max ms | not final (closed / open) | errors (closed / open) "
        "| rejected (closed / open) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in systems:
        c, o = s.closed, s.open
        cells = [
            _n(c.confirmed_per_s if c else None) + _x(c.confirmed_per_s if c else None, base_rate),
            _n(c.p99_ms if c else None),
            *(
                _n(getattr(o, k) if o else None) + _x(getattr(o, k) if o else None, getattr(base, k) if base else None)
                for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")
            ),
            _pair(c and c.not_final, o and o.not_final),
            _pair(c and c.errors, o and o.errors),
            _pair(c and c.rejected, o and o.rejected),
        ]
        rows.append(f"| {s.name} | {s.runs_on} | {' | '.join(cells)} |")
    return "\n".join(rows)


def notes(systems: list[System]) -> list[str]:
    """Return the facts a reader of the table needs that do not fit in it."""
    out = [n for s in systems for n in s.notes]
    for s in systems:
        if s.hops and s.open:
            hops = ", ".join(f"{hop} {p50:g} / {p99:g}" for hop, (p50, p99) in s.hops.items())
            out.append(
                f"{s.name}, open loop, where the time went (p50 / p99 ms): the request until its 202 "
                f"{_n(s.open.answer_p50_ms)} / {_n(s.open.answer_p99_ms)}, then per hop (ops page, "
                f"docs/observability.md) {hops}"
            )
    for s in systems:
        for step in (s.closed, s.open):
            if step and step.not_final:
                out.append(f"{s.name}, {step.kind} loop: {step.not_final} accepted orders not final at the deadline")
    return out


def plot(systems: list[System], path: Path) -> Path:
    """Draw each system's confirmed orders/s (closed loop) and open-loop p50/p90/p99 (log scale)."""
    names = [s.name for s in systems][::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.7 * len(systems) + 2))
    rates = [(s.closed.confirmed_per_s or 0) if s.closed else 0 for s in systems][::-1]
    left.barh(names, rates, color=["tab:blue" if s.name.startswith("project") else "tab:gray" for s in systems][::-1])
    lab = next((s for s in systems if s.name == LAB and s.closed), None)
    base = lab.closed.confirmed_per_s if lab else None
    for y, r in enumerate(rates):
        left.text(r, y, f" {r:,.0f}" + (f"  x{r / base:.2f}" if base else ""), va="center", fontsize=8)
    left.set_xlim(0, max(rates + [1]) * 1.35)
    left.set_xlabel("confirmed orders/s")
    left.set_title("Saturation (closed loop)")
    height = 0.25
    for i, (key, color) in enumerate((("p50_ms", "tab:green"), ("p90_ms", "tab:orange"), ("p99_ms", "tab:red"))):
        values = [(getattr(s.open, key) or 0) if s.open else 0 for s in systems][::-1]
        ys = [y + (i - 1) * height for y in range(len(systems))]
        right.barh(ys, values, height=height, color=color, label=key.removesuffix("_ms"))
        for y, v in zip(ys, values, strict=True):
            right.text(v, y, f" {v:.1f}" if v else "", va="center", fontsize=7)
    right.set_yticks(range(len(systems)), names)
    right.set_xscale("log")
    right.xaxis.set_minor_formatter(NullFormatter())  # the minor labels of a log axis overlap
    rate = next((s.open.rate for s in systems if s.open), None)
    right.set_xlabel("scheduled send → final, ms (log)")
    right.set_title(f"Latency at {rate or 0:g} orders/s offered (open loop)")
    right.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown(info: dict, options: dict, systems: list[System], plot_link: str | None) -> str:
    """Return the comparison's block of docs/benchmarks.md, between its markers."""
    out = [
        DOCS_BEGIN,
        "",
        f"Generated by `make bench` on {options['date']} (`{options['command']}`).",
        "",
        f"Machine: {machine_line(info)}. Every system and the load generator on this one box, one at a time.",
        "",
        f"Closed loop: {options['orders']} orders of 1–2 lines (quantity 1 each) from {options['concurrency']} "
        "clients; confirmed orders/s from the first order placed to the last one decided. Open loop: "
        f"{options['open_rate']:g} orders/s offered for {options['open_seconds']:g} s on a fixed schedule; latency "
        "from each order's scheduled send to the `at` of its final timeline entry. Ratios are to "
        f"`{LAB}` (the project on the lab's stack) of the same invocation.",
        "",
        table(systems),
    ]
    out += [f"\n- {line}" if i == 0 else f"- {line}" for i, line in enumerate(notes(systems))]
    if plot_link:
        out += ["", f"![confirmed orders/s and open-loop latency of each system]({plot_link})"]
    return "\n".join([*out, "", DOCS_END])


def write_json(path: Path, info: dict, options: dict, systems: list[System]) -> Path:
    """Write the comparison to ``path`` as JSON and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"machine": info, "options": options, "systems": [asdict(s) for s in systems]}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
