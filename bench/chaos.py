"""`make chaos` / `make chaos-quick`: faults injected under a steady kiosk load, then every submission checked.

Faults, each injected ``--rounds`` times: kill -9 of each service's process; a SIGTERM in the middle
of the load; every connection to the broker closed; a RabbitMQ restart (stop_app/start_app); a
PostgreSQL restart; duplicate delivery of every event (a tap republishes each event once more, same
id); poison messages (valid JSON that can never be handled).

The kiosk load retries a failed submission with the same Idempotency-Key, as a kiosk would. When the
load stops and the system has settled, a checker classifies every submission, as Jepsen does:
acknowledged and present (one case, one item, one routed notification), lost, duplicated (a second
case, item or notification for one cause), or dead-lettered. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
from kombu import Connection, Consumer, Producer

from bench.load import KioskClient, Submission
from bench.stack import BROKER_AUTH, MANAGEMENT, REPO, Stack
from shared.events import CLOUDEVENTS_CONTENT_TYPE
from shared.topology import DEAD_LETTER_QUEUE_NAME, events_exchange

# The broker node and PostgreSQL cluster the restarts hit: the machine's own by default.
RABBITMQCTL = ["rabbitmqctl", *(["-n", os.environ["SANJI_CHAOS_RABBIT_NODE"]]
                                if os.environ.get("SANJI_CHAOS_RABBIT_NODE") else [])]
POSTGRES_CLUSTER = os.environ.get("SANJI_CHAOS_POSTGRES_CLUSTER", "main")

CHAOS_ENV = {"SANJI_NOTIFICATION_QUIET_HOURS": "off",
             "SANJI_NOTIFICATION_RATE_LIMITS": "sms=100000,email=100000,webhook=100000",
             "SANJI_NOTIFICATION_SWEEP_SECONDS": "0.5",
             "SANJI_LOG_LEVEL": "INFO"}


def say(message: str) -> None:
    print(f"[chaos {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


@dataclass
class FaultLog:
    entries: list[dict] = field(default_factory=list)

    def record(self, fault: str, started: float, ended: float, **details) -> None:
        self.entries.append({"fault": fault, "started": started, "ended": ended, **details})
        say(f"  {fault} done ({ended - started:.1f}s) {details if details else ''}")


class SteadyLoad:
    """Open-loop kiosk submissions; a failed one is retried with its own id until it is answered."""

    def __init__(self, stack: Stack, rate: float, clients: int = 8):
        self.stack, self.rate, self.clients = stack, rate, clients
        self.submissions: dict[str, Submission] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.clients)]
        for thread in self._threads:
            thread.start()

    def _client(self, index: int) -> None:
        period = self.clients / self.rate
        next_at = time.monotonic() + index * period / self.clients
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += period
            submission = Submission(str(uuid.uuid4()), time.time())
            with self._lock:
                self.submissions[submission.submission_id] = submission
            retry_until = time.monotonic() + 90
            while time.monotonic() < retry_until:
                client = KioskClient(self.stack.url("intake"))
                client.submit(submission, timeout=10)
                client.close()
                if submission.status == 201 or (submission.status and submission.status < 500):
                    break
                time.sleep(0.5)  # intake down or restarting: the kiosk tries again with the same key

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)


class EventDuplicator:
    """Republishes every event once more, with the same id: each consumer sees every event twice."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.duplicated = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        from kombu import Queue

        self.queue = Queue(f"chaos.tap-{uuid.uuid4().hex[:6]}", exchange=events_exchange, routing_key="#",
                           durable=False, auto_delete=True, exclusive=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        with Connection(self.amqp_uri) as consuming, Connection(self.amqp_uri) as publishing:
            producer = Producer(publishing.channel(), exchange=events_exchange)
            seen: set[str] = set()

            def on_message(body, message):
                message_id = message.properties.get("message_id")
                if message_id not in seen:  # our own copy comes back through the tap: copy once only
                    seen.add(message_id)
                    producer.publish(message.body, routing_key=message.delivery_info["routing_key"],
                                     content_type=CLOUDEVENTS_CONTENT_TYPE, content_encoding="utf-8",
                                     delivery_mode=2, message_id=message_id,
                                     user_id=message.properties.get("user_id"))  # the sender stays the sender
                    self.duplicated += 1
                message.ack()

            with Consumer(consuming.channel(), queues=[self.queue], callbacks=[on_message], accept=None):
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        consuming.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


POISON = [
    ("case.submitted.320113003021", '{"not": "a cloudevent"}'),
    ("case.submitted.320113003021", json.dumps({
        "specversion": "1.0", "id": "poison-unknown-matter", "source": "/chaos", "type": "cn.sanji.case.submitted.v1",
        "time": "2026-11-30T00:00:00Z", "data": {"case_id": "poison", "case_number": "P", "community_code":
        "320113003021", "catalogue_version": "x", "bundle_code": None, "matter_codes": ["no-such-matter"],
        "channel": "kiosk", "applicant_masked_name": "*", "submitted_at": "2026-11-30T00:00:00Z"}})),
    ("item.routed.320113000000.street.320113003000.police", json.dumps({
        "specversion": "1.0", "id": "poison-unknown-type", "source": "/chaos", "type": "cn.sanji.no.such.v1",
        "time": "2026-11-30T00:00:00Z", "data": {}})),
]


def inject_poison(amqp_uri: str) -> int:
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel(), exchange=events_exchange)
        for routing_key, body in POISON:
            producer.publish(body, routing_key=routing_key, content_type=CLOUDEVENTS_CONTENT_TYPE,
                             content_encoding="utf-8", delivery_mode=2, message_id=f"poison-{uuid.uuid4()}")
    return len(POISON)


def close_broker_connections(vhost: str) -> int:
    connections = requests.get(f"{MANAGEMENT}/vhosts/{urllib.parse.quote(vhost, safe='')}/connections",
                               auth=BROKER_AUTH, timeout=10).json()
    for connection in connections:
        requests.delete(f"{MANAGEMENT}/connections/{urllib.parse.quote(connection['name'], safe='')}",
                        auth=BROKER_AUTH, timeout=10, headers={"X-Reason": "chaos: connection closed"})
    return len(connections)


def restart_broker() -> None:
    subprocess.run([*RABBITMQCTL, "stop_app"], check=True, capture_output=True, timeout=120)
    time.sleep(2)
    subprocess.run([*RABBITMQCTL, "start_app"], check=True, capture_output=True, timeout=120)
    subprocess.run([*RABBITMQCTL, "await_startup"], check=False, capture_output=True, timeout=120)


def restart_postgres() -> bool:
    versions = sorted(glob.glob("/etc/postgresql/*"))
    if not versions:
        return False
    result = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", os.path.basename(versions[-1]),
                             POSTGRES_CLUSTER, "restart"], capture_output=True, timeout=120)
    return result.returncode == 0


def dead_letters(amqp_uri: str) -> Counter:
    """Dead-lettered messages, as poison (ours, by message id) or real; one poison message fans out to every
    queue bound to its routing key, so it can be dead-lettered more than once."""
    kinds: Counter = Counter()
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        while (message := channel.basic_get(DEAD_LETTER_QUEUE_NAME, no_ack=True)) is not None:
            message_id = message.properties.get("message_id") or ""
            kinds["poison" if message_id.startswith("poison-") or b'"source":"/chaos"' in message.body
                  or b'"not": "a cloudevent"' in message.body else "real"] += 1
    return kinds


def settle(stack: Stack, acknowledged: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        notified = stack.scalar("SELECT COUNT(DISTINCT case_id) FROM notification_deliveries WHERE event_type = "
                                "'cn.sanji.item.routed.v1' AND channel = 'sms'")
        if notified >= len(acknowledged):
            return
        time.sleep(2)


def check(stack: Stack, load: SteadyLoad) -> dict:
    """Classify each submission by what the databases hold for it."""
    keys = dict(stack.rows("SELECT key, case_id FROM intake_idempotency_keys"))
    cases_per_key = Counter(row[0] for row in stack.rows(
        "SELECT substr(description, 6) FROM intake_cases WHERE description LIKE 'load %'"))
    items_per_case = Counter(row[0] for row in stack.rows("SELECT case_id FROM routing_items"))
    notes_per_case = Counter(row[0] for row in stack.rows(
        "SELECT case_id FROM notification_deliveries WHERE event_type = 'cn.sanji.item.routed.v1' "
        "AND channel = 'sms' AND audience = 'resident'"))
    verdicts: Counter = Counter()
    lost_examples, duplicated_examples = [], []
    for submission_id, submission in load.submissions.items():
        if submission.status != 201:
            verdicts["not_acknowledged"] += 1
            continue
        case_id = keys.get(submission_id)
        if case_id is None or items_per_case[case_id] == 0 or notes_per_case[case_id] == 0:
            verdicts["lost"] += 1
            lost_examples.append({"submission": submission_id, "case": case_id,
                                  "items": items_per_case.get(case_id, 0), "notes": notes_per_case.get(case_id, 0)})
        elif cases_per_key[submission_id] > 1 or items_per_case[case_id] > 1 or notes_per_case[case_id] > 1:
            verdicts["duplicated"] += 1
            duplicated_examples.append({"submission": submission_id, "cases": cases_per_key[submission_id],
                                        "items": items_per_case[case_id], "notes": notes_per_case[case_id]})
        else:
            verdicts["acknowledged_and_present"] += 1
    return {"verdicts": dict(verdicts), "lost_examples": lost_examples[:5],
            "duplicated_examples": duplicated_examples[:5]}


def recovery_after(stack: Stack, restarted_at: float, offered_rate: float) -> float | None:
    """Seconds after the broker came back until routing ran at >= 90 % of the offered rate (3 s window)."""
    times = sorted(row[0].timestamp() for row in stack.rows(
        "SELECT routed_at FROM routing_items WHERE routed_at >= :t", t=datetime.fromtimestamp(restarted_at, UTC)))
    for second in range(0, 120):
        window_start = restarted_at + second
        in_window = sum(1 for t in times if window_start <= t < window_start + 3)
        if in_window / 3 >= 0.9 * offered_rate:
            return float(second)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one of each fault (under 3 minutes)")
    parser.add_argument("--rate", type=float, default=8.0, help="kiosk submissions per second")
    parser.add_argument("--no-shared-restarts", action="store_true",
                        help="skip restarting RabbitMQ and PostgreSQL (they are shared with other work)")
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    stack = Stack("chaos", extra_env=CHAOS_ENV).create()
    faults = FaultLog()
    recoveries: list[float | None] = []
    poison_sent = 0
    redeliveries_after_sigterm = 0
    try:
        stack.start()
        stack.supervise()
        load = SteadyLoad(stack, args.rate)
        say(f"steady load at {args.rate}/s; {rounds} round(s) of faults")
        load.start()
        time.sleep(5)
        for round_number in range(rounds):
            say(f"round {round_number + 1}")
            for service in ("intake", "routing", "notification"):
                proc = stack.of(service)[0]
                started = time.time()
                with stack.unsupervised(proc):
                    stack.signal(proc, signal.SIGKILL)
                    proc.process.wait()
                    time.sleep(1)
                    stack.start_process(proc)
                stack.wait_healthy(60, [proc])
                faults.record(f"kill -9 {service}", started, time.time())
                time.sleep(3)

            proc = stack.of("routing")[0]
            started = time.time()
            marker = proc.log_path.stat().st_size
            with stack.unsupervised(proc):
                stack.signal(proc, signal.SIGTERM)
                proc.process.wait(timeout=60)
                stack.start_process(proc)
            stack.wait_healthy(60, [proc])
            time.sleep(3)
            redelivered = proc.log_path.read_bytes()[marker:].count(b"redelivery ignored")
            redeliveries_after_sigterm += redelivered
            faults.record("SIGTERM routing", started, time.time(), redeliveries=redelivered)

            started = time.time()
            closed = close_broker_connections(stack.vhost)
            time.sleep(5)
            faults.record("broker connections closed", started, time.time(), connections=closed)

            if not args.no_shared_restarts:
                started = time.time()
                restart_broker()
                back = time.time()
                time.sleep(5)
                faults.record("RabbitMQ restart", started, time.time())
                time.sleep(25)
                recoveries.append(recovery_after(stack, back, args.rate))
                started = time.time()
                restarted = restart_postgres()
                time.sleep(5)
                faults.record("PostgreSQL restart", started, time.time(), performed=restarted)

            started = time.time()
            with EventDuplicator(stack.amqp_uri) as duplicator:
                time.sleep(8)
            faults.record("duplicate delivery of every event", started, time.time(), duplicated=duplicator.duplicated)

            started = time.time()
            poison_sent += inject_poison(stack.amqp_uri)
            faults.record("poison messages", started, time.time(), sent=len(POISON))
            time.sleep(3)
        say("stopping the load; letting the system settle")
        load.stop()
        acknowledged = {s.submission_id for s in load.submissions.values() if s.status == 201}
        settle(stack, acknowledged, timeout=120)
        result = check(stack, load)
        dead = dead_letters(stack.amqp_uri)
        liveness = stack.liveness()
    finally:
        stack.destroy()

    verdicts = result["verdicts"]
    per_fault = Counter(entry["fault"] for entry in faults.entries)
    summary = {
        "submitted": len(load.submissions),
        "acknowledged": sum(1 for s in load.submissions.values() if s.status == 201),
        "present": verdicts.get("acknowledged_and_present", 0),
        "lost": verdicts.get("lost", 0),
        "duplicated": verdicts.get("duplicated", 0),
        "dead_lettered": sum(dead.values()),
        "poison_sent": poison_sent,
        "poison_dead_lettered": dead["poison"],
        "real_messages_dead_lettered": dead["real"],
        "redeliveries_after_sigterm": redeliveries_after_sigterm,
        "broker_recovery_s": recoveries,
        "faults": dict(per_fault),
        "quick": args.quick,
        # A service that died on its own (and was restarted by the stack's supervisor), or that runs
        # but no longer consumes from one of its queues, failed a fault even if no case was lost.
        "unexpected_exits": {name: state["unexpected_exits"] for name, state in liveness.items()
                             if state["unexpected_exits"]},
        "stopped_consuming": sorted(name for name, state in liveness.items() if not state["consuming"]),
    }
    for name, state in liveness.items():
        say(f"liveness {name}: running={state['running']} health={state['health']} "
            f"consumers={state['consumers']} unexpected_exits={state['unexpected_exits']}")
    for name in summary["stopped_consuming"]:
        say(f"{name} STOPPED CONSUMING")
    report = {"summary": summary, "liveness": liveness, "faults": faults.entries, "checker": result,
              "method": __doc__.split("\n\n", 1)[1].strip()}
    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"chaos-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str))
    say(f"report written to {path.relative_to(REPO)}")
    print(json.dumps(summary, ensure_ascii=False))
    ok = (summary["lost"] == 0 and summary["duplicated"] == 0 and summary["real_messages_dead_lettered"] == 0
          and not summary["unexpected_exits"] and not summary["stopped_consuming"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
