"""``make loadtest``: a headless Locust run against the running demo, a report, then a verdict.

``python -m loadtests [--max-error-ratio R] [--settle S] [LOCUST OPTIONS...]``

1. Finds the target: ``LOCUST_HOST``, or the devstack running in this
   checkout (``make demo``; its state file says where it serves).
2. Gets a staff token for the restocker (``manage.py issue_token admin``)
   unless ``LOCUST_STAFF_TOKEN`` is set.
3. Makes the flash sale's SKU scarce: ``LOCUST_FLASH_SKU``, by default the
   shop's limited lot ``LTD-001`` (created if missing), gets stock received
   until ``--flash-stock`` units are available (``manage.py
   prepare_flash_sale``; stock only ever changes through inventory events, so
   a SKU with more keeps them). The restocker leaves that SKU alone.
4. Runs ``locust --headless`` with ``loadtests/locust.conf`` (``LOCUST_*``
   variables and extra options override it), writing ``report.html`` and the
   CSV files into ``loadtests/reports/<timestamp>/``.
5. Fails the run if Locust crashed (an exit code other than 0, or 1 for
   failed requests), if the failed requests pass ``--max-error-ratio``
   (``LOCUST_MAX_ERROR_RATIO``, default 1 %) or if ``manage.py
   verify_invariants`` finds an oversold SKU, a lost or still pending order,
   or a stuck outbox once the last orders have had ``--settle`` seconds to end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devstack import state as devstack_state

from .check import BASE_DIR, FLASH_SKU, rate_limits_line, read_totals, verdict_problems, verify_invariants

REPORTS = BASE_DIR / "loadtests" / "reports"
LOCUST = str(Path(sys.executable).with_name("locust"))


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Return the runner's own options and the rest, which go to Locust."""
    parser = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__.split("\n\n")[0])
    ratio = float(os.environ.get("LOCUST_MAX_ERROR_RATIO", "0.01"))
    parser.add_argument(
        "--max-error-ratio",
        type=float,
        default=ratio,
        help="fail above this share of failed requests (0.01; LOCUST_MAX_ERROR_RATIO)",
    )
    parser.add_argument(
        "--settle", type=float, default=60.0, help="seconds the last orders get to end before the invariant check (60)"
    )
    stock = int(os.environ.get("LOCUST_FLASH_STOCK", "20"))
    parser.add_argument(
        "--flash-stock",
        type=int,
        default=stock,
        help="units of the flash SKU available when the run starts (20; LOCUST_FLASH_STOCK; "
        "0 leaves its stock as it is)",
    )
    parser.add_argument("--reports", type=Path, default=REPORTS, help="folder of the reports (loadtests/reports)")
    return parser.parse_known_args(argv)


def say(message: str) -> None:
    print(f"[loadtest] {message}", flush=True)


def target(env: dict[str, str]) -> tuple[str | None, str]:
    """Return the host to pass with --host (None when LOCUST_HOST names it), and the host itself."""
    if env.get("LOCUST_HOST"):
        return None, env["LOCUST_HOST"]
    url = devstack_state.running(env.get("DEVSTACK_STATE")).get("web_url", "")
    if not url:
        raise SystemExit(
            "error: no devstack runs in this checkout: start `make demo` in another terminal, "
            "or set LOCUST_HOST=http://host:port"
        )
    return url.rstrip("/"), url.rstrip("/")


def rate_limits(env: dict[str, str]) -> str:
    """Return the line saying whether the target runs with rate limits, as far as this checkout knows."""
    if env.get("LOCUST_HOST"):
        return "rate limits: as the target at LOCUST_HOST is configured (on unless it sets RATE_LIMITS=0)"
    value = devstack_state.running(env.get("DEVSTACK_STATE")).get("rate_limits")
    return rate_limits_line(value, "the devstack's")


def reachable(host: str) -> bool:
    """Return whether the target answers its liveness probe."""
    try:
        with urllib.request.urlopen(f"{host}/healthz", timeout=5) as resp:
            return resp.status == 200
    except OSError:
        return False


def staff_token(env: dict[str, str]) -> str:
    """Return a staff API token (``LOCUST_STAFF_TOKEN`` or a new one for 'admin'), or '' with a warning."""
    if env.get("LOCUST_STAFF_TOKEN"):
        return env["LOCUST_STAFF_TOKEN"]
    done = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "issue_token", "admin"],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        say(f"no staff token ({(done.stderr.strip().splitlines() or ['?'])[-1]}); the restocker will not run")
        return ""
    return lines[-1]


def prepare_flash_sale(env: dict[str, str], units: int) -> str | None:
    """Make the flash SKU scarce (``manage.py prepare_flash_sale``); return it, '' to leave it unset, None on error."""
    sku = env.get("LOCUST_FLASH_SKU", "")
    if units <= 0:
        return sku
    command = [
        sys.executable,
        str(BASE_DIR / "manage.py"),
        "prepare_flash_sale",
        sku or FLASH_SKU,
        "--units",
        str(units),
        *([] if sku else ["--create"]),
    ]
    done = subprocess.run(command, env=env, cwd=BASE_DIR, capture_output=True, text=True)
    lines = (done.stdout + done.stderr).strip().splitlines() or ["?"]
    if done.returncode:
        say(
            f"error: could not prepare the flash sale ({lines[-1]}); it needs the shop's database, as "
            "verify_invariants does, or --flash-stock 0 to leave the stock as it is"
        )
        return None
    say(f"flash sale: {lines[-1]}")
    return sku or FLASH_SKU


def run_locust(host_arg: str | None, folder: Path, extra: list[str], env: dict[str, str]) -> int:
    """Run Locust headless, its reports into ``folder``; return its exit code."""
    command = [
        LOCUST,
        "-f",
        str(BASE_DIR / "loadtests" / "locustfile.py"),
        "--config",
        str(BASE_DIR / "loadtests" / "locust.conf"),
        "--headless",
        "--csv",
        str(folder / "stats"),
        "--html",
        str(folder / "report.html"),
        "--only-summary",
    ]
    if host_arg:
        command += ["--host", host_arg]
    proc = subprocess.Popen([*command, *extra], env=env, cwd=BASE_DIR)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Locust got the same Ctrl-C: let it write its reports
        return proc.wait()


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    env = dict(os.environ)
    host_arg, host = target(env)
    if not reachable(host):
        say(f"error: {host}/healthz does not answer: is `make demo` running?")
        return 2
    env["LOCUST_STAFF_TOKEN"] = staff_token(env)
    flash = prepare_flash_sale(env, args.flash_stock)
    if flash is None:
        return 2
    if flash:
        env["LOCUST_FLASH_SKU"] = flash
    folder = args.reports / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    say(f"load on {host}; report in {folder}")
    say(rate_limits(env))
    (folder / "rate_limits.txt").write_text(rate_limits(env) + "\n")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops Locust, which writes its reports; then the verdict
    code = run_locust(host_arg, folder, extra, env)
    stats = folder / "stats_stats.csv"
    if not stats.exists():
        say(f"error: Locust wrote no statistics (exit code {code}); see its output above")
        return code if code > 0 else 1  # a negative code (killed by a signal) is no exit status
    totals = read_totals(stats)
    say(
        f"{totals.requests} requests, {totals.failures} failed ({totals.error_ratio:.2%}); "
        f"waiting up to {args.settle:.0f}s for every order to end, then verify_invariants"
    )
    ok, output = verify_invariants(env, args.settle)
    (folder / "invariants.txt").write_text(output + "\n")
    print(output)
    problems = verdict_problems(totals, args.max_error_ratio, ok, locust_code=code)
    verdict = "FAIL: " + "; ".join(problems) if problems else "PASS: no request over the error budget, invariants hold"
    (folder / "verdict.txt").write_text(verdict + "\n")
    say(verdict)
    say(f"report: {folder / 'report.html'}  (CSV: {folder}/stats_*.csv)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
