"""CPU time per process group, read from /proc: where a scenario's time goes, at no cost to it.

Each process is put in a group: a child of the bench by its session (each
child leads its own), PostgreSQL and nats-server by their command name if
they descend from the bench's parent (``devstack.embedded``, which started
them; servers the bench did not get that way, such as a system PostgreSQL,
are not counted), the bench itself (the load generator, and the service
scenario's threads) by its PID. A process's figure counts its reaped
children too (``cutime``), so a PostgreSQL backend that ends within the
window is not lost. What the whole machine was busy beyond these groups
(other users of the machine, the kernel) is reported as ``other``: when it
is large, something else disturbed the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

GROUPS = ["web", "relay", "workers", "postgres", "nats", "bench"]
MACHINE = 0  # the key of the whole machine's busy time in a snapshot (no process has PID 0)
TICK = os.sysconf("SC_CLK_TCK")
COMMANDS = {"postgres": "postgres", "nats-server": "nats"}


@dataclass(frozen=True)
class Stat:
    """What /proc/<pid>/stat says of a process that the bench needs."""

    command: str
    parent: int
    session: int
    seconds: float  # CPU, its own and its reaped children's


def _read(pid: int) -> Stat | None:
    """Return the stat of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # fields[0] is field 3 of proc_pid_stat(5), the state
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return Stat(raw[raw.index("(") + 1 : raw.rindex(")")], int(fields[1]), int(fields[3]), ticks / TICK)


def _machine_busy() -> float:
    """Return the CPU seconds all CPUs have been busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / TICK


def _descends(pid: int, ancestor: int, stats: dict[int, Stat]) -> bool:
    while pid in stats and pid > 1:
        pid = stats[pid].parent
        if pid == ancestor:
            return True
    return False


def snapshot(sessions: dict[int, str]) -> dict[int, tuple[str, float]]:
    """Return {pid: (group, CPU seconds)} of every process of a group; ``sessions`` maps a session to its group."""
    stats = {int(e): s for e in os.listdir("/proc") if e.isdigit() and (s := _read(int(e))) is not None}
    me, parent = os.getpid(), os.getppid()
    found = {MACHINE: ("machine", _machine_busy())}
    for pid, stat in stats.items():
        group = sessions.get(stat.session)
        if pid == me:
            group = "bench"
        elif group is None and stat.command in COMMANDS and _descends(pid, parent, stats):
            group = COMMANDS[stat.command]
        if group:
            found[pid] = (group, stat.seconds)
    return found


def used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """Return CPU seconds per group between two snapshots, and ``other``: the rest of the machine's busy time.

    A process new in ``after`` counts from zero.
    """
    totals = dict.fromkeys(GROUPS, 0.0)
    for pid, (group, seconds) in after.items():
        if pid != MACHINE:
            start = before.get(pid)
            totals[group] += seconds - (start[1] if start and start[0] == group else 0.0)
    machine = after[MACHINE][1] - before[MACHINE][1]
    totals["other"] = max(0.0, machine - sum(totals.values()))
    return totals
