"""``make ops-screenshots``: the ops page in chromium during ``make loadtest``'s steady run, and after it.

``python -m loadtests.ops_screenshots [--run-time 60s] [--out DIR] [--data DIR] [LOADTEST OPTIONS...]``

1. Uses the devstack running in this checkout (``make demo``), or starts one
   of its own on free ports (``manage.py devstack --data DIR``, a temporary
   folder unless told) and stops it at the end.
2. Logs in as the demo's staff user (``admin`` / ``admin``) in Debian's
   chromium (``CHROMIUM``, default ``/usr/bin/chromium``; Playwright never
   downloads a browser) and opens ``/ops/``.
3. Runs ``python -m loadtests``, the very run of ``make loadtest`` (its
   ``locust.conf``: 20 users, the steady mix; ``--run-time`` sets
   ``LOCUST_RUN_TIME``; other options go to it), report and verdict included.
4. Halfway through the load, with the latency panel showing quantiles:
   ``ops-loadtest-during.png``. Once the run has ended and no order was
   confirmed for 10 s, with the latency panel empty and the charts still
   holding the load: ``ops-loadtest-after.png``. Both in ``--out``
   (``test-artifacts/screenshots/``).
5. Stops what it started, each by its PID: the load run (and its Locust, in
   the run's own process group), the browser, the devstack.

Exits with the load run's code (1 when its verdict failed), or 1 with one line
saying what the page did not show.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack import state as devstack_state
from devstack.embedded import free_port
from devstack.process import parent_death_signal

from .check import BASE_DIR

SCREENSHOTS = BASE_DIR / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
STAFF = ("admin", "admin")  # seed_demo's staff user
READY_TIMEOUT = 180  # seconds a devstack of our own gets to print its ready line (a first run migrates)


class PageProblem(Exception):
    """The ops page did not show what it should."""


def say(message: str) -> None:
    print(f"[ops-screenshots] {message}", flush=True)


def seconds(run_time: str) -> int:
    """Return the seconds of a Locust run time ("90", "90s", "5m", "1h30m")."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", run_time.strip())
    if not parts or not any(parts.groups()):
        raise argparse.ArgumentTypeError(f"not a run time: {run_time!r} (60s, 5m, 1h30m)")
    hours, minutes, secs = (int(g or 0) for g in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Return this command's options and the rest, which go to the load run (``python -m loadtests``)."""
    parser = argparse.ArgumentParser(prog="python -m loadtests.ops_screenshots", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--run-time",
        default=os.environ.get("LOCUST_RUN_TIME", "60s"),
        help="length of the load (60s, as make loadtest; LOCUST_RUN_TIME)",
    )
    parser.add_argument("--out", type=Path, default=SCREENSHOTS, help="folder of the screenshots")
    parser.add_argument("--data", type=Path, help="data folder of the devstack it starts when none runs (temporary)")
    args, rest = parser.parse_known_args(argv)
    args.seconds = seconds(args.run_time)
    return args, rest


def _without_servers(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("DATABASE_URL", "NATS_URL")}


def _stop(proc: subprocess.Popen, sig: int, group: bool = False, grace: float = 60) -> None:
    """Stop a process this command started (its whole process group when it leads one), by its PID."""
    if proc.poll() is not None:
        return
    (os.killpg if group else os.kill)(proc.pid, sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        (os.killpg if group else os.kill)(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def devstack(data: Path | None) -> Iterator[Path]:
    """Yield the state file of the devstack of this checkout, or of one started here (stopped on exit)."""
    if devstack_state.running():
        say("using the devstack running in this checkout")
        yield devstack_state.state_path()
        return
    with tempfile.TemporaryDirectory(prefix="ops-screenshots-") as tmp:
        folder = data or Path(tmp) / "stack"
        command = [sys.executable, str(BASE_DIR / "manage.py"), "devstack", "--port", str(free_port())]
        say(f"no devstack runs in this checkout: starting one ({folder})")
        proc = subprocess.Popen(
            [*command, "--data", str(folder)],
            env=_without_servers(dict(os.environ)),
            cwd=BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=parent_death_signal(signal.SIGTERM),
        )
        try:
            _wait_ready(proc)
            yield folder / "state.json"
        finally:
            _stop(proc, signal.SIGTERM)
            say(f"devstack stopped (pid {proc.pid})")


def _wait_ready(proc: subprocess.Popen) -> None:
    """Wait for the devstack's ready line; echo its lines meanwhile, then keep reading them (its pipe never fills)."""
    ready = threading.Event()

    def read() -> None:
        for line in iter(proc.stdout.readline, ""):
            if not ready.is_set():
                print(f"  {line}", end="", flush=True)
            if "ready" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"error: the devstack did not get ready (exit code {proc.poll()}); see its lines above")


@contextmanager
def ops_page(web_url: str) -> Iterator:
    """Yield a chromium page logged in as staff on the ops page; close the browser on exit."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"error: {CHROMIUM} is missing: run `make install` (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []  # as root, chromium refuses its sandbox
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(f"{web_url}/staff/login/?next=/ops/")
            page.fill("#id_username", STAFF[0])
            page.fill("#id_password", STAFF[1])
            page.click("button:has-text('Log in')")
            page.wait_for_url(f"{web_url}/ops/")
            page.wait_for_selector("#status:text-matches('^live')")
            yield page
        finally:
            browser.close()


def points(page, chart: str) -> int:
    return int(page.get_attribute(f"#{chart}", "data-points") or 0)


def during(page, load_seconds: int, shot: Path) -> None:
    """Wait until the load's orders are drawn, let half the run pass, and take the screenshot under load."""
    page.wait_for_function(
        "Number(document.getElementById('latency').dataset.points) > 0"
        " && document.getElementById('latency-empty').hidden",
        timeout=120_000,
    )
    page.wait_for_timeout(max(0, load_seconds / 2 - 5) * 1000)  # the first quantiles come some seconds in
    if not page.locator("#latency-empty").is_hidden():
        raise PageProblem("halfway through the load the latency panel said no order was confirmed")
    legend = ", ".join(page.locator("#latency-legend span").all_inner_texts())
    if not re.search(r"p50: [\d.]+ m?s", legend):
        raise PageProblem(f"under load the latency legend shows no p50: {legend!r}")
    page.screenshot(path=shot, full_page=True)
    say(f"during the load: {shot} (place → confirmed {legend})")


def after(page, shot: Path) -> None:
    """Wait until the latency panel is empty; check the history still holds the load; take the screenshot."""
    page.wait_for_selector("#latency-empty:visible", timeout=60_000)
    legend = ", ".join(page.locator("#latency-legend span").all_inner_texts())
    if "p50: –" not in legend or "p99: –" not in legend:
        raise PageProblem(f"idle, the latency legend still shows a value: {legend!r}")
    if not (points(page, "latency") and points(page, "orders")):
        raise PageProblem("idle, the charts no longer show the load")
    page.screenshot(path=shot, full_page=True)
    say(f"after the load: {shot} ({page.inner_text('#latency-empty')})")


def load_run(state_file: Path, run_time: str, extra: list[str]) -> subprocess.Popen:
    """Start ``python -m loadtests`` (make loadtest) against the devstack, in a process group of its own."""
    env = {**_without_servers(dict(os.environ)), "DEVSTACK_STATE": str(state_file), "LOCUST_RUN_TIME": run_time}
    return subprocess.Popen(
        [sys.executable, "-m", "loadtests", *extra],
        env=env,
        cwd=BASE_DIR,
        start_new_session=True,  # its Locust too: stopped together with it
        preexec_fn=parent_death_signal(signal.SIGTERM),
    )


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with devstack(args.data) as state_file:
        web_url = devstack_state.running(state_file)["web_url"].rstrip("/")
        with ops_page(web_url) as page:
            say(f"ops page open at {web_url}/ops/; starting make loadtest's run ({args.run_time})")
            run = load_run(state_file, args.run_time, extra)
            try:
                during(page, args.seconds, args.out / "ops-loadtest-during.png")
                code = run.wait()
                after(page, args.out / "ops-loadtest-after.png")
            except PageProblem as problem:
                say(f"error: {problem}")
                return 1
            finally:
                _stop(run, signal.SIGTERM, group=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
