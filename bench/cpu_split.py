"""Where the CPU goes: CPU seconds per process (each service, PostgreSQL, RabbitMQ, the load) per case.

Runs the bench's stack, puts 20 s of closed-loop kiosk load on it, waits until every case is notified,
and reads each process's user+system CPU time from /proc before and after.

    .venv/bin/python -m bench.cpu_split
"""

import os
import subprocess
import time

from bench.load import closed_loop
from bench.run import BENCH_ENV
from bench.stack import Stack

HZ = os.sysconf("SC_CLK_TCK")


NOTIFIED = ("SELECT COUNT(*) FROM notification_deliveries WHERE event_type = 'cn.sanji.item.routed.v1' "
            "AND channel = 'sms' AND status = 'sent'")


def cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ
    except FileNotFoundError:
        return 0.0


def pids(pattern):
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def main():
    stack = Stack("cpu", extra_env=BENCH_ENV).create()
    try:
        stack.start()
        closed_loop([stack.url()], seconds=3, concurrency=16)
        time.sleep(5)
        groups = {s: [stack.of(s)[0].process.pid] for s in ("intake", "routing", "notification")}
        groups["postgres"] = pids("postgres")
        groups["rabbitmq"] = pids("beam.smp")
        groups["load generator (this process)"] = [os.getpid()]
        already_notified = stack.scalar(NOTIFIED)
        before = {g: sum(cpu(p) for p in ps) for g, ps in groups.items()}
        t0 = time.time()
        r = closed_loop([stack.url()], seconds=20, concurrency=16)
        deadline = time.time() + 120
        n = len(r.acknowledged)
        while time.time() < deadline:
            if stack.scalar(NOTIFIED) >= already_notified + n:
                break
            time.sleep(1)
        elapsed = time.time() - t0
        after = {g: sum(cpu(p) for p in ps) for g, ps in groups.items()}
        total = sum(after[g] - before[g] for g in groups)
        print(f"cases {n}, wall {elapsed:.1f}s, CPU {total:.1f}s of {2*elapsed:.1f}s available")
        for g in groups:
            used = after[g] - before[g]
            print(f"{g:32s} {used:6.1f} s  {used*1000/n:6.1f} ms/case  {used*100/total:5.1f} %")
    finally:
        stack.destroy()


if __name__ == "__main__":
    main()
