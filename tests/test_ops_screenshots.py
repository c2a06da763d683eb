"""``make ops-screenshots`` end to end: the ops page in chromium during and after a short steady load.

No devstack runs for the command to find, so it starts its own (its data in
the test's folder), runs ``make loadtest``'s run for 12 s, and checks the page
itself: quantiles in the latency panel under load; after the load that panel
empty and the charts still holding it. Here: the run passed, both pictures
were written, and nothing it started outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.process import parent_death_signal
from tests.pipeline import BASE_DIR, wait_for

pytestmark = pytest.mark.pipeline


def processes_naming(text: str) -> list[str]:
    """Return the command lines of the running processes that contain ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if text in line and proc.name != str(os.getpid()):
            found.append(line)
    return found


def test_the_ops_page_is_pictured_during_and_after_the_load_and_nothing_is_left_running(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL") and not k.startswith("LOCUST_")}
    env["DEVSTACK_STATE"] = str(tmp_path / "no-devstack.json")
    out = tmp_path / "screenshots"
    command = [sys.executable, "-m", "loadtests.ops_screenshots", "--run-time", "12s", "--out", str(out)]
    command += ["--data", str(tmp_path / "stack"), "--reports", str(tmp_path / "reports"), "--settle", "30"]

    done = subprocess.run(
        command,
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=400,
        preexec_fn=parent_death_signal(signal.SIGTERM),
    )

    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "starting one" in output and "PASS" in output
    assert "No order confirmed in the last 10 s." in output
    for name in ("ops-loadtest-during.png", "ops-loadtest-after.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG"), name
    # The devstack (postgres -D, nats-server's store), Locust (--csv): each named the test's folder.
    wait_for(lambda: not processes_naming(str(tmp_path)), 15, "every process the command started to exit")
