"""The bench's output: the machine it ran on, tables with ratios to the baseline, a JSON file, the docs section."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path

from .ceilings import Ceilings
from .cpu import GROUPS
from .ladder import Ladder
from .scenarios import BASELINE, Figures

DOCS_BEGIN, DOCS_END = "<!-- lab:begin -->", "<!-- lab:end -->"
PACKAGES = ["Django", "granian", "psycopg", "nats-py", "locust"]

# (heading, Figures attribute, show the ratio to the baseline)
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
        "nats_server": _nats_version(),
        "packages": {name: version(name) for name in PACKAGES},
    }


def _nats_version() -> str:
    """Return the version the nats-server binary reports, or "unknown"."""
    binary = Path(sys.executable).with_name("nats-server")
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "unknown"
    return out.strip().split()[-1].lstrip("v") if out.strip() else "unknown"


def machine_line(info: dict) -> str:
    """Return the machine in one line."""
    packages = ", ".join(f"{k} {v}" for k, v in info.get("packages", {}).items())
    return (
        f"{info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, PostgreSQL {info['postgresql']}, "
        f"nats-server {info.get('nats_server', '?')}; {packages}"
    )


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
    """Return the figures as a text table; each ratio is the figure divided by the baseline's."""
    main = next((f for f in results if f.name == BASELINE), None)
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


def cpu_markdown(results: list[Figures]) -> str:
    """Return the CPU table as markdown: ms per order by process group, and the total."""
    rows = [f"| scenario | {' | '.join(GROUPS)} | total | other |", "|---" * (len(GROUPS) + 3) + "|"]
    for f in results:
        total = sum(f.cpu_ms.get(g, 0) for g in GROUPS)
        cells = " | ".join(f"{f.cpu_ms.get(g, 0):.2f}" for g in GROUPS)
        rows.append(f"| {f.name} | {cells} | {total:.2f} | {f.cpu_ms.get('other', 0):.2f} |")
    return "\n".join(rows)


def notes(results: list[Figures]) -> list[str]:
    """Return one line per fact a reader of the table needs that does not fit in it."""
    out = []
    for f in results:
        if f.drain_per_s:
            out.append(f"{f.name}: the backlog drained at {f.drain_per_s:,.0f} orders/s once relay and workers started")
        if f.drain_cpu_ms:
            parts = ", ".join(f"{g} {f.drain_cpu_ms.get(g, 0):.2f}" for g in ("relay", "workers", "postgres", "nats"))
            total = sum(f.drain_cpu_ms.get(g, 0) for g in GROUPS)
            out.append(
                f"{f.name}: draining it cost {total:.2f} ms of CPU per order ({parts}): "
                "the event machinery's cost when its batches are full"
            )
        if f.errors:
            out.append(f"{f.name}: {f.errors} errors, the first: {f.first_error}")
        if f.not_final:
            out.append(f"{f.name}: {f.not_final} orders still pending at the deadline")
        if f.rejected:
            out.append(f"{f.name}: {f.rejected} orders rejected (the bench's stock should make every order confirm)")
    return out


def write_json(
    folder: Path,
    stamp: str,
    info: dict,
    options: dict,
    results: list[Figures],
    ladders: list[Ladder],
    ceilings: Ceilings | None,
    reads: list | None = None,
) -> Path:
    """Write the run to ``folder/<stamp>.json`` and return its path.

    ``reads`` are the stock read path's figures (``reads.ReadFigures``, one per variant), [] when not measured.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}.json"
    data = {
        "started_at": stamp,
        "machine": info,
        "options": options,
        "scenarios": [asdict(f) for f in results],
        "ladders": [asdict(ld) for ld in ladders],
        "ceilings": asdict(ceilings) if ceilings else None,
        "reads": [asdict(r) for r in reads or []],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def _n(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, base: float | None) -> str:
    return f" (x{value / base:.2f})" if value is not None and base else ""


def _config(f: Figures) -> str:
    parts = [f"{k}={v}" for k, v in sorted(f.env.items())] + (
        [f"{f.workers} worker processes"] if f.workers > 1 else []
    )
    return ", ".join(parts) or "–"


def markdown(
    info: dict,
    options: dict,
    noise: float,
    results: list[Figures],
    ladders: list[Ladder],
    ceilings: Ceilings | None,
    plots: dict[str, str],
) -> str:
    """Return the lab's section of docs/benchmarks.md: tables, the knee, the ceilings, the plots."""
    base = next((f for f in results if f.name == BASELINE), None)
    b_rate, b_p50, b_p99 = (base.end_to_end_per_s, base.p50_ms, base.p99_ms) if base else (None, None, None)
    out = [
        DOCS_BEGIN,
        "",
        f"Generated by `make bench` on {options['date']} (`{options['command']}`).",
        "",
        f"Machine: {machine_line(info)}. Everything, the load generator included, on one box.",
        "",
        f"Noise: other processes used {noise:.0%} of the machine's busy CPU time during the run "
        "(the machine is shared); ratios within this one invocation are what to read, not absolute figures.",
        "",
        f"Closed loop, {options['orders']} one-line orders a scenario, {options['concurrency']} connections, "
        f"{options['web_workers']} web workers. Ratios are to the baseline of the same invocation.",
        "",
        "| scenario | configuration | end-to-end orders/s | rounds | accepted/s | p50 ms | p99 ms | CPU ms/order "
        "| errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in results:
        total = sum(f.cpu_ms.get(g, 0) for g in GROUPS)
        rounds = " / ".join(f"{r:,.0f}" for r in f.round_rates) or "–"
        out.append(
            f"| {f.name} | {_config(f)} | {_n(f.end_to_end_per_s)}{_ratio(f.end_to_end_per_s, b_rate)} | "
            f"{rounds} | {_n(f.accepted_per_s)} | {_n(f.p50_ms)}{_ratio(f.p50_ms, b_p50)} | "
            f"{_n(f.p99_ms)}{_ratio(f.p99_ms, b_p99)} | {total:.1f} | {f.errors} |"
        )
    if base and len(base.round_rates) > 1:
        low, high = min(base.round_rates), max(base.round_rates)
        out += [
            "",
            f"The baseline's {len(base.round_rates)} rounds ran at {low:,.0f} to {high:,.0f} orders/s: a "
            f"ratio within about {1 - low / high:.0%} of 1 is noise on this machine.",
        ]
    out += [
        "",
        "Where the time goes: CPU ms per accepted order by process group, from the start of the load "
        "until every order is final and the pipeline idle (`acceptance-only`: the load alone).",
        "",
        cpu_markdown(results),
    ]
    out += [f"\n- {line}" if i == 0 else f"- {line}" for i, line in enumerate(notes(results))]
    if "scenarios" in plots:
        out += ["", f"![throughput and latency of each scenario]({plots['scenarios']})"]
    for ld in ladders:
        out += [
            "",
            f"### Saturation ladder ({ld.scenario})",
            "",
            "| offered/s | end-to-end/s | p50 ms | p99 ms | pending at load end | kept up |",
            "|---|---|---|---|---|---|",
        ]
        from .ladder import keeps_up

        for s in ld.steps:
            out.append(
                f"| {_n(s.rate)} | {_n(s.end_to_end_per_s)} | {_n(s.p50_ms)} | {_n(s.p99_ms)} | {s.backlog} | "
                f"{'yes' if keeps_up(s) else 'no'} |"
            )
        half = ld.half_knee
        out += [
            "",
            f"**Knee: {_n(ld.knee)} orders/s offered** ({_n(ld.knee_end_to_end)}/s end to end; "
            f"highest end-to-end rate of any step {_n(ld.peak_end_to_end)}/s; "
            f"stopped because {ld.stopped_because}).",
        ]
        if half:
            runs = f"the lowest p99 of {len(ld.half_knee_p99s)} runs: {', '.join(_n(p) for p in ld.half_knee_p99s)}"
            out.append(
                f"At half the knee ({_n(half.rate)} orders/s): place → final p50 **{_n(half.p50_ms)} ms**, "
                f"p99 **{_n(half.p99_ms)} ms** ({runs})."
            )
    if len(ladders) > 1:
        out += [
            "",
            "### The knee of each lever",
            "",
            f"Ratios are to the {ladders[0].scenario} ladder's.",
            "",
            knee_table(ladders),
        ]
    if "ladder" in plots:
        out += ["", f"![saturation ladder]({plots['ladder']})"]
    if ceilings:
        knee = ladders[0].knee if ladders else b_rate
        msgs = knee * ceilings.events_per_order if knee and ceilings.events_per_order else None
        pg, pub, con = ceilings.pg_orders_per_s, ceilings.js_publish_per_s, ceilings.js_consume_per_s
        out += [
            "",
            "### Physical ceilings",
            "",
            "| what | per second | the pipeline as a fraction |",
            "|---|---|---|",
            f"| pipeline ({'knee' if ladders else 'baseline'}) | {_n(knee)} orders, {_n(msgs)} messages "
            f"({_n(ceilings.events_per_order, 2)} events per order) | – |",
            f"| PostgreSQL: one order placement's writes ({ceilings.pg_note}) | {_n(pg)} transactions | "
            f"{_pct(knee, pg)} of its orders/s |",
            f"| JetStream publish, {ceilings.message_bytes}-byte messages, many in flight | {_n(pub)} messages | "
            f"{_pct(msgs, pub)} of its messages/s |",
            f"| JetStream fetch(100) + ack each | {_n(con)} messages | {_pct(msgs, con)} of its messages/s |",
        ]
        if "ceilings" in plots:
            out += ["", f"![the pipeline beside its ceilings]({plots['ceilings']})"]
    return "\n".join([*out, "", DOCS_END])


def _pct(part: float | None, whole: float | None) -> str:
    return f"{part / whole:.1%}" if part and whole else "–"


def write_docs(path: Path, section: str, begin: str = DOCS_BEGIN, end: str = DOCS_END) -> None:
    """Replace a generated section of a markdown file (between ``begin`` and ``end``: the lab's), or append it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def knee_table(ladders: list[Ladder]) -> str:
    """Return a markdown table of each lever's knee, peak and half-knee latency, with ratios to the first ladder's."""
    first = ladders[0]
    f50 = first.half_knee.p50_ms if first.half_knee else None
    f99 = first.half_knee.p99_ms if first.half_knee else None
    rows = [
        "| lever | knee, orders/s offered | end-to-end at the knee | highest end-to-end/s | "
        "p50 ms at half the knee | p99 ms at half the knee |",
        "|---|---|---|---|---|---|",
    ]
    for ld in ladders:
        half = ld.half_knee
        p50, p99 = (half.p50_ms, half.p99_ms) if half else (None, None)
        rows.append(
            f"| {ld.scenario} | {_n(ld.knee)}{_ratio(ld.knee, first.knee)} | {_n(ld.knee_end_to_end)} | "
            f"{_n(ld.peak_end_to_end)}{_ratio(ld.peak_end_to_end, first.peak_end_to_end)} | "
            f"{_n(p50)}{_ratio(p50, f50)} | {_n(p99)}{_ratio(p99, f99)} |"
        )
    return "\n".join(rows)
