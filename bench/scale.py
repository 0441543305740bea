"""`make bench-scale`: the staff queues, an item, the resident lookup and /metrics at 1,000,000 items (target:
p99 <= 50 ms each).

How it measures (printed with the figures):
- Data: a PostgreSQL database of its own (``sanji_bench_scale``), migrated with the project's migrations and
  loaded by bench/preload.py with COPY (not the API): 1,000,000 routing items over four years of submissions,
  with their history, 容缺 ledger, escalation rows, notification rows and the intake cases, sealed applicants
  and case items the resident lookup reads. The database is kept and reused by the next run (loading takes
  several minutes); drop it to load afresh.
- Services: the real ``sanji serve routing`` and ``sanji serve intake`` processes on that database and a
  throwaway RabbitMQ vhost, with ``SANJI_DB_PROBE_SECONDS=0`` so that every /metrics scrape reads the database
  (no cached gauge hides its cost).
- Timing: from outside, over one keep-alive HTTP connection per endpoint, REQUESTS requests each after WARMUP
  warm-up requests, from sending the request to having read the whole body; p50 and p99 per endpoint. Items
  for the item page and cases for the lookup rotate through a sample of the data set.
- Queues: a street (迈皋桥街道), a district (栖霞区) and a department system (栖霞区 公安), each unfiltered and
  with every filter of the API (status open and closed, matter, overdue true/false, matter + overdue), the
  second page through next_cursor, and the district's 20th page.
- CPU per request: the user + system CPU time the service process and the database's backends used during an
  endpoint's run (/proc), divided by its requests: what a request costs whatever else the machine runs (on a
  shared machine the wall-clock figures include the wait for a core). The load average is printed too.
- ``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of the queue's SQL as routing runs it, for the district.
- The last line printed is one JSON object with every figure and the worst p99.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import urllib.parse
import uuid

import requests
from sqlalchemy import create_engine, event, text

from bench.preload import preload
from bench.stack import ServiceProcess, Stack, free_port
from shared.db import normalise_url

TARGET_MS = 50.0
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/sanji_bench_scale"
STREET = {"Authorization": "Bearer dev-staff-maigaoqiao"}
DISTRICT = {"Authorization": "Bearer dev-staff-qixia"}
DEPARTMENT = {"Authorization": "Bearer dev-dept-qixia-police"}
CONSOLE = {"Authorization": "Bearer dev-console-service"}
FILTERS = {"": "", "status=queued": "status=queued", "status=supplement_requested": "status=supplement_requested",
           "status=resolved": "status=resolved", "matter": "matter=residence-permit",
           "rare matter": "matter=property-management-complaint", "overdue=true": "overdue=true",
           "overdue=false": "overdue=false", "matter+overdue": "matter=residence-permit&overdue=true"}


class BenchStack(Stack):
    """The bench's stack: a vhost of its own, but the kept, loaded database instead of a fresh one."""

    def __init__(self, database_url: str):
        super().__init__("scale", replicas={}, extra_env={"SANJI_DB_PROBE_SECONDS": "0"})
        self.database_url = database_url
        self.database = database_url.rsplit("/", 1)[1]

    def create(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        vhost = urllib.parse.quote(self.vhost, safe="")
        from bench.stack import BROKER_AUTH, MANAGEMENT
        requests.put(f"{MANAGEMENT}/vhosts/{vhost}", auth=BROKER_AUTH, timeout=10).raise_for_status()
        requests.put(f"{MANAGEMENT}/permissions/{vhost}/guest", auth=BROKER_AUTH, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        from kombu import Connection

        from shared.topology import declare_topology
        with Connection(self.amqp_uri) as connection:
            declare_topology(connection)
        return self

    def destroy(self):
        self.stop()
        from bench.stack import BROKER_AUTH, MANAGEMENT
        requests.delete(f"{MANAGEMENT}/vhosts/{urllib.parse.quote(self.vhost, safe='')}", auth=BROKER_AUTH,
                        timeout=10)


def timed(session: requests.Session, method: str, urls, *, requests_count: int, warmup: int, **kwargs) -> list[float]:
    """Milliseconds per request; ``urls`` is one URL or a callable giving the i-th (URL, JSON body)."""
    def request(index: int):
        url, body = urls(index) if callable(urls) else (urls, None)
        response = session.request(method, url, json=body, timeout=30, **kwargs)
        _ = response.content
        if response.status_code != 200:
            raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text[:300]}")
        return response
    for index in range(warmup):
        request(index)
    times = []
    for index in range(requests_count):
        started = time.perf_counter()
        request(warmup + index)
        times.append((time.perf_counter() - started) * 1000)
    return times


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids) -> dict[int, float]:
    """User + system CPU each process has used so far (/proc/<pid>/stat), for the ones still there."""
    used = {}
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return used


class CpuMeter:
    """CPU the service process and its PostgreSQL backends spent on a run of requests: what a request costs
    whatever else the machine is doing (the wall-clock figures include waiting for a core on a shared machine)."""

    def __init__(self, database_url: str, service_pid: int):
        self.engine = create_engine(normalise_url(database_url))
        self.service_pid = service_pid

    def backends(self) -> list[int]:
        with self.engine.connect() as connection:
            return [row[0] for row in connection.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))]

    def start(self):
        self._service = cpu_seconds([self.service_pid])
        self._backends = cpu_seconds(self.backends())

    def stop(self, requests_count: int) -> tuple[float, float]:
        """(service, database) CPU milliseconds per request since start."""
        service = sum(cpu_seconds([self.service_pid]).values()) - sum(self._service.values())
        now = cpu_seconds(self.backends())
        database = sum(now[pid] - self._backends.get(pid, 0.0) for pid in now)
        return service * 1000 / requests_count, database * 1000 / requests_count


def percentile(sorted_times: list[float], share: float) -> float:
    return sorted_times[min(len(sorted_times) - 1, max(0, round(share * len(sorted_times)) - 1))]


def explain_queue(database_url: str) -> None:
    """EXPLAIN ANALYZE of each statement routing's list_queue runs, for the district and two filters."""
    from datetime import UTC, datetime

    from services.routing.item_actions import WorkRules, list_queue
    from shared.auth import Principal
    from shared.catalogue import load_catalogue
    from shared.clock import SystemClock
    from shared.config import REPO_ROOT
    from shared.db import session_factory
    from shared.outbox import UnitOfWork
    from shared.workdays import WorkdayCalendar

    engine = create_engine(normalise_url(database_url))
    captured: list[tuple[str, object]] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, parameters, context, many: captured.append((statement, parameters)))
    rules = WorkRules(load_catalogue(REPO_ROOT / "catalogue" / "nanjing"),
                      WorkdayCalendar.from_file(REPO_ROOT / "config" / "calendar-overrides.yaml"))
    principal = Principal(name="bench", kind="staff", unit_code="320113000000")
    for label, filters in (("district", {}), ("district overdue=true", {"overdue": True}),
                           ("district rare matter", {"matter": "property-management-complaint"})):
        captured.clear()
        list_queue(principal, unit_of_work=UnitOfWork(session_factory(engine), source="/sanji/routing",
                                                      clock=SystemClock()),
                   rules=rules, now=datetime.now(UTC), **filters)
        print(f"\n── EXPLAIN ANALYZE: {label} ──")
        with engine.connect() as connection:
            for statement, parameters in captured:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
                print(statement.split(" FROM ")[0][:90].replace("\n", " ") + " …")
                print("\n".join("    " + row[0] for row in plan))
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args(argv)

    summary = preload(args.database_url, items=args.items, years=4.0)
    rng = random.Random(17)
    engine = create_engine(normalise_url(args.database_url))
    with engine.connect() as connection:
        sample_items = [row[0] for row in connection.execute(text(
            "SELECT id FROM routing_items TABLESAMPLE SYSTEM (1) WHERE street_prefix = '320113003' LIMIT 200"))]
        open_items = [row[0] for row in connection.execute(text(
            "SELECT id FROM routing_items WHERE street_prefix = '320113003' AND status IN "
            "('accepted', 'claimed', 'queued', 'supplement_requested', 'waiting') LIMIT 100"))]
    engine.dispose()
    item_ids = sample_items + open_items
    rng.shuffle(item_ids)
    lookups = summary["looked_up"]

    stack = BenchStack(args.database_url)
    stack.create()
    try:
        processes = {service: ServiceProcess(service, 0, free_port()) for service in ("routing", "intake")}
        for proc in processes.values():
            stack.start_process(proc)
        stack.wait_healthy(180)
        print(f"load average (1, 5, 15 min) at the start: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
              f"on {os.cpu_count()} cores", flush=True)
        routing = f"http://127.0.0.1:{processes['routing'].port}"
        intake = f"http://127.0.0.1:{processes['intake'].port}"
        time.sleep(5)  # the services' first timers (revisions, sweeps) run once at start

        cases: list[tuple[str, str, str | None]] = []
        for who in ("street", "district", "department"):
            for label, query in FILTERS.items():
                cases.append((f"{who} queue{', ' + label if label else ''}", f"/v1/items?{query}", None))
        cursor, session = None, requests.Session()
        for page in range(2, 21):
            cursor = session.get(f"{routing}/v1/items" + (f"?cursor={cursor}" if cursor else ""), headers=DISTRICT,
                                 timeout=30).json()["next_cursor"]
            if cursor is None:
                print(f"(the district's queue has {page - 1} page(s) only)")
                break
            if page in (2, 20):
                cases.append((f"district queue, page {page} (cursor)", f"/v1/items?cursor={cursor}", None))
        headers_of = {"street": STREET, "district": DISTRICT, "department": DEPARTMENT}
        figures: dict[str, dict] = {}
        print("How it measures" + __doc__.split("How it measures")[1].rstrip())
        rows = summary["rows"]
        print(f"\ndata set: {summary['items']:,} items, {summary['cases']:,} cases, "
              f"{rows.get('routing_item_history', 0):,} history rows, {rows.get('routing_deferred_materials', 0):,} "
              f"容缺 rows, {rows.get('escalation_items', 0) + rows.get('escalation_deadlines', 0):,} escalation rows, "
              f"{rows.get('notification_deliveries', 0):,} deliveries; {args.requests} requests per endpoint after "
              f"{args.warmup} warm-up\n")

        meters = {"routing": CpuMeter(args.database_url, processes["routing"].process.pid),
                  "intake": CpuMeter(args.database_url, processes["intake"].process.pid)}

        def record(name: str, run, service: str = "routing", note: str = "") -> None:
            meter = meters[service]
            meter.start()
            ordered = sorted(run())
            cpu_service, cpu_database = meter.stop(args.warmup + len(ordered))
            figures[name] = {"p50_ms": round(statistics.median(ordered), 1),
                             "p99_ms": round(percentile(ordered, 0.99), 1), "max_ms": round(ordered[-1], 1),
                             "cpu_service_ms": round(cpu_service, 1), "cpu_postgres_ms": round(cpu_database, 1)}
            verdict = "ok" if figures[name]["p99_ms"] <= TARGET_MS else "OVER"
            print(f"{name:44s} p50 {figures[name]['p50_ms']:6.1f}  p99 {figures[name]['p99_ms']:6.1f} ms {verdict:4s}"
                  f"  cpu/req {service} {cpu_service:5.1f} + postgres {cpu_database:4.1f} ms{note}", flush=True)

        for name, path, _ in cases:
            who = name.split(" ", 1)[0]
            session = requests.Session()
            counted = session.get(routing + path, headers=headers_of[who], timeout=30).json()
            record(name, lambda session=session, path=path, who=who: timed(
                session, "GET", routing + path, requests_count=args.requests, warmup=args.warmup,
                headers=headers_of[who]),
                note=f"  ({len(counted['items'])} items, count {counted['count']}"
                     f"{'' if counted['count_exact'] else '+'})")

        session = requests.Session()
        record("item page (GET /v1/items/{id})", lambda: timed(
            session, "GET", lambda i: (f"{routing}/v1/items/{item_ids[i % len(item_ids)]}", None),
            requests_count=args.requests, warmup=args.warmup, headers=STREET))

        session = requests.Session()
        client = f"bench-{uuid.uuid4().hex[:12]}"
        record("resident lookup (POST /v1/case-lookups)", lambda: timed(
            session, "POST", lambda i: (f"{intake}/v1/case-lookups",
                                        {"case_number": lookups[i % len(lookups)][0],
                                         "phone_last4": lookups[i % len(lookups)][1], "client": client}),
            requests_count=args.requests, warmup=args.warmup, headers=CONSOLE), service="intake")

        session = requests.Session()
        record("routing /metrics", lambda: timed(session, "GET", f"{routing}/metrics",
                                                 requests_count=args.requests, warmup=args.warmup))
        session = requests.Session()
        record("intake /metrics", lambda: timed(session, "GET", f"{intake}/metrics", requests_count=args.requests,
                                                warmup=args.warmup), service="intake")

        print(f"\nload average (1, 5, 15 min) at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
              f"on {os.cpu_count()} cores")
        worst_name = max(figures, key=lambda name: figures[name]["p99_ms"])
        worst = figures[worst_name]["p99_ms"]
        print(f"\nworst p99 {worst:.1f} ms ({worst_name}): "
              f"{'within' if worst <= TARGET_MS else 'OVER'} the {TARGET_MS:.0f} ms target")
        if args.explain:
            explain_queue(args.database_url)
        print(json.dumps({"items": summary["items"], "requests": args.requests, "target_ms": TARGET_MS,
                          "load_average": [round(v, 1) for v in os.getloadavg()],
                          "worst_p99_ms": worst, "worst": worst_name, "endpoints": figures}, ensure_ascii=False))
        return 0 if worst <= TARGET_MS else 1
    finally:
        stack.destroy()


if __name__ == "__main__":
    sys.exit(main())
