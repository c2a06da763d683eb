"""The project as users run it: ``manage.py devstack`` (what ``make demo`` starts), on free ports, then stopped.

It gets embedded servers of its own (the lab's ``DATABASE_URL`` / ``NATS_URL``
are not passed on), its data under the run's log folder, and its flow log on,
as ``make demo`` has it. Its URL comes from the state file it writes once its
servers are up (``devstack.state``); a staff token, to top its stock up, from
``manage.py issue_token admin`` run beside it. Only the process started here
is stopped, by its PID: the supervisor stops its own children.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack import state
from devstack.embedded import free_port
from devstack.process import Process, ProcessError

from ..stack import MANAGE, BenchError
from .targets import Target

READY_TIMEOUT = 240.0  # seconds: embedded servers, migrations, the demo catalog, every process
STOP_TIMEOUT = 60.0  # seconds for the supervisor to stop its children and servers before SIGKILL


def issue_token(state_file: Path, env: dict[str, str]) -> str:
    """Return a staff token of the devstack whose state file is ``state_file`` (its user ``admin``)."""
    done = subprocess.run(
        [sys.executable, MANAGE, "issue_token", "admin"],
        env={**env, "DEVSTACK_STATE": str(state_file)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise BenchError(f"issue_token beside the devstack failed: {(done.stdout + done.stderr)[-500:]}")
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def running(log_dir: Path, env: dict[str, str], say=print) -> Iterator[Target]:
    """Start a devstack on free ports, yield it as a Target once ready, and stop it whatever happens."""
    env = {k: v for k, v in env.items() if k not in state.OWN_VARIABLES}
    data = log_dir / "devstack-data"
    command = [sys.executable, MANAGE, "devstack", "--port", str(free_port()), "--live-port", str(free_port())]
    proc = Process("devstack", [*command, "--data", str(data), "--fresh"], env, log_dir / "devstack.log").start()
    say(f"devstack starting (pid {proc.proc.pid}; log {log_dir / 'devstack.log'})")
    try:
        try:
            started = lambda: state.ready(proc.log_text(), data / "state.json")  # noqa: E731
            proc.wait_until(started, "the devstack", READY_TIMEOUT, poll=0.5)
        except ProcessError as exc:
            raise BenchError(str(exc)) from exc
        url = state.running(data / "state.json")["web_url"].rstrip("/")
        yield Target("devstack", url, "devstack", issue_token(data / "state.json", env))
    finally:
        proc.stop(timeout=STOP_TIMEOUT)
        say(f"devstack stopped (pid {proc.proc.pid})")
        shutil.rmtree(data, ignore_errors=True)  # its databases; the log stays
