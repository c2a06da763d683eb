"""The bench's output: the machine it ran on, a table of figures with ratios to main, a JSON file."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from pathlib import Path

from .cpu import GROUPS
from .scenarios import Figures

# (heading, Figures attribute, show the ratio to main)
COLUMNS = [
    ("accepted/s", "accepted_per_s", True),
    ("end-to-end/s", "end_to_end_per_s", True),
    ("p50 ms", "p50_ms", True),
    ("p95 ms", "p95_ms", True),
    ("p99 ms", "p99_ms", True),
    ("answer p50 ms", "answer_p50_ms", False),
    ("answer p99 ms", "answer_p99_ms", False),
]


def machine(pg_version: str) -> dict:
    """Return what the figures depend on: CPUs, CPU model, Python and PostgreSQL versions."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "postgresql": pg_version,
    }


def _cell(value: float | None, main: float | None, ratio: bool) -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    if ratio and main:
        r = value / main
        text += f" x{r:.2f}" if r >= 0.1 else f" x{r:.3f}"
    return text


def _line(cells: list[str], widths: list[int]) -> str:
    """Return one row: the first cell left-aligned, the figures right-aligned."""
    return "  ".join([cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)])


def table(results: list[Figures]) -> str:
    """Return the figures as a text table; each ratio is the figure divided by main's."""
    main = next((f for f in results if f.name == "main"), None)
    head = ["scenario", "orders", "errors", "not final", *(c[0] for c in COLUMNS)]
    rows = [head]
    for f in results:
        cells = [_cell(getattr(f, attr), getattr(main, attr) if main else None, r) for _, attr, r in COLUMNS]
        rows.append([f.name, str(f.orders), str(f.errors), str(f.not_final), *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [_line(row, widths) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cpu_table(results: list[Figures], nproc: int) -> str:
    """Return a table of CPU ms per order by process group.

    Also their total, the orders/s that total allows on ``nproc`` CPUs, and
    what the rest of the machine used meanwhile (``other``).
    """
    head = ["CPU ms per order", *GROUPS, "total", "CPU-bound orders/s", "other"]
    rows = [head]
    for f in results:
        total = sum(f.cpu_ms.get(g, 0) for g in GROUPS)
        bound = f"{nproc * 1000 / total:,.0f}" if total else "-"
        cells = [f"{f.cpu_ms.get(g, 0):.2f}" for g in GROUPS]
        rows.append([f.name, *cells, f"{total:.2f}", bound, f"{f.cpu_ms.get('other', 0):.2f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [_line(row, widths) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def notes(results: list[Figures]) -> list[str]:
    """Return one line per fact a reader of the table needs that does not fit in it."""
    out = []
    for f in results:
        if f.rate:
            out.append(f"{f.name}: paced at {f.rate:.1f} orders/s ({f.rate_from})")
        if f.drain_per_s:
            out.append(f"{f.name}: the backlog drained at {f.drain_per_s:,.0f} orders/s once relay and workers started")
        if f.errors:
            out.append(f"{f.name}: {f.errors} errors, the first: {f.first_error}")
        if f.not_final:
            out.append(f"{f.name}: {f.not_final} orders still pending at the deadline")
        if f.rejected:
            out.append(f"{f.name}: {f.rejected} orders rejected (the bench's stock should make every order confirm)")
    return out


def write_json(folder: Path, stamp: str, info: dict, options: dict, results: list[Figures]) -> Path:
    """Write the run to ``folder/<stamp>.json`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}.json"
    data = {"started_at": stamp, "machine": info, "options": options, "scenarios": [asdict(f) for f in results]}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
