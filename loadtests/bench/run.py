"""One lab run from start to end: prepare, the scenarios, the ladder, the ceilings, then tables, plots and docs."""

from __future__ import annotations

import argparse
import io
import os
import signal
import time
from pathlib import Path

from django.core.management import call_command
from django.db import connection

from ..check import rate_limits_line
from . import ceilings as ceilings_
from . import cpu, db, plots, reads, report
from .compare import report as compare_report
from .compare import run as compare
from .ladder import Ladder, climb
from .scenarios import SCENARIOS, Bench
from .stack import BASE_DIR, Stack

DOCS = BASE_DIR / "docs" / "benchmarks.md"
PLOTS = BASE_DIR / "docs" / "benchmarks"


def say(message: str) -> None:
    """Print a progress line."""
    print(f"[bench] {message}", flush=True)


def prepare() -> list[str]:
    """Migrate, create the catalog and the streams; return the bench's SKUs."""
    call_command("migrate", "--noinput", verbosity=0)
    skus = db.catalog_create()
    call_command("setup_streams", stdout=io.StringIO())
    return skus


def run(args: argparse.Namespace, child_env: dict[str, str], stamp: str, results_dir: Path) -> int:
    """Run the chosen scenarios, ladders, ceilings and comparison; print the tables, write JSON, plots and docs."""
    skus = prepare()
    log_dir = BASE_DIR / ".data" / "bench" / stamp
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(log_dir=log_dir, env=child_env, web_workers=args.web_workers)
    bench = Bench(stack, skus, args.orders, args.concurrency, run_id=stamp)
    ladders: list[Ladder] = []
    read_path: list[reads.ReadFigures] = []
    found = None
    systems: list[compare.System] = []
    start = cpu.snapshot({})
    try:
        bench.configure(SCENARIOS[0])
        say(f"processes up (logs in {log_dir}); warmed up")
        say(rate_limits_line(child_env["RATE_LIMITS"], "the lab's stack"))
        if not args.compare_only:
            _lab(args, bench, ladders, read_path)
        if args.compare:
            bench.configure(SCENARIOS[0])  # the baseline again, after the levers
            say("comparison: the project on the lab's stack")
            systems.append(compare.lab(stack.port, args, stamp, say))
    finally:
        # A second Ctrl-C (devstack.embedded forwards one) must not cut the stopping short.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        signal.signal(signal.SIGINT, previous)
    if args.ceilings and not args.compare_only:
        say("ceilings: pgbench with one order placement's writes, then a raw JetStream publish/consume loop")
        found = ceilings_.measure(os.environ["DATABASE_URL"], args.pg_clients, args.ceiling_seconds, args.js_messages)
    used = cpu.used(start, cpu.snapshot({}))
    noise = used["other"] / max(sum(used.values()), 1e-9)
    if args.compare:  # the lab's processes stopped: each system alone on the machine
        systems += compare.others(args, child_env, log_dir, stamp, say)
    code = 0
    if not args.compare_only:
        limits = rate_limits_line(child_env["RATE_LIMITS"], "the lab's stack")
        code = _report(args, stamp, results_dir, list(bench.results.values()), ladders, found, noise, read_path, limits)
    if args.compare:
        _compare_report(args, stamp, results_dir, systems)
    return code


def _lab(args: argparse.Namespace, bench: Bench, ladders: list[Ladder], read_path: list) -> None:
    """Run the scenarios, the read path and the ladders, adding to ``ladders`` and ``read_path``."""
    run_rounds(bench, [s for s in SCENARIOS if s.name in args.scenarios], args.rounds)
    if args.reads:
        read_path += reads.measure(bench, args.orders, args.rounds, say)
    for scenario in (s for s in SCENARIOS if s.name in args.ladder):
        ladders.append(
            climb(
                bench,
                scenario,
                args.ladder_start,
                args.ladder_factor,
                args.ladder_seconds,
                args.ladder_steps,
                args.rounds,
                say,
            )
        )


def _compare_report(args: argparse.Namespace, stamp: str, results_dir: Path, systems: list) -> None:
    """Print the comparison's table; write its markdown, JSON and plot, and its docs block with ``--docs``."""
    info, options = report.machine(_pg_version()), _options(args)
    folder = PLOTS if args.docs else results_dir / stamp
    png = compare_report.plot(systems, folder / "compare.png")
    results_dir.mkdir(parents=True, exist_ok=True)
    section = compare_report.markdown(info, options, systems, os.path.relpath(png, results_dir))
    print()
    print(section)
    (results_dir / f"{stamp}-compare.md").write_text(section + "\n")
    compare_report.write_json(results_dir / f"{stamp}-compare.json", info, options, systems)
    if args.docs:
        section = compare_report.markdown(info, options, systems, os.path.relpath(png, DOCS.parent))
        report.write_docs(DOCS, section, compare_report.DOCS_BEGIN, compare_report.DOCS_END)
        say(f"wrote the comparison into {DOCS.relative_to(BASE_DIR)} and {_show(png)}")
    say(f"comparison: {_show(results_dir / f'{stamp}-compare.md')}, .json beside it, plot {_show(png)}")


def run_rounds(bench: Bench, scenarios: list, rounds: int) -> None:
    """Run every scenario ``rounds`` times, in A B C … C B A order, and keep each one's best round.

    The machine is shared: interference only ever slows a run down, so the
    round with the highest rate is the closest to what the code does; the
    rates of all rounds are kept beside it, and their spread is the noise.
    """
    runs: dict[str, list] = {}
    for r in range(rounds):
        for scenario in scenarios if r % 2 == 0 else scenarios[::-1]:
            say(f"{scenario.name} (round {r + 1} of {rounds}): {scenario.about}")
            figures = bench.run(scenario, tag=f"{scenario.name}-round{r + 1}")
            say(
                f"{scenario.name}: {figures.accepted} accepted in {figures.load_seconds:.1f}s, "
                f"{figures.end_to_end_per_s} end-to-end/s, {figures.errors} errors"
            )
            runs.setdefault(scenario.name, []).append(figures)
    bench.results = {}
    for scenario in scenarios:
        found = runs[scenario.name]
        best = max(found, key=lambda f: f.end_to_end_per_s or f.accepted_per_s)
        best.round_rates = [f.end_to_end_per_s or f.accepted_per_s for f in found]
        bench.results[scenario.name] = best


def _report(args, stamp, results_dir, results, ladders, found, noise, read_path, limits) -> int:
    info = report.machine(_pg_version())
    print()
    print(f"machine: {report.machine_line(info)}")
    print(
        f"orders per scenario {args.orders}, concurrency {args.concurrency}, web workers {args.web_workers}; "
        f"other processes used {noise:.0%} of the busy CPU time"
    )
    print(limits)
    if results:
        print(report.table(results))
        print()
        print(report.cpu_table(results, info["nproc"]))
    for line in report.notes(results):
        print(f"- {line}")
    if read_path:
        print()
        print(reads.table(read_path))
    options = _options(args)
    section_plots: dict[str, str] = {}
    folder = PLOTS if args.docs else results_dir / stamp
    if results:
        section_plots["scenarios"] = plots.scenarios(results, folder / "scenarios.png")
    if ladders:
        section_plots["ladder"] = plots.ladder(ladders, folder / "ladder.png")
    if found:
        knee = ladders[0].knee if ladders else (results[0].end_to_end_per_s if results else None)
        section_plots["ceilings"] = plots.ceilings(knee, found, folder / "ceilings.png")
    if read_path:
        section_plots["reads"] = plots.reads(read_path, folder / "reads.png")
    links = {k: os.path.relpath(v, DOCS.parent if args.docs else folder) for k, v in section_plots.items()}
    section = report.markdown(info, options, noise, results, ladders, found, links)
    if read_path:  # inside the generated section, before its end marker
        body, end = section.rsplit(report.DOCS_END, 1)
        reads_md = reads.markdown(read_path, args.concurrency, links["reads"])
        section = body.rstrip() + "\n\n" + reads_md + "\n\n" + report.DOCS_END + end
    print()
    print(section)
    if args.docs:
        report.write_docs(DOCS, section)
        say(f"wrote {DOCS.relative_to(BASE_DIR)} and {len(section_plots)} plots in {PLOTS.relative_to(BASE_DIR)}/")
    else:
        (folder / "benchmarks.md").write_text(section + "\n")
        say(f"plots and the markdown section in {_show(folder)}/ (docs untouched; --docs to write them)")
    path = report.write_json(results_dir, stamp, info, options, results, ladders, found, read_path)
    print(f"\nresults: {_show(path)}")
    return 0


def _show(path: Path) -> str:
    """Return a path relative to the checkout when it is inside it."""
    return str(path.relative_to(BASE_DIR)) if path.is_relative_to(BASE_DIR) else str(path)


def _pg_version() -> str:
    """Return the PostgreSQL server version."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def _options(args: argparse.Namespace) -> dict:
    """Return the options of the run, for the JSON file and the docs."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": args.command,
        "orders": args.orders,
        "concurrency": args.concurrency,
        "scenarios": args.scenarios,
        "web_workers": args.web_workers,
        "ladder": args.ladder,
        "ladder_start": args.ladder_start,
        "ladder_factor": args.ladder_factor,
        "ladder_seconds": args.ladder_seconds,
        "rounds": args.rounds,
        "open_rate": args.open_rate,
        "open_seconds": args.open_seconds,
    }
