"""The state file of a devstack running in this checkout: where its servers are.

The supervisor writes it when its servers are up and removes it when it stops.
``DEVSTACK_STATE`` names another file (for a devstack run with ``--data``).

This module imports nothing from Django: entry points call
``export_to_environ()`` before settings are loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PATH = BASE_DIR / ".data" / "devstack" / "state.json"


def state_path() -> Path:
    """Return the state file's path: ``DEVSTACK_STATE``, or the default one of this checkout."""
    return Path(os.environ.get("DEVSTACK_STATE", DEFAULT_PATH))


def running(path: Path | str | None = None) -> dict:
    """Return the state of the devstack whose file is at ``path``, or {} if none runs."""
    try:
        state = json.loads(Path(path or state_path()).read_text())
        os.kill(state["pid"], 0)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return state


def write(path: Path, state: dict) -> None:
    """Record the state of the devstack of this process."""
    path.write_text(json.dumps(state))


def forget(path: Path) -> None:
    """Remove the state file if this process wrote it (a second devstack must not remove the first's)."""
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def export_to_environ() -> None:
    """Set unset (or empty) ``DATABASE_URL`` / ``NATS_URL`` to the servers of a running devstack."""
    state = running()
    for name, key in (("DATABASE_URL", "database_url"), ("NATS_URL", "nats_url")):
        if not os.environ.get(name) and state.get(key):
            os.environ[name] = state[key]


# What a devstack started by another process must not inherit: it makes its own servers, state and logs.
OWN_VARIABLES = ("DATABASE_URL", "NATS_URL", "DEVSTACK_STATE", "PROMETHEUS_MULTIPROC_DIR", "LOG_FLOW", "LOG_FLOW_FILE")


def ready(output: str, path: Path) -> bool:
    """Return whether a devstack printed its ready line in ``output`` and its state file at ``path`` names its web."""
    return "[devstack] ready:" in output and bool(running(path).get("web_url"))
