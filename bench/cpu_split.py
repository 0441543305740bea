"""Where the CPU goes: CPU time per process (each service, PostgreSQL, RabbitMQ) per case, and at rest.

Runs the bench's stack (every service, production log level), measures each process's CPU for a while
with no load (what the timers and sweeps cost at rest), then puts closed-loop kiosk load on it, waits
until every case is notified, and reads each process's user+system CPU time from /proc (bench/cpu.py).

    .venv/bin/python -m bench.cpu_split [--seconds 20] [--concurrency 16] [--preload-items 0]
"""

import argparse
import time

from bench.cpu import CpuMeter
from bench.load import closed_loop
from bench.run import BENCH_ENV, preloaded_template
from bench.stack import EVERY_SERVICE, Stack

NOTIFIED = ("SELECT COUNT(*) FROM notification_deliveries WHERE event_type = 'cn.sanji.item.routed.v1' "
            "AND channel = 'sms' AND status = 'sent'")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--preload-items", type=int, default=0)
    args = parser.parse_args()
    template = preloaded_template(args.preload_items) if args.preload_items else None
    stack = Stack("cpu", replicas=dict(EVERY_SERVICE), extra_env=BENCH_ENV, template=template).create()
    try:
        stack.start()
        closed_loop([stack.url()], seconds=3, concurrency=args.concurrency)
        time.sleep(8)
        idle = CpuMeter(stack)
        idle.start()
        time.sleep(args.idle_seconds)
        at_rest = idle.stop()
        already_notified = stack.scalar(NOTIFIED)
        meter = CpuMeter(stack)
        meter.start()
        t0 = time.time()
        r = closed_loop([stack.url()], seconds=args.seconds, concurrency=args.concurrency)
        deadline = time.time() + 300
        n = len(r.acknowledged)
        while time.time() < deadline:
            if stack.scalar(NOTIFIED) >= already_notified + n:
                break
            time.sleep(0.5)
        elapsed = time.time() - t0
        used = meter.stop()
        total = sum(used.values())
        print(f"cases {n}, wall {elapsed:.1f}s, CPU {total:.1f}s of {2 * elapsed:.1f}s available, "
              f"{total * 1000 / n:.1f} ms a case")
        print(f"{'':16s} {'CPU s':>7s} {'ms/case':>8s} {'share':>6s} {'at rest ms/s':>13s}")
        for group, seconds in sorted(used.items(), key=lambda item: -item[1]):
            print(f"{group:16s} {seconds:7.1f} {seconds * 1000 / n:8.2f} {seconds * 100 / total:5.1f}% "
                  f"{at_rest.get(group, 0.0) * 1000 / args.idle_seconds:13.1f}")
    finally:
        stack.destroy()


if __name__ == "__main__":
    main()
