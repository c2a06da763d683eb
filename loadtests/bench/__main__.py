"""Command line of the bench: ``python -m loadtests.bench [--orders N] [--concurrency C] ...``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
RESULTS_DIR = BASE_DIR / "bench-results"
# Only the names: importing .scenarios needs Django set up. Keep in step with scenarios.SCENARIOS.
SCENARIO_NAMES = [
    "baseline",
    "service",
    "acceptance-only",
    "batch-10",
    "batch-1",
    "workers-2",
    "relay-only",
    "relay-notify",
    "relay-eager",
    "fetch-linger",
    "server-binding",
    "linger-off",
    "gc-unfrozen",
    "publisher-thread",
    "handoff-off",
]
# The ladder paces HTTP orders through a running pipeline, so it climbs only in the configurations of the
# pipeline (not `service`, which has no HTTP, nor `acceptance-only`, which stops the pipeline): each one's curve
# of throughput and p50/p99 against the offered load.
LADDER_NAMES = [
    "baseline",
    "batch-10",
    "batch-1",
    "workers-2",
    "relay-only",
    "relay-notify",
    "relay-eager",
    "fetch-linger",
    "server-binding",
    "linger-off",
    "gc-unfrozen",
    "publisher-thread",
    "handoff-off",
]
QUICK = {
    "rounds": 1,
    "orders": 300,
    "concurrency": 16,
    "ladder": ["baseline"],
    "ladder_start": 20.0,
    "ladder_factor": 1.8,
    "ladder_seconds": 3.0,
    "ladder_steps": 4,
    "ceiling_seconds": 3.0,
    "js_messages": 3000,
}


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _pair(value: str) -> tuple[str, str]:
    """Parse ``NAME=VALUE`` for argparse."""
    from .compare.targets import parse_pair

    try:
        return parse_pair(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_compare_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("comparison (side by side with any server of the same HTTP contract)")
    add = group.add_argument
    add("--compare", action="store_true", help="after the lab, the same two steps against every system")
    add("--compare-only", action="store_true", help="the comparison alone: no scenarios, ladder, reads or ceilings")
    add(
        "--against",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=URL",
        help="another system to measure (repeatable), e.g. sync=http://127.0.0.1:8310",
    )
    add(
        "--against-token",
        type=_pair,
        action="append",
        default=[],
        metavar="NAME=TOKEN",
        help="a staff bearer token of that system, to top its stock up (needed only if it is short of stock)",
    )
    add("--devstack", action="store_true", help="also measure the project under `manage.py devstack` (free ports)")
    add("--open-rate", type=float, default=80.0, help="orders/s of the open-loop step (default 80)")
    add("--open-seconds", type=float, default=20.0, help="seconds of the open-loop step (default 20)")


def _check_compare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from .compare.run import DEVSTACK, LAB

    args.compare = args.compare or args.compare_only
    if (args.against or args.devstack) and not args.compare:
        parser.error("--against and --devstack measure in the comparison: add --compare or --compare-only")
    names = [name for name, _ in args.against]
    if len(set(names)) < len(names) or set(names) & {LAB, DEVSTACK}:
        parser.error(f"each --against needs its own name, neither {LAB} nor {DEVSTACK}")
    for name, _ in args.against_token:
        if name not in names:
            parser.error(f"--against-token {name}=...: no --against {name}=URL")
    if args.open_rate <= 0 or args.open_seconds <= 0:
        parser.error("--open-rate and --open-seconds must be above 0")


def _without_tokens(given: list[str]) -> list[str]:
    """Return the arguments with each ``--against-token`` value shown as ``NAME=…``: the command goes in the docs."""
    shown = []
    for i, arg in enumerate(given):
        if arg.startswith("--against-token="):
            arg = "--against-token=" + arg.split("=", 2)[1] + "=…"
        elif i and given[i - 1] == "--against-token":
            arg = arg.split("=", 1)[0] + "=…"
        shown.append(arg)
    return shown


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the options."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description="The performance lab: scenarios against a baseline, the saturation ladder, the physical "
        "ceilings; tables, plots and the lab section of docs/benchmarks.md.",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="a fast check: small sizes, docs untouched unless --docs")
    add("--rounds", type=int, default=2, help="runs of each scenario, in A..Z Z..A order; the best is kept (2)")
    add("--orders", type=int, default=2000, help="orders per scenario (default 2000)")
    add("--concurrency", type=int, default=32, help="HTTP connections, or threads for service (default 32)")
    add(
        "--scenarios", type=_names, default=SCENARIO_NAMES, help=f"comma list (default all): {','.join(SCENARIO_NAMES)}"
    )
    add("--web-workers", type=int, default=2, help="granian worker processes of the web server (default 2)")
    add(
        "--ladder",
        type=_names,
        default=LADDER_NAMES,
        help=f"levers to climb the ladder in ('' for none; default all): {','.join(LADDER_NAMES)}",
    )
    add("--ladder-start", type=float, default=20.0, help="orders/s of the ladder's first step (default 20)")
    add("--ladder-factor", type=float, default=1.4, help="each step offers this many times the last (default 1.4)")
    add("--ladder-seconds", type=float, default=8.0, help="seconds of load per step (default 8)")
    add("--ladder-steps", type=int, default=10, help="at most this many steps (default 10)")
    add("--no-reads", dest="reads", action="store_false", help="skip the stock read path (near cache or database)")
    add("--no-ceilings", dest="ceilings", action="store_false", help="skip pgbench and the raw JetStream loop")
    add("--pg-clients", type=int, default=8, help="pgbench clients (default 8)")
    add("--ceiling-seconds", type=float, default=10.0, help="seconds of pgbench (default 10)")
    add("--js-messages", type=int, default=20000, help="messages of the raw JetStream loop (default 20000)")
    add("--results", type=Path, default=RESULTS_DIR, help="folder of the JSON results and plots (bench-results)")
    add(
        "--docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write the generated sections of docs/benchmarks.md (lab, comparison) and their plots "
        "(default: yes, unless --quick)",
    )
    _add_compare_options(parser)
    given = argv if argv is not None else sys.argv[1:]
    args = parser.parse_args(given)
    if args.quick:
        named = {arg.split("=", 1)[0] for arg in given if arg.startswith("--")}  # not a prefix: --ladder-start
        for name, value in QUICK.items():
            if f"--{name.replace('_', '-')}" not in named:
                setattr(args, name, value)
    args.docs = not args.quick if args.docs is None else args.docs
    shown = _without_tokens(given)
    args.command = " ".join(["make bench", *(["BENCH_ARGS=" + repr(" ".join(shown))] if shown else [])])
    for name in args.scenarios:
        if name not in SCENARIO_NAMES:
            parser.error(f"unknown scenario {name!r}; choose from {', '.join(SCENARIO_NAMES)}")
    for name in args.ladder:
        if name not in LADDER_NAMES:
            parser.error(f"the ladder cannot climb in {name!r}; choose from {', '.join(LADDER_NAMES)}")
    _check_compare(parser, args)
    if args.rounds < 1 or args.orders < 1 or args.concurrency < 1 or args.web_workers < 1 or args.ladder_factor <= 1:
        parser.error("--rounds, --orders, --concurrency, --web-workers must be at least 1, --ladder-factor above 1")
    return args


def setup_django(concurrency: int) -> dict[str, str]:
    """Set up Django in this process; return the environment the children get (without the bench's own pool)."""
    # The lab's stack serves plain HTTP on 127.0.0.1, its closed loops all from one address: without the
    # abuse limits (unless RATE_LIMITS says otherwise), which would measure themselves, not the shop.
    child_env = {"DJANGO_HTTPS": "0", "RATE_LIMITS": "0", **os.environ}
    # Each service-scenario thread holds a connection while it places an order: a smaller pool would queue them.
    os.environ["DB_POOL_MAX_SIZE"] = str(max(12, concurrency + 4))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    return child_env


def _interrupt(signum: int, frame: object) -> None:
    """Raise KeyboardInterrupt, as Python's own SIGINT handler does."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the bench; return the exit code."""
    args = parse_args(argv)
    missing = [name for name in ("DATABASE_URL", "NATS_URL") if not os.environ.get(name)]
    if missing:
        print(f"error: {' and '.join(missing)} not set; run the bench with `make bench`", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally-blocks stop the children
    # Not Python's own handler, so asyncio.run keeps out of it: asyncio's would turn Ctrl-C into a cancellation,
    # which nats-py swallows in places, and the bench would run on.
    signal.signal(signal.SIGINT, _interrupt)
    child_env = setup_django(args.concurrency)
    from .run import run  # imports the apps: only after django.setup()
    from .stack import BenchError

    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        return run(args, child_env, stamp, args.results)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the processes the bench started are stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
