"""CPU time per process group, read from /proc: each service's processes, the broker and the database.

``cpu_ms_per_case`` is the CPU time (user + system) of every service process, RabbitMQ (``beam.smp``) and
PostgreSQL (the backends serving the run's database, and the server's WAL writer, checkpointer and
background writer) over a measured interval, divided by the cases completed in it. The broker is the
node listening on the run's AMQP port (SANJI_BENCH_AMQP_PORT). A broker or database server shared with
other work is counted whole, so anything else using them at the same time is counted too: the figure errs
on the high side. A private broker node for the bench keeps it clean (docs/performance.md).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field

HZ = os.sysconf("SC_CLK_TCK")
POSTGRES_HELPERS = ("postgres: .*walwriter", "postgres: .*checkpointer", "postgres: .*background writer")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (None once it has gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port (the broker of the run), from /proc/net/tcp*."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except FileNotFoundError:
            continue
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    return int(pid)
        except OSError:
            continue
    return None


def pgrep(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in out]


@dataclass
class CpuMeter:
    """CPU seconds per group between ``start()`` and ``stop()``.

    Processes are found again at ``stop()``: a database backend opened during the interval counts from
    zero (it did not exist at the start); one that ended during it is lost (pools keep theirs open)."""

    stack: object
    started: dict[tuple[str, int], float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def groups(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for proc in self.stack.processes:
            if proc.process is not None and proc.process.poll() is None:
                groups.setdefault(proc.service, []).append(proc.process.pid)
        broker = listening_pid(self.stack.amqp_port)
        groups["rabbitmq"] = [broker] if broker else pgrep("beam.smp")
        backends = [pid for (pid,) in self.stack.rows(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
        groups["postgres"] = backends
        # The server's WAL writer, checkpointer and background writer work for every database of the server:
        # on a shared server, others' too. A group of their own, so the split shows how much that is.
        groups["postgres-server"] = [pid for pattern in POSTGRES_HELPERS for pid in pgrep(pattern)]
        return groups

    def start(self) -> None:
        self.started = {(group, pid): seconds for group, pids in self.groups().items() for pid in pids
                        if (seconds := cpu_seconds(pid)) is not None}

    def stop(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for group, pids in self.groups().items():
            total = 0.0
            for pid in pids:
                now = cpu_seconds(pid)
                if now is not None:
                    total += now - self.started.get((group, pid), 0.0)
            used[group] = total
        self.used = used
        return used

    def per_case(self, cases: int) -> dict:
        total = sum(self.used.values())
        return {"cpu_s": round(total, 2), "cases": cases,
                "cpu_ms_per_case": round(total * 1000 / cases, 2) if cases else None,
                "by_process_ms_per_case": {group: round(seconds * 1000 / cases, 2) if cases else None
                                           for group, seconds in sorted(self.used.items(),
                                                                        key=lambda item: -item[1])}}
