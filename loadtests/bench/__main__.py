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
SCENARIO_NAMES = ["main", "service", "acceptance-only", "batch-1", "half-rate"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse and check the options."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench",
        description="Place orders through the real processes in several scenarios and print a table of figures.",
    )
    parser.add_argument("--orders", type=int, default=3000, help="orders per scenario (half-rate sends half)")
    parser.add_argument("--concurrency", type=int, default=32, help="HTTP connections, or threads for service")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIO_NAMES),
        help=f"comma list of scenarios to run: {','.join(SCENARIO_NAMES)}",
    )
    parser.add_argument("--web-workers", type=int, default=2, help="granian worker processes of the web server")
    parser.add_argument("--rate", type=float, help="orders/s of half-rate (default: half of main's end-to-end rate)")
    args = parser.parse_args(argv)
    args.scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(args.scenarios) - set(SCENARIO_NAMES))
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; choose from {', '.join(SCENARIO_NAMES)}")
    if "half-rate" in args.scenarios and "main" not in args.scenarios and not args.rate:
        parser.error("half-rate paces at half of main's end-to-end rate: run main too, or give --rate")
    if args.orders < 1 or args.concurrency < 1 or args.web_workers < 1:
        parser.error("--orders, --concurrency and --web-workers must be at least 1")
    return args


def setup_django(concurrency: int) -> dict[str, str]:
    """Set up Django in this process; return the environment the children get (without the bench's own pool)."""
    child_env = dict(os.environ)
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
        return run(args, child_env, stamp, RESULTS_DIR)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the processes the bench started are stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
