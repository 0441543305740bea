"""`make bench-fanout`: does webhook fan-out to 50 endpoints keep up with the event rate of the bench's open-loop
capacity?

How it measures (printed with the figures):
- The subscriptions service runs as `sanji serve subscriptions` (one process) on a throwaway RabbitMQ vhost and a
  fresh PostgreSQL database, as in production; its webhook settings are the defaults unless given.
- 50 HTTP receivers, one port each, in ONE separate process: an asyncio server that keeps connections alive,
  reads each request whole, notes the arrival time and the event's CloudEvent `time`, and answers 204 at once
  (it does not verify signatures: the receiver's own cost is not what is measured).
- 50 webhook subscriptions, created through the API with the departments' and supervisors' own development
  tokens: 公安, 住建, 民政, 人社 of 栖霞区 (some for all their items, some narrowed by level, unit or type), 住建
  of 迈皋桥街道 and of 玄武区, and supervisors (栖霞区 and 玄武区 staff, who see everything in their district, and
  two streets' staff).
- Events are `item.routed` events of both districts, every department and level, published on `sanji.events` as
  routing publishes them (persistent, publisher confirms), their `time` the moment they are published. Each is
  matched in memory against the 50 subscriptions; the fan-out (deliveries per event) is computed from the mix.
- The event rate it must keep up with: the open-loop capacity of the main bench, `sustainable_cases_per_s`,
  taken from the newest report `make bench` (or `make bench-quick`) wrote on this machine
  (var/bench/report-*.json; a full run's before a quick one's), or given with `--capacity-cases-per-s`; with
  neither, E = 37.7 cases/s, the closed-loop capacity of an earlier quiet run (an upper bound of the open-loop
  figure). It is multiplied by events per case (`--events-per-case`; measured by `--measure-events-per-case` from
  the bench's own kiosk load on intake, routing and notification: every event the run publishes counted in the
  event log; default 2.0, the case.submitted and item.routed of a single-matter case, which is what that
  measurement gave). The stand-in E is also reported beside it: what a faster machine's capacity would ask.
- Phase 1, open loop: events at that rate for `--seconds`; deliveries/s, event -> receiver latency p50/p99, and
  whether the backlog (deliveries not yet received) stayed flat. Phase 2, capacity: `--burst` events published at
  once; the time until every delivery is received gives the events/s and deliveries/s the fan-out sustains.
  ratio = sustained events/s / required events/s; it keeps up when the ratio is at least 1 and phase 1 left no
  growing backlog.
- The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from bench.stack import ServiceProcess, Stack, free_port
from shared.migrate import migrate

ENDPOINTS = 50
STAND_IN_CAPACITY_CASES_PER_S = 37.7   # docs/performance.md: E, an earlier quiet run's closed-loop capacity
REPORTS = Path(__file__).resolve().parent.parent / "var" / "bench"


def measured_capacity() -> tuple[float, str] | None:
    """The newest ``sustainable_cases_per_s`` `make bench` reported on this machine (a full run before a quick
    one), and the report's name."""
    found = []
    for path in REPORTS.glob("report-*.json"):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        sustainable = (report.get("summary") or {}).get("sustainable_cases_per_s")
        if sustainable:
            found.append((not report.get("quick"), path.name, float(sustainable)))
    if not found:
        return None
    _, name, sustainable = max(found)
    return sustainable, name
DEFAULT_EVENTS_PER_CASE = 2.0

QIXIA, XUANWU = "320113000000", "320102000000"
PLACES = {  # (district, level) -> unit, community
    (QIXIA, "district"): (QIXIA, "320113003021"),
    (QIXIA, "street"): ("320113003000", "320113003021"),
    (QIXIA, "community"): ("320113003021", "320113003021"),
    (QIXIA, "street2"): ("320113002000", "320113002001"),
    (XUANWU, "district"): (XUANWU, "320102002001"),
    (XUANWU, "street"): ("320102002000", "320102002001"),
}
DEPARTMENTS = ("police", "housing", "civil", "hrss")

# (token, filters): 50 subscriptions cycle through these templates.
TEMPLATES = [
    ("dev-dept-qixia-police", []),
    ("dev-dept-qixia-police", [{"exact": {"level": "street"}}]),
    ("dev-dept-qixia-housing", []),
    ("dev-dept-qixia-housing", [{"prefix": {"unit": "320113003"}}]),
    ("dev-dept-qixia-civil", []),
    ("dev-dept-qixia-civil", [{"exact": {"type": "cn.sanji.item.routed.v1"}}]),
    ("dev-dept-qixia-hrss", []),
    ("dev-dept-qixia-hrss", [{"not": {"exact": {"level": "district"}}}]),
    ("dev-dept-maigaoqiao-housing", []),
    ("dev-dept-xuanwu-housing", []),
    ("dev-staff-qixia", []),                                       # everything in 栖霞区
    ("dev-staff-xuanwu", []),                             # everything in 玄武区
    ("dev-staff-maigaoqiao", []),
    ("dev-staff-qixia", [{"exact": {"department": "police"}}]),
]


# ── the receivers (a separate process) ───────────────────────────────────────────────────────────────


def _receivers_main(count, ready, stop, results, received_count):
    """50 asyncio HTTP/1.1 servers; each request: note (arrival, latency, id), answer 204."""
    import contextlib

    arrivals, latencies = array("d"), array("d")
    ids: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length) if length else b""
                now = time.time()
                event = json.loads(body)
                arrivals.append(now)
                latencies.append(now - datetime.fromisoformat(event["time"]).timestamp())
                ids.append(event["id"])
                with received_count.get_lock():
                    received_count.value += 1
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def serve():
        # Port 0: the system picks a free one (no race with other work on the machine for a port chosen earlier).
        servers = [await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512) for _ in range(count)]
        ready.put([server.sockets[0].getsockname()[1] for server in servers])
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for server in servers:
            server.close()

    asyncio.run(serve())
    results.put((arrivals.tobytes(), latencies.tobytes(), ids))


class Receivers:
    def __init__(self, count: int):
        self.ports: list[int] = []
        context = multiprocessing.get_context("spawn")
        self.ready, self.stop_event, self.results = context.Queue(), context.Event(), context.Queue()
        self.received = context.Value("q", 0)
        self.process = context.Process(target=_receivers_main, daemon=True, args=(
            count, self.ready, self.stop_event, self.results, self.received))

    def start(self) -> Receivers:
        self.process.start()
        self.ports = self.ready.get(timeout=60)
        return self

    @property
    def count(self) -> int:
        return self.received.value

    def stop(self) -> tuple[list[float], list[float], list[str]]:
        self.stop_event.set()
        arrivals, latencies, ids = self.results.get(timeout=60)
        self.process.join(10)
        a, b = array("d"), array("d")
        a.frombytes(arrivals)
        b.frombytes(latencies)
        return list(a), list(b), ids


# ── the events ───────────────────────────────────────────────────────────────────────────────────────


def event_mix(count: int, *, start: int = 0):
    """``count`` (routing key, body, attributes) of item.routed events spread over districts, levels and
    departments, their ``time`` set when published."""
    from shared.clock import new_id
    from shared.events import ItemRoutedV1

    places = list(PLACES.items())
    for index in range(start, start + count):
        (district, level), (unit, community) = places[index % len(places)]
        department = DEPARTMENTS[(index // len(places)) % len(DEPARTMENTS)]
        moment = datetime.now(UTC)
        payload = ItemRoutedV1(item_id=new_id(), case_id=new_id(), case_number=f"SJ-{index}",
                               matter_code="residence-permit", department_code=department,
                               level=level.removesuffix("2"), unit_code=unit, district_code=district,
                               community_code=community, status="queued", occurred_at=moment,
                               legal_deadline=moment + timedelta(days=20),
                               promised_deadline=moment + timedelta(days=10), deadline_provisional=False,
                               catalogue_version="v")
        yield payload


class Publisher:
    def __init__(self, amqp_uri: str):
        from kombu import Connection, Producer

        from shared.bus import user_of_uri
        from shared.topology import events_exchange

        # The AMQP user_id, which the broker vouches for: the consumer trusts an event only from its type's owner.
        self.user = user_of_uri(amqp_uri)
        self.connection = Connection(amqp_uri, transport_options={"confirm_publish": True})
        self.producer = Producer(self.connection.channel(), exchange=events_exchange, auto_declare=False)

    def publish(self, payload) -> None:
        from shared.events import CLOUDEVENTS_CONTENT_TYPE, CloudEvent

        event = CloudEvent.wrap(payload, source="/sanji/routing", time=datetime.now(UTC))
        self.producer.publish(event.model_dump_json(), routing_key=payload.routing_key(),
                              content_type=CLOUDEVENTS_CONTENT_TYPE, content_encoding="utf-8", delivery_mode=2,
                              message_id=event.id, user_id=self.user, retry=False)

    def close(self) -> None:
        self.connection.release()


# ── the run ──────────────────────────────────────────────────────────────────────────────────────────


def subscribe(url: str, receivers: Receivers) -> list[dict]:
    created = []
    for index, port in enumerate(receivers.ports):
        token, filters = TEMPLATES[index % len(TEMPLATES)]
        answer = requests.post(f"{url}/v1/subscriptions", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                               json={"sink": {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook"},
                                     "filters": filters, "description": f"bench endpoint {index}"})
        answer.raise_for_status()
        created.append(answer.json())
    return created


def fan_out(subscriptions: list[dict], payloads) -> float:
    """Deliveries per event of the mix, by the service's own rules (its mandate and filter modules)."""
    payloads = list(payloads)
    return deliveries_of(subscriptions, payloads) / len(payloads)


def deliveries_of(subscriptions: list[dict], payloads) -> int:
    """How many deliveries these events make, exactly, by the service's own rules."""
    from services.subscriptions import filters as dialect
    from services.subscriptions.mandate import Mandate
    from shared.events import CloudEvent

    candidates = [(Mandate(**s["scope"]), dialect.parse_filters(s["filters"])) for s in subscriptions]
    matched = 0
    for payload in payloads:
        document = CloudEvent.wrap(payload, source="/sanji/routing", time=datetime.now(UTC)).model_dump(mode="json")
        attributes = dialect.event_attributes(document)
        matched += sum(1 for mandate, expressions in candidates
                       if mandate.covers(attributes) and dialect.matches(expressions, attributes))
    return matched


def open_loop(publisher: Publisher, receivers: Receivers, rate: float, seconds: float, fanout: float,
              start: int, subscriptions: list[dict]) -> dict:
    count = int(rate * seconds)
    payloads = list(event_mix(count, start=start))
    expected_total = deliveries_of(subscriptions, payloads)
    backlog_samples = []
    base = receivers.count
    began = time.monotonic()
    for index, payload in enumerate(payloads):
        due = began + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        publisher.publish(payload)
        if index % max(1, int(rate)) == 0:
            expected = (index + 1) * fanout
            backlog_samples.append((time.monotonic() - began, expected - (receivers.count - base)))
    published_in = time.monotonic() - began
    deadline = time.monotonic() + 300   # phase 2 starts from an empty backlog, or is marked as not
    while receivers.count - base < expected_total and time.monotonic() < deadline:
        time.sleep(0.05)
    drained_in = time.monotonic() - began
    quarter = max(1, len(backlog_samples) // 4)
    first = statistics.mean(b for _, b in backlog_samples[:quarter])
    last = statistics.mean(b for _, b in backlog_samples[-quarter:])
    return {"events": count, "events_per_s": round(count / published_in, 1), "expected_deliveries": expected_total,
            "received": receivers.count - base, "drain_after_publishing_s": round(drained_in - published_in, 2),
            "backlog_first_quarter": round(first, 1), "backlog_last_quarter": round(last, 1),
            "backlog_flat": last <= first + max(20.0, 2 * rate * fanout)}


def burst(publisher: Publisher, receivers: Receivers, count: int, subscriptions: list[dict], start: int,
          owed: int = 0) -> dict:
    """``owed``: deliveries of earlier phases not received yet, which this phase's figure would include."""
    payloads = list(event_mix(count, start=start))
    base = receivers.count + owed
    expected = deliveries_of(subscriptions, payloads)
    began = time.monotonic()
    for payload in payloads:
        publisher.publish(payload)
    published_in = time.monotonic() - began
    deadline = time.monotonic() + 600
    while receivers.count - base < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    took = time.monotonic() - began
    received = receivers.count - base
    return {"events": count, "expected_deliveries": expected, "received": received, "started_with_backlog": owed,
            "published_in_s": round(published_in, 2), "drained_in_s": round(took, 2),
            "events_per_s": round(count / took, 1), "deliveries_per_s": round(received / took, 1)}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def measure_events_per_case(cases: int) -> float:
    """Every event the bench's kiosk load makes intake, routing and notification publish, per case: the event
    log (one stream per district) counts them all."""
    from bench.load import KioskClient, Submission

    stack = Stack("fanout-epc")
    stack.create()
    try:
        stack.start(90)
        client = KioskClient(stack.url("intake"))
        for index in range(cases):
            client.submit(Submission(f"epc-{index}", time.time()))
        vhost = requests.utils.quote(stack.vhost, safe="")
        from bench.stack import BROKER_AUTH, MANAGEMENT

        def logged() -> int:
            queues = requests.get(f"{MANAGEMENT}/queues/{vhost}", auth=BROKER_AUTH, timeout=10).json()
            return sum(q.get("messages", 0) or 0 for q in queues if q["name"].startswith("sanji.event-log-"))

        previous, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now_count = logged()
            if now_count != previous:
                previous, stable_since = now_count, time.monotonic()
            elif time.monotonic() - stable_since > 10:
                break
            time.sleep(1)
        return previous / cases
    finally:
        stack.stop()
        stack.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacity-cases-per-s", type=float,
                        help="the main bench's sustainable_cases_per_s (default: its newest report here)")
    parser.add_argument("--events-per-case", type=float, default=DEFAULT_EVENTS_PER_CASE)
    parser.add_argument("--measure-events-per-case", type=int, metavar="CASES",
                        help="measure events per case first, from this many kiosk cases on intake+routing+notification")
    parser.add_argument("--seconds", type=float, default=30.0, help="phase 1 (open loop) duration")
    parser.add_argument("--burst", type=int, default=1000, help="phase 2: events published at once")
    parser.add_argument("--replicas", type=int, default=1, help="subscriptions service processes")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a SANJI_SUBSCRIPTIONS_* setting for the service, e.g. CONCURRENCY=50")
    args = parser.parse_args(argv)

    events_per_case = args.events_per_case
    if args.measure_events_per_case:
        events_per_case = round(measure_events_per_case(args.measure_events_per_case), 2)
        print(f"measured {events_per_case} events per case", flush=True)
    if args.capacity_cases_per_s is None:
        measured = measured_capacity()
        args.capacity_cases_per_s, capacity_source = measured or (STAND_IN_CAPACITY_CASES_PER_S, "the stand-in E")
    else:
        capacity_source = "--capacity-cases-per-s"
    print(f"capacity to keep up with: {args.capacity_cases_per_s} cases/s, from {capacity_source}", flush=True)
    required_rate = args.capacity_cases_per_s * events_per_case

    settings = dict(item.split("=", 1) for item in args.setting)
    stack = Stack("fanout", replicas={}, extra_env={
        "SANJI_SUBSCRIPTIONS_SWEEP_SECONDS": "0.2",
        **{f"SANJI_SUBSCRIPTIONS_{name.upper()}": value for name, value in settings.items()}})
    receivers = Receivers(ENDPOINTS)
    publisher = None
    try:
        stack.create()
        receivers.start()
        migrate("subscriptions", stack.database_url)
        service = stack.start_process(ServiceProcess("subscriptions", 0, free_port()))
        for replica in range(1, args.replicas):
            stack.start_process(ServiceProcess("subscriptions", replica, free_port()))
        stack.wait_healthy(90)
        url = f"http://127.0.0.1:{service.port}"
        subscriptions = subscribe(url, receivers)
        fanout = fan_out(subscriptions, event_mix(len(PLACES) * len(DEPARTMENTS)))
        publisher = Publisher(stack.amqp_uri)
        print("How it measures" + __doc__.split("How it measures")[1].rstrip(), flush=True)
        print(f"\nrequired: {args.capacity_cases_per_s} cases/s x {events_per_case} events/case = "
              f"{required_rate:.1f} events/s; fan-out {fanout:.2f} deliveries/event = "
              f"{required_rate * fanout:.1f} deliveries/s\n", flush=True)
        # Warm-up: connections, the matcher's cache, the database's plans.
        burst(publisher, receivers, len(PLACES) * len(DEPARTMENTS), subscriptions, start=0)
        receivers_mark = receivers.count
        phase1 = open_loop(publisher, receivers, required_rate, args.seconds, fanout, start=10_000,
                           subscriptions=subscriptions)
        print(f"open loop: {phase1}", flush=True)
        owed = max(0, phase1["expected_deliveries"] - phase1["received"])
        phase2 = burst(publisher, receivers, args.burst, subscriptions, start=100_000, owed=owed)
        print(f"burst: {phase2}", flush=True)
        arrivals, latencies, ids = receivers.stop()
        phase1_latencies = latencies[receivers_mark:receivers_mark + phase1["received"]]
        latency = {"p50_ms": round(percentile(phase1_latencies, 0.50) * 1000, 1),
                   "p99_ms": round(percentile(phase1_latencies, 0.99) * 1000, 1),
                   "max_ms": round(max(phase1_latencies, default=float("nan")) * 1000, 1)}
        ratio = phase2["events_per_s"] / required_rate
        keeps_up = ratio >= 1.0 and phase1["backlog_flat"] and phase1["received"] >= phase1["expected_deliveries"]
        print(f"\nopen loop at {phase1['events_per_s']} events/s: {phase1['received']}/{phase1['expected_deliveries']}"
              f" deliveries, latency p50 {latency['p50_ms']} ms p99 {latency['p99_ms']} ms, backlog "
              f"{'flat' if phase1['backlog_flat'] else 'GROWING'}")
        print(f"capacity: {phase2['events_per_s']} events/s = {phase2['deliveries_per_s']} deliveries/s to "
              f"{ENDPOINTS} endpoints; ratio to the required {required_rate:.1f} events/s: {ratio:.2f}")
        print(f"verdict: {'KEEPS UP' if keeps_up else 'DOES NOT KEEP UP'}")
        print(json.dumps({
            "endpoints": ENDPOINTS, "subscriptions": len(subscriptions), "fanout": round(fanout, 2),
            "capacity_cases_per_s": args.capacity_cases_per_s, "capacity_source": capacity_source,
            "events_per_case": events_per_case,
            "ratio_to_stand_in": round(phase2["events_per_s"] / (STAND_IN_CAPACITY_CASES_PER_S * events_per_case), 2),
            "required_events_per_s": round(required_rate, 1),
            "required_deliveries_per_s": round(required_rate * fanout, 1),
            "open_loop_events_per_s": phase1["events_per_s"], "open_loop_received": phase1["received"],
            "open_loop_expected": phase1["expected_deliveries"], "backlog_flat": phase1["backlog_flat"],
            "latency_p50_ms": latency["p50_ms"], "latency_p99_ms": latency["p99_ms"],
            "latency_max_ms": latency["max_ms"], "sustained_events_per_s": phase2["events_per_s"],
            "sustained_deliveries_per_s": phase2["deliveries_per_s"], "ratio": round(ratio, 2),
            "keeps_up": keeps_up, "deliveries_received": len(ids), "replicas": args.replicas,
            "settings": settings}, ensure_ascii=False))
        return 0 if keeps_up else 1
    finally:
        if publisher is not None:
            publisher.close()
        if receivers.process.pid is not None and receivers.process.is_alive():
            receivers.stop_event.set()
            receivers.process.join(10)
        stack.stop()
        stack.destroy()


if __name__ == "__main__":
    sys.exit(main())
