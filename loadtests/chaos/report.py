"""The chaos run's report: a table per fault and the bad inputs line, printed and written into docs/reliability.md."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from .badinputs import BadInputResult
from .run import Result
from .stack import ACK_WAIT

DOCS_BEGIN, DOCS_END = "<!-- chaos:begin -->", "<!-- chaos:end -->"
HEADER = "# Reliability: the fault catalogue under load\n"


def _s(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.1f} s"


def _ready(seconds: float | None) -> str:
    return "never failed" if seconds == 0 else _s(seconds)


def fault_table(results: list[Result]) -> str:
    """Return the markdown table: one row per fault."""
    rows = [
        "| fault | load held, orders/s (offered) | orders accepted | retried | recovered | first order decided "
        "after the fault | /readyz back | lost | doubled | unexpected | stuck | oversold | stock conserved | "
        "projection = replay |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        h, v = r.history, r.verdict
        retried = sum(1 for a in h.accepted if a.tries > 1)
        rows.append(
            f"| {r.fault.title} | {h.orders_per_second():.1f} ({r.rate:g}) | {len(h.accepted)} of {len(h.attempts)} | "
            f"{retried} | {'yes' if r.recovered else '**no**'} | {_s(r.recovered_s)} | {_ready(r.ready_back_s)} | "
            f"{v.lost} | {v.doubled} | {v.unexpected} | {v.stuck} | {v.oversold} | "
            f"{'yes' if not v.unconserved else f'**no** ({v.unconserved} SKUs)'} | "
            f"{'yes' if not v.projection else f'**no** ({v.projection} SKUs)'} |"
        )
    return "\n".join(rows)


def bad_inputs_line(bad: BadInputResult | None) -> str:
    """Return the sentence on the bad inputs tried."""
    if bad is None:
        return "Bad inputs: not tried in this run."
    line = (
        f"Bad inputs: **{bad.tried} tried** against the live API, {bad.refused} answered 4xx, "
        f"{len(bad.server_errors)} 5xx, {len(bad.accepted)} accepted, {bad.created} orders created by them."
    )
    wrong = bad.server_errors + bad.accepted
    return line + (f" Wrong answers: {'; '.join(wrong[:5])}." if wrong else "")


def problems(results: list[Result]) -> list[str]:
    """Return every failed check, one line each, prefixed with its fault."""
    out = []
    for r in results:
        out += [f"{r.fault.name}: {p}" for p in r.verdict.problems]
        if not r.recovered:
            out.append(f"{r.fault.name}: did not recover (no order decided after the fault, or /readyz still down)")
    return out


def section(results: list[Result], bad: BadInputResult | None, seconds: float) -> str:
    """Return the generated block of docs/reliability.md, between its markers."""
    faults = len(results)
    survived = sum(r.ok for r in results)
    notes = [f"- {r.fault.name}: {'; '.join(r.notes)}" for r in results if r.notes]
    failing = problems(results)
    out = [
        DOCS_BEGIN,
        "",
        f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores "
        f"({platform.machine()}, Python {platform.python_version()}): {survived} of {faults} faults survived, "
        f"{seconds:g} s of load each, the fault a third of the way in. The devstack ran with "
        f"`--live 0` and `EVENT_ACK_WAIT_SECONDS={ACK_WAIT}`.",
        "",
        fault_table(results),
        "",
        bad_inputs_line(bad),
        "",
        "What each fault did:",
        "",
        *notes,
    ]
    if failing:
        out += ["", "Checks that failed:", "", *[f"- {p}" for p in failing]]
    return "\n".join([*out, "", DOCS_END])


def write_docs(path: Path, block: str) -> None:
    """Replace the generated block of ``path`` (between its markers), or append it."""
    text = path.read_text() if path.exists() else HEADER
    if DOCS_BEGIN in text and DOCS_END in text:
        head, rest = text.split(DOCS_BEGIN, 1)
        text = head + block + rest.split(DOCS_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
