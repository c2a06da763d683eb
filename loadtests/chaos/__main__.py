"""``make chaos``: the fault catalogue against a devstack under a steady order load, and a verdict on each.

``python -m loadtests.chaos [--faults a,b] [--seconds S] [--rate R] [--no-docs]``

1. Starts ``manage.py devstack`` (what ``make demo`` runs) on free ports with
   embedded servers of its own, gives every SKU but the scarce lot plenty of
   stock, and sends the live API the catalogue of bad inputs (each must get
   a 4xx).
2. For each fault, one at a time: an open-loop order load at ``--rate``
   orders/s for ``--seconds``, the fault injected a third of the way in; then
   every accepted order must end, once (lost / doubled / unexpected / stuck
   = 0), no SKU oversold, stock conserved, the stock projection equal to
   inventory's stock and to the replay of the events (``verify_invariants``,
   ``rebuild_projections --check``). It times the recovery: from the fault to
   the first order sent after it being decided, and to ``/readyz`` answering
   200 again.
3. The fault on one node of a 3-node NATS cluster runs on a second devstack,
   started with ``--nats-cluster 3``.
4. Prints the table and rewrites the generated block of
   ``docs/reliability.md`` (``--no-docs``: not; ``--docs PATH``: another file).

Every process it starts is stopped by its PID, on success, failure, Ctrl-C or
SIGTERM. It exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from .badinputs import BadInputResult, send_all
from .faults import FAULTS
from .report import bad_inputs_line, fault_table, problems, section, write_docs
from .run import Result, products, restock, run_fault
from .stack import BASE_DIR, ChaosError, running

DOCS = BASE_DIR / "docs" / "reliability.md"
RESULTS_DIR = BASE_DIR / "chaos-results"


def _names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAULTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown fault {', '.join(unknown)}; the faults: {', '.join(FAULTS)}")
    return names


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.chaos", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--faults", type=_names, default=list(FAULTS), help=f"comma-separated, of: {', '.join(FAULTS)} (default all)")
    add("--seconds", type=float, default=20.0, help="load per fault, in seconds (default 20)")
    add("--rate", type=float, default=20.0, help="orders per second offered (default 20)")
    add("--no-docs", action="store_true", help="leave docs/reliability.md alone")
    add("--docs", type=Path, default=DOCS, help="the markdown file whose generated block is rewritten")
    add("--log-dir", type=Path, default=None, help="where the devstacks' logs go (default chaos-results/<time>)")
    args = parser.parse_args(argv)
    if args.seconds < 3 or args.rate <= 0:
        parser.error("--seconds must be at least 3 and --rate positive")
    return args


def _on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # leave through every finally: the devstacks are stopped by PID


def run(args: argparse.Namespace) -> tuple[list[Result], BadInputResult | None]:
    """Run the selected faults, grouped by the stack each needs; return their results and the bad inputs'."""
    log_dir = args.log_dir or RESULTS_DIR / time.strftime("%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    bad: BadInputResult | None = None
    for nodes in (1, 3):
        faults = [FAULTS[name] for name in args.faults if FAULTS[name].nats_nodes == nodes]
        if not faults:
            continue
        with running(log_dir, dict(os.environ), nats_nodes=nodes) as stack:
            skus = products(stack.url)
            token = stack.token()
            restock(stack.url, token, skus)
            if bad is None:
                bad = send_all(stack.url, skus[0], token)
                bad.created = _orders_of(stack.database_url, "chaos-bad-input@example.org")
                print(bad_inputs_line(bad), flush=True)
            for fault in faults:
                results.append(run_fault(stack, fault, skus, args.seconds, args.rate))
                print(fault_table(results[-1:]).splitlines()[-1], flush=True)
    return results, bad


def _orders_of(database_url: str, email: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT count(*) FROM shop_order WHERE email = %s", [email]).fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        results, bad = run(args)
    except ChaosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: every process started was stopped", file=sys.stderr)
        return 130
    print(fault_table(results))
    print(bad_inputs_line(bad))
    failing = problems(results) + ([] if bad is None or bad.ok else ["bad inputs: not every one answered 4xx"])
    for problem in failing:
        print(f"FAILED {problem}")
    if not args.no_docs:
        write_docs(args.docs, section(results, bad, args.seconds))
        print(f"wrote {args.docs}")
    print("every check held" if not failing else f"{len(failing)} checks failed")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
