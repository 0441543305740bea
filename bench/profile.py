"""Profile the hot path: py-spy records every service process of the bench's stack under closed-loop kiosk
load, and a table gives each one's largest own-code frames.

    .venv/bin/pip install py-spy      # a tool, not a dependency of Sanji
    .venv/bin/python -m bench.profile --out docs/profile [--seconds 25] [--preload-items 100000]

Writes ``<service>.collapsed.gz`` (py-spy's raw, collapsed stacks: ``flamegraph.pl`` or speedscope draws
them) and prints the table (docs/performance.md, "Profile of the hot path").
"""

from __future__ import annotations

import argparse
import collections
import gzip
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load import closed_loop
from bench.run import BENCH_ENV, preloaded_template
from bench.stack import EVERY_SERVICE, Stack

OWN_CODE = re.compile(r"\((services|shared)/")
NOT_INTERESTING = re.compile(r"GreenThread|_run_worker")


def frames_table(collapsed: dict[str, Path], top: int = 7) -> str:
    lines = ["| service | samples | in the hub (idle or I/O) | largest own-code frames, inclusive share of the "
             "samples |", "|---|---:|---:|---|"]
    for service, path in collapsed.items():
        inclusive: collections.Counter = collections.Counter()
        total = 0
        with gzip.open(path, "rt") as stacks:
            for line in stacks:
                stack, _, count = line.rstrip().rpartition(" ")
                total += int(count)
                for frame in {re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")}:
                    inclusive[frame] += int(count)
        if not total:
            continue
        hub = inclusive.get("BaseHub.run (eventlet/hubs/hub.py)", 0)
        frames = [(frame, n) for frame, n in inclusive.most_common()
                  if OWN_CODE.search(frame) and not NOT_INTERESTING.search(frame)][:top]
        listed = "; ".join(f"{frame.split(' (')[0]} {100 * n / total:.0f} %" for frame, n in frames)
        lines.append(f"| {service} | {total} | {100 * hub / total:.0f} % | {listed} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("var/bench/profile"))
    parser.add_argument("--seconds", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--preload-items", type=int, default=100_000)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    template = preloaded_template(args.preload_items) if args.preload_items else None
    stack = Stack("profile", replicas=dict(EVERY_SERVICE), extra_env=BENCH_ENV, template=template).create()
    collapsed: dict[str, Path] = {}
    try:
        stack.start()
        closed_loop([stack.url()], seconds=3, concurrency=args.concurrency)
        time.sleep(5)
        with tempfile.TemporaryDirectory() as scratch:
            recorders = {}
            for proc in stack.processes:
                raw = Path(scratch) / f"{proc.service}.txt"
                recorders[proc.service] = (raw, subprocess.Popen(
                    [py_spy, "record", "--rate", "100", "--duration", str(args.seconds), "--pid",
                     str(proc.process.pid), "--format", "raw", "--output", str(raw), "--nonblocking"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            load = closed_loop([stack.url()], seconds=args.seconds - 2, concurrency=args.concurrency)
            for service, (raw, recorder) in recorders.items():
                recorder.wait()
                if raw.exists():
                    collapsed[service] = args.out / f"{service}.collapsed.gz"
                    with open(raw, "rb") as source, gzip.open(collapsed[service], "wb") as target:
                        shutil.copyfileobj(source, target)
        print(f"{len(load.acknowledged)} cases in {args.seconds - 2} s of load")
        print(frames_table(collapsed))
    finally:
        stack.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
