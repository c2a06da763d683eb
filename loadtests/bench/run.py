"""One bench run from start to end: prepare the database and streams, start the processes, run, report."""

from __future__ import annotations

import argparse
import io
import signal
from pathlib import Path

from django.core.management import call_command
from django.db import connection

from . import db, report
from .scenarios import SCENARIOS, Bench
from .stack import BASE_DIR, Stack


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
    """Run the chosen scenarios, print the table and write the JSON; return the exit code."""
    skus = prepare()
    log_dir = BASE_DIR / ".data" / "bench" / stamp
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(log_dir=log_dir, env=child_env, web_workers=args.web_workers)
    bench = Bench(stack, skus, args.orders, args.concurrency, run_id=stamp, rate=args.rate)
    try:
        stack.start_web()
        say(f"processes up (logs in {log_dir}); warming up")
        bench.warm_up()
        for scenario in (s for s in SCENARIOS if s.name in args.scenarios):
            say(f"{scenario.name}: {scenario.about}")
            figures = bench.run(scenario)
            say(f"{scenario.name}: {figures.accepted} accepted in {figures.load_seconds:.1f}s, {figures.errors} errors")
    finally:
        # A second Ctrl-C (events.embedded forwards one) must not cut the stopping short.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        signal.signal(signal.SIGINT, previous)
    results = list(bench.results.values())
    info = report.machine(_pg_version())
    print()
    print(f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, PostgreSQL {info['postgresql']}")
    print(f"orders per scenario {args.orders}, concurrency {args.concurrency}, web workers {args.web_workers}")
    print(report.table(results))
    print()
    print(report.cpu_table(results, info["nproc"]))
    for line in report.notes(results):
        print(f"- {line}")
    path = report.write_json(results_dir, stamp, info, _options(args), results)
    print(f"\nresults: {path.relative_to(BASE_DIR)}")
    return 0


def _pg_version() -> str:
    """Return the PostgreSQL server version."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def _options(args: argparse.Namespace) -> dict:
    """Return the options of the run, for the JSON file."""
    return {
        "orders": args.orders,
        "concurrency": args.concurrency,
        "scenarios": args.scenarios,
        "web_workers": args.web_workers,
        "rate": args.rate,
    }
