"""One child process of ours, and how it starts, is probed and stops.

Every child runs in its own session, so its whole process group can be
signalled by its PID, and is asked by the kernel to stop when its parent dies
(``PR_SET_PDEATHSIG``), so a killed parent leaves nothing behind. Its output
goes to a log file, or is echoed with a ``[name]`` prefix, or is inherited.

This module imports nothing from Django: it runs before settings exist.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1
BASE_DIR = Path(__file__).resolve().parent.parent


class ProcessError(RuntimeError):
    """A child exited or did not become ready in time; the message says where to look."""


def parent_death_signal(sig: int = signal.SIGTERM, uid: int | None = None, gid: int | None = None):
    """Build a ``preexec_fn``: drop to uid/gid if given, then get ``sig`` when the parent dies."""

    def preexec() -> None:
        if gid is not None:
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        # Set after setuid: a credential change clears the parent-death signal (prctl(2)).
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig)

    return preexec


def stop_process_group(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Signal a child started with ``start_new_session`` and its whole group; SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


def group_alive(pgid: int) -> bool:
    """Return whether a process of group ``pgid`` still runs (zombies, which nobody may reap, do not)."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone while we looked
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def http_ok(url: str) -> bool:
    """Return whether ``url`` answers 200 within two seconds."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _echo(prefix: str, stream) -> None:
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"[{prefix}] {line.decode(errors='replace')}")
        sys.stdout.flush()


@dataclass
class Process:
    """A child in its own session: output to ``log_path``, echoed with its name, or inherited."""

    name: str
    command: list[str]
    env: dict[str, str] | None = None
    log_path: Path | None = None
    echo: bool = False
    death_signal: int = signal.SIGTERM
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Process:
        """Start the process; a log file is appended to, never truncated."""
        options = {
            "env": self.env,
            "cwd": BASE_DIR,
            "stdin": subprocess.DEVNULL,
            "start_new_session": True,
            "preexec_fn": parent_death_signal(self.death_signal),
        }
        if self.log_path is not None:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, **options)
        elif self.echo:
            self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **options)
            threading.Thread(target=_echo, args=(self.name, self.proc.stdout), daemon=True).start()
        else:
            self.proc = subprocess.Popen(self.command, **options)
        return self

    @property
    def returncode(self) -> int | None:
        """Return the exit code, or None while it runs (or before it started)."""
        return None if self.proc is None else self.proc.poll()

    def alive(self) -> bool:
        """Return whether the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        """Signal the process group (SIGTERM by default), then SIGKILL it if it lingers."""
        stop_process_group(self.proc, sig, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash: no cleanup, no acks."""
        self.stop(signal.SIGKILL)

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 60, poll: float = 0.1) -> None:
        """Wait until ``ready()`` is true; raise ProcessError if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.alive():
                raise ProcessError(f"{what} exited with code {self.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise ProcessError(f"{what} not ready after {timeout:.0f}s; see {self.log_path}")
            time.sleep(poll)

    def log_text(self) -> str:
        """Return the log file's text, or "" if there is none."""
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        """Return the last lines of the log file."""
        return "\n".join(self.log_text().splitlines()[-lines:])
