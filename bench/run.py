"""`make bench` / `make bench-quick`: raw broker baseline, end-to-end rate, latency, and routing x2, in one run.

How it measures (printed with the figures, and written to var/bench/):
- B: plain kombu, 1 KB persistent messages, a publisher confirm awaited per message, a concurrent
  consumer acking each; messages consumed per second.
- E: kiosk HTTP submissions of a single-matter case (closed loop, N clients, keep-alive) for the
  window, on PostgreSQL, through intake -> routing -> notification. E = the cases submitted in the
  window whose resident progress SMS (sent after routing) is recorded as sent to the development sink,
  counted from the notification database, divided by the time from the first submission to the last
  of those notifications. Dividing by the time until the pipeline has finished (not by the window)
  keeps a backlog that builds up from counting as throughput.
- Latency at half of E (open loop): from the HTTP 201 to the item.routed event arriving in a
  department's queue (a plain kombu subscriber), and to the notification recorded as sent.
- E again with two routing replicas (full run only).
- Every service runs (intake, routing, escalation, notification, evaluation, console, subscriptions), one
  process each, at production's log level (INFO), on a database that already holds earlier items
  (bench.preload_items, loaded once by COPY into a template database that each run copies).
- CPU per case: user + system CPU time, from /proc, of every service process, RabbitMQ (beam.smp) and
  PostgreSQL (the run database's backends and the server's WAL writer, checkpointer and background
  writer), from the first submission of E's window until its last case is notified, divided by the
  cases notified (bench/cpu.py). The broker and the database server are shared with anything else on
  the machine, so the figure errs on the high side.
- Open-loop capacity: Poisson arrivals at a fixed rate, stepped up (60 s a step; 15 s in the quick
  form). A rate is sustained when every submission is acknowledged, routed p99 (HTTP 201 to item.routed
  at a department's queue) stays under 100 ms, and no queue grows (the vhost's queue depths from the
  management API, compared between the start and the end of the step). sustainable_cases_per_s is the
  highest rate sustained, also given as a share of B.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.parse
from datetime import datetime

import requests

from bench.cpu import CpuMeter
from bench.load import closed_loop, open_loop, poisson_loop
from bench.raw_broker import measure_raw_throughput
from bench.stack import BROKER_AUTH, EVERY_SERVICE, REPO, Stack

# The bench measures the system, not an SMS provider's contract: lift the per-provider rate limit and
# the night-time hold (the run may well happen at night in Shanghai).
# The sweep runs at production's interval (planning wakes it when it has deliveries to send).
BENCH_ENV = {"SANJI_NOTIFICATION_QUIET_HOURS": "off",
             "SANJI_NOTIFICATION_RATE_LIMITS": "sms=100000,email=100000,webhook=100000"}

# The bench's stack keeps every service's tables in one database, so a notification joins its case.
_OF_WINDOW = """
    FROM notification_deliveries
    WHERE event_type = 'cn.sanji.item.routed.v1' AND channel = 'sms' AND status = 'sent'
      AND case_id IN (SELECT id FROM intake_cases WHERE submitted_at >= :start AND submitted_at < :end)
"""
NOTIFIED_SQL = "SELECT COUNT(*) " + _OF_WINDOW
LAST_SENT_SQL = "SELECT MAX(sent_at) " + _OF_WINDOW

# Earlier items in the database when the timing starts (the issue: at least 100,000, loaded once by COPY).
PRELOAD_ITEMS = 100_000


def preloaded_template(items: int) -> str:
    """The name of a template database, migrated and holding ``items`` earlier items, made once (bench.preload)
    and copied by each run."""
    from bench.template_db import ensure_template

    return ensure_template(items, say=say)


def say(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def utc(timestamp: float) -> datetime:
    from datetime import UTC

    return datetime.fromtimestamp(timestamp, UTC)


def end_to_end_rate(stack: Stack, seconds: float, concurrency: int) -> dict:
    urls = [stack.url("intake", i) for i in range(len(stack.of("intake")))]
    closed_loop(urls, seconds=3, concurrency=concurrency)  # warm-up: connections, caches, JIT-free Python paths
    time.sleep(2)
    say(f"E: {concurrency} kiosk clients for {seconds:.0f}s ...")
    meter = CpuMeter(stack)
    meter.start()
    load = closed_loop(urls, seconds=seconds, concurrency=concurrency,
                       progress=lambda sent, ok: say(f"  submitted {sent}, acknowledged {ok}"))
    window_end = load.ended_at
    case_ids = [s.case_id for s in load.acknowledged]
    drain_deadline = time.monotonic() + 300
    last_said = 0.0
    while time.monotonic() < drain_deadline:  # the pipeline finishes what the window took in
        notified = stack.scalar(NOTIFIED_SQL, start=utc(load.started_at), end=utc(window_end))
        if notified >= len(case_ids):
            break
        if time.monotonic() - last_said >= 5:
            last_said = time.monotonic()
            say(f"  draining: {notified} of {len(case_ids)} notified")
        time.sleep(0.5)
    meter.stop()
    notified = stack.scalar(NOTIFIED_SQL, start=utc(load.started_at), end=utc(window_end))
    last_sent = stack.scalar(LAST_SENT_SQL, start=utc(load.started_at), end=utc(window_end))
    finished = last_sent.timestamp() if last_sent else window_end
    window = window_end - load.started_at
    return {"window_s": round(window, 1), "concurrency": concurrency, "acknowledged": len(case_ids),
            "errors": len(load.submissions) - len(case_ids), "notified": notified,
            "pipeline_s": round(finished - load.started_at, 1), "drain_s": round(finished - window_end, 1),
            "cases_per_s": round(notified / (finished - load.started_at), 1),
            "intake_cases_per_s": round(len(case_ids) / window, 1), "cpu": meter.per_case(notified)}


def department_listener(stack: Stack, seconds: float, queue: str = "bench.department") -> dict[str, float]:
    """Case id -> when its item.routed reached a department's queue (a plain kombu subscriber), filled for
    ``seconds`` in a background thread."""
    from examples.department_subscriber import subscribe

    arrivals: dict[str, float] = {}
    ready = threading.Event()

    def on_event(event):
        arrivals.setdefault(event["data"]["case_id"], time.time())

    def listen():
        try:
            subscribe(stack.amqp_uri, queue, ["item.routed.#"], on_event, timeout=seconds, ready=ready.set)
        except Exception as exc:  # noqa: BLE001 - at the end the stack, its virtual host with it, is torn down under it
            print(f"[bench] department listener stopped: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    return arrivals


def latency_at(stack: Stack, rate: float, seconds: float) -> dict:
    arrivals = department_listener(stack, seconds + 40)
    say(f"latency: open loop at {rate:.1f} cases/s for {seconds:.0f}s ...")
    load = open_loop([stack.url("intake")], seconds=seconds, rate=rate)
    answered = {s.case_id: s.answered_at for s in load.acknowledged}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(set(answered) & set(arrivals)) < len(answered):
        time.sleep(0.5)
    time.sleep(3)
    sent_rows = stack.rows("SELECT case_id, sent_at FROM notification_deliveries WHERE event_type = "
                           "'cn.sanji.item.routed.v1' AND channel = 'sms' AND status = 'sent'")
    sent = {case_id: sent_at.timestamp() for case_id, sent_at in sent_rows if case_id in answered}
    routed_ms = [(arrivals[c] - t) * 1000 for c, t in answered.items() if c in arrivals]
    notified_ms = [(sent[c] - t) * 1000 for c, t in answered.items() if c in sent]
    return {"rate": round(rate, 1), "seconds": seconds, "acknowledged": len(answered),
            "routed_seen": len(routed_ms), "notified_seen": len(notified_ms),
            "routed_p50_ms": round(percentile(routed_ms, 0.5), 1),
            "routed_p99_ms": round(percentile(routed_ms, 0.99), 1),
            "routed_max_ms": round(max(routed_ms, default=float("nan")), 1),
            "notified_p50_ms": round(percentile(notified_ms, 0.5), 1),
            "notified_p99_ms": round(percentile(notified_ms, 0.99), 1),
            "notified_max_ms": round(max(notified_ms, default=float("nan")), 1),
            "http_p50_ms": round(statistics.median([(s.answered_at - s.sent_at) * 1000
                                                    for s in load.acknowledged] or [float("nan")]), 1)}


def queue_depths(stack: Stack) -> dict[str, int]:
    """Messages ready or unacknowledged per queue of the run's vhost (the management API's figures, which
    it refreshes every few seconds). Streams (the event log) are left out: a log keeps what it is given, its
    length is not a backlog."""
    vhost = urllib.parse.quote(stack.vhost, safe="")
    queues = requests.get(f"{stack.management}/queues/{vhost}", auth=BROKER_AUTH, timeout=10).json()
    return {queue["name"]: int(queue.get("messages", 0) or 0) for queue in queues
            if not queue["name"].startswith("bench.") and queue.get("type") != "stream"}


def outbox_backlog(stack: Stack) -> int:
    return stack.scalar("SELECT COUNT(*) FROM outbox_messages WHERE published_at IS NULL")


def capacity_step(stack: Stack, rate: float, seconds: float) -> dict:
    """Poisson arrivals at ``rate`` for ``seconds``: routed latency, and whether any queue grew."""
    arrivals = department_listener(stack, seconds + 40, queue=f"bench.capacity-{rate:.0f}")
    samples: list[tuple[float, dict[str, int], int]] = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                samples.append((time.monotonic(), queue_depths(stack), outbox_backlog(stack)))
            except Exception:  # noqa: BLE001 - a missed sample is not a result
                pass
            stop.wait(2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    load = poisson_loop([stack.url("intake")], seconds=seconds, rate=rate, concurrency=max(32, int(rate)))
    stop.set()
    sampler.join(5)
    answered = {s.case_id: s.answered_at for s in load.acknowledged}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(set(answered) & set(arrivals)) < len(answered):
        time.sleep(0.5)
    # A routed event that never came within 20 s counts as that late (p99 over the offered cases).
    routed_ms = sorted((arrivals[c] - t) * 1000 if c in arrivals else 20_000.0 for c, t in answered.items())
    # Growth: the depths over the last quarter of the step against the first quarter (the management API
    # refreshes its figures every 5 s, so single samples are coarse).
    quarter = max(1, len(samples) // 4)
    first, last = samples[:quarter], samples[-quarter:]

    def mean_depth(part, name):
        return sum(depths.get(name, 0) for _, depths, _ in part) / len(part) if part else 0.0

    names = sorted({name for _, depths, _ in samples for name in depths})
    growth = {name: round(mean_depth(last, name) - mean_depth(first, name), 1) for name in names}
    outbox_growth = (sum(b for *_, b in last) / len(last) - sum(b for *_, b in first) / len(first)) if samples else 0
    allowance = max(20.0, rate * 2)  # two seconds of arrivals: noise, not a trend
    growing = sorted(name for name, grew in growth.items() if grew > allowance)
    if outbox_growth > allowance:
        growing.append("outbox")
    errors = len(load.submissions) - len(answered)
    p99 = percentile(routed_ms, 0.99)
    step = {"rate": round(rate, 1), "seconds": seconds, "offered": len(load.submissions),
            "acknowledged": len(answered), "errors": errors,
            "achieved_per_s": round(len(load.submissions) / max(load.ended_at - load.started_at, 1e-9), 1),
            "routed_p50_ms": round(percentile(routed_ms, 0.5), 1), "routed_p99_ms": round(p99, 1),
            "routed_max_ms": round(max(routed_ms, default=float("nan")), 1),
            "queue_growth": {name: grew for name, grew in growth.items() if grew}, "growing": growing,
            "max_depth": max((sum(depths.values()) for _, depths, _ in samples), default=0)}
    step["sustained"] = bool(answered) and errors == 0 and p99 < 100 and not growing
    return step


def settle(stack: Stack, timeout: float = 60) -> None:
    """Wait until the vhost's queues and the outboxes are empty (what a step left behind is not the next one's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(queue_depths(stack).values()) and not outbox_backlog(stack):
            return
        time.sleep(1)


def open_loop_capacity(stack: Stack, closed_loop_rate: float, seconds: float, max_steps: int = 8) -> dict:
    """Step the Poisson arrival rate up from about half the closed-loop E until a step is not sustained (halving
    when even the first is not), then bisect between the highest sustained rate and the lowest one that was not,
    until they are within 25 % of each other or the steps run out."""
    rate = max(2.0, round(closed_loop_rate * 0.5))
    steps = []

    def run_step(rate: float) -> dict:
        settle(stack)
        say(f"capacity: Poisson arrivals at {rate:g} cases/s for {seconds:.0f}s ...")
        step = capacity_step(stack, rate, seconds)
        steps.append(step)
        say(f"  p99 {step['routed_p99_ms']} ms, errors {step['errors']}, growing {step['growing'] or 'none'}: "
            f"{'sustained' if step['sustained'] else 'NOT sustained'}")
        return step

    while len(steps) < max_steps:
        step = run_step(rate)
        if step["sustained"]:
            if any(not earlier["sustained"] for earlier in steps):
                break   # the rate above was tried already, and failed
            rate = round(rate * 1.2 + 1)
        elif any(earlier["sustained"] for earlier in steps) or rate <= 1:
            break
        else:
            rate = max(1.0, round(rate / 2, 1))   # not even the first: look below it
    while len(steps) < max_steps:
        sustained = [step["rate"] for step in steps if step["sustained"]]
        failed = [step["rate"] for step in steps if not step["sustained"] and step["rate"] > max(sustained, default=0)]
        if not sustained or not failed or min(failed) <= max(sustained) * 1.25:
            break
        run_step(round((max(sustained) + min(failed)) / 2, 1))
    sustained = [step["rate"] for step in steps if step["sustained"]]
    return {"steps": steps, "sustainable_cases_per_s": max(sustained, default=0.0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short form (shorter windows and steps, no routing x2)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--notification-replicas", type=int, default=1,
                        help="notification processes (the stage that costs most CPU per case)")
    parser.add_argument("--preload-items", type=int, default=PRELOAD_ITEMS,
                        help="earlier items in the database before the timing starts (0: an empty database)")
    parser.add_argument("--no-capacity", action="store_true", help="skip the open-loop capacity steps")
    args = parser.parse_args()
    raw_seconds, e_seconds, latency_seconds, step_seconds = (8, 20, 12, 15) if args.quick else (30, 60, 30, 60)
    report: dict = {"started": datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
                    "method": __doc__.split("\n\n", 1)[1].strip()}

    notifiers = args.notification_replicas
    template = preloaded_template(args.preload_items) if args.preload_items else None
    report["preloaded_items"] = args.preload_items
    stack = Stack("bench", replicas={**EVERY_SERVICE, "notification": notifiers}, extra_env=BENCH_ENV,
                  template=template).create()
    try:
        say(f"B: raw kombu publish-with-confirm + consume for {raw_seconds}s ...")
        report["raw"] = measure_raw_throughput(stack.amqp_uri, raw_seconds)
        say(f"B = {report['raw']['msgs_per_s']} msgs/s")
        say(f"starting {', '.join(stack.replicas)} ({notifiers} notification process(es)) on PostgreSQL, "
            f"{args.preload_items} earlier items ...")
        stack.start()
        report["e2e"] = end_to_end_rate(stack, e_seconds, args.concurrency)
        say(f"E = {report['e2e']['cases_per_s']} cases/s, {report['e2e']['cpu']['cpu_ms_per_case']} ms CPU a case "
            f"{report['e2e']['cpu']['by_process_ms_per_case']}")
        report["latency"] = latency_at(stack, max(1.0, report["e2e"]["cases_per_s"] / 2), latency_seconds)
        say(f"routed p99 = {report['latency']['routed_p99_ms']} ms")
        if not args.no_capacity:
            report["capacity"] = open_loop_capacity(stack, report["e2e"]["cases_per_s"], step_seconds)
            say(f"sustainable = {report['capacity']['sustainable_cases_per_s']} cases/s")
    finally:
        stack.destroy()

    if not args.quick:
        stack2 = Stack("bench2", replicas={**EVERY_SERVICE, "routing": 2, "notification": notifiers},
                       extra_env=BENCH_ENV, template=template).create()
        try:
            say("starting again with two routing replicas ...")
            stack2.start()
            report["e2e_routing_x2"] = end_to_end_rate(stack2, e_seconds, args.concurrency)
            say(f"E (routing x2) = {report['e2e_routing_x2']['cases_per_s']} cases/s")
        finally:
            stack2.destroy()

    raw = report["raw"]["msgs_per_s"]
    sustainable = report.get("capacity", {}).get("sustainable_cases_per_s")
    summary = {
        "raw_msgs_per_s": raw,
        "e2e_cases_per_s": report["e2e"]["cases_per_s"],
        "e2e_over_raw": round(report["e2e"]["cases_per_s"] / raw, 4) if raw else None,
        "cpu_ms_per_case": report["e2e"]["cpu"]["cpu_ms_per_case"],
        "cpu_ms_per_case_by_process": report["e2e"]["cpu"]["by_process_ms_per_case"],
        "routed_p50_ms": report["latency"]["routed_p50_ms"],
        "routed_p99_ms": report["latency"]["routed_p99_ms"],
        "routed_max_ms": report["latency"]["routed_max_ms"],
        "notified_p50_ms": report["latency"]["notified_p50_ms"],
        "notified_p99_ms": report["latency"]["notified_p99_ms"],
        "sustainable_cases_per_s": sustainable,
        "sustainable_over_raw": round(sustainable / raw, 4) if raw and sustainable is not None else None,
        "e2e_cases_per_s_routing_x2": report.get("e2e_routing_x2", {}).get("cases_per_s"),
        "notification_replicas": notifiers,
        "preloaded_items": args.preload_items,
        "quick": args.quick,
    }
    report["summary"] = summary
    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"report-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    say(f"report written to {path.relative_to(REPO)}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
