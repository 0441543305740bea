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
- E again with two routing replicas.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from datetime import datetime

from bench.load import closed_loop, open_loop
from bench.raw_broker import measure_raw_throughput
from bench.stack import REPO, Stack

# The bench measures the system, not an SMS provider's contract: lift the per-provider rate limit and
# the night-time hold (the run may well happen at night in Shanghai).
BENCH_ENV = {"SANJI_NOTIFICATION_QUIET_HOURS": "off",
             "SANJI_NOTIFICATION_RATE_LIMITS": "sms=100000,email=100000,webhook=100000",
             "SANJI_NOTIFICATION_SWEEP_SECONDS": "0.2"}

# The bench's stack keeps every service's tables in one database, so a notification joins its case.
_OF_WINDOW = """
    FROM notification_deliveries
    WHERE event_type = 'cn.sanji.item.routed.v1' AND channel = 'sms' AND status = 'sent'
      AND case_id IN (SELECT id FROM intake_cases WHERE submitted_at >= :start AND submitted_at < :end)
"""
NOTIFIED_SQL = "SELECT COUNT(*) " + _OF_WINDOW
LAST_SENT_SQL = "SELECT MAX(sent_at) " + _OF_WINDOW


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
    load = closed_loop(urls, seconds=seconds, concurrency=concurrency,
                       progress=lambda sent, ok: say(f"  submitted {sent}, acknowledged {ok}"))
    window_end = load.ended_at
    case_ids = [s.case_id for s in load.acknowledged]
    drain_deadline = time.monotonic() + 300
    while time.monotonic() < drain_deadline:  # the pipeline finishes what the window took in
        notified = stack.scalar(NOTIFIED_SQL, start=utc(load.started_at), end=utc(window_end))
        say(f"  draining: {notified} of {len(case_ids)} notified")
        if notified >= len(case_ids):
            break
        time.sleep(5)
    notified = stack.scalar(NOTIFIED_SQL, start=utc(load.started_at), end=utc(window_end))
    last_sent = stack.scalar(LAST_SENT_SQL, start=utc(load.started_at), end=utc(window_end))
    finished = last_sent.timestamp() if last_sent else window_end
    window = window_end - load.started_at
    return {"window_s": round(window, 1), "concurrency": concurrency, "acknowledged": len(case_ids),
            "errors": len(load.submissions) - len(case_ids), "notified": notified,
            "pipeline_s": round(finished - load.started_at, 1), "drain_s": round(finished - window_end, 1),
            "cases_per_s": round(notified / (finished - load.started_at), 1),
            "intake_cases_per_s": round(len(case_ids) / window, 1)}


def latency_at(stack: Stack, rate: float, seconds: float) -> dict:
    from examples.department_subscriber import subscribe

    arrivals: dict[str, float] = {}
    ready = threading.Event()

    def on_event(event):
        arrivals.setdefault(event["data"]["case_id"], time.time())

    listener = threading.Thread(target=subscribe, args=(stack.amqp_uri, "bench.department", ["item.routed.#"],
                                                        on_event), kwargs={"timeout": seconds + 40,
                                                                           "ready": ready.set}, daemon=True)
    listener.start()
    ready.wait(10)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short form (under 2 minutes)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--notification-replicas", type=int, default=1,
                        help="notification processes (the stage that costs most CPU per case)")
    args = parser.parse_args()
    raw_seconds, e_seconds, latency_seconds = (8, 20, 12) if args.quick else (30, 60, 30)
    report: dict = {"started": datetime.now().isoformat(timespec="seconds"), "quick": args.quick,
                    "method": __doc__.split("\n\n", 1)[1].strip()}

    notifiers = args.notification_replicas
    stack = Stack("bench", replicas={"intake": 1, "routing": 1, "notification": notifiers},
                  extra_env=BENCH_ENV).create()
    try:
        say(f"B: raw kombu publish-with-confirm + consume for {raw_seconds}s ...")
        report["raw"] = measure_raw_throughput(stack.amqp_uri, raw_seconds)
        say(f"B = {report['raw']['msgs_per_s']} msgs/s")
        say(f"starting intake, routing and {notifiers} notification process(es) on PostgreSQL ...")
        stack.start()
        report["e2e"] = end_to_end_rate(stack, e_seconds, args.concurrency)
        say(f"E = {report['e2e']['cases_per_s']} cases/s")
        report["latency"] = latency_at(stack, max(1.0, report["e2e"]["cases_per_s"] / 2), latency_seconds)
        say(f"routed p99 = {report['latency']['routed_p99_ms']} ms")
    finally:
        stack.destroy()

    stack2 = Stack("bench2", replicas={"intake": 1, "routing": 2, "notification": notifiers},
                   extra_env=BENCH_ENV).create()
    try:
        say("starting again with two routing replicas ...")
        stack2.start()
        report["e2e_routing_x2"] = end_to_end_rate(stack2, e_seconds, args.concurrency)
        say(f"E (routing x2) = {report['e2e_routing_x2']['cases_per_s']} cases/s")
    finally:
        stack2.destroy()

    raw = report["raw"]["msgs_per_s"]
    summary = {
        "raw_msgs_per_s": raw,
        "e2e_cases_per_s": report["e2e"]["cases_per_s"],
        "e2e_over_raw": round(report["e2e"]["cases_per_s"] / raw, 4) if raw else None,
        "routed_p50_ms": report["latency"]["routed_p50_ms"],
        "routed_p99_ms": report["latency"]["routed_p99_ms"],
        "routed_max_ms": report["latency"]["routed_max_ms"],
        "notified_p50_ms": report["latency"]["notified_p50_ms"],
        "notified_p99_ms": report["latency"]["notified_p99_ms"],
        "e2e_cases_per_s_routing_x2": report["e2e_routing_x2"]["cases_per_s"],
        "notification_replicas": notifiers,
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
