"""Three routing replicas outside Docker: a burst of cases, each item routed once, the work split reported.

Runs N ``sanji serve routing`` processes (what each container runs) against the real RabbitMQ and
PostgreSQL, publishes a burst of ``case.submitted`` events (one matter each, so one item each), waits
until every item is routed and its ``item.routed`` event published, then reports how the work was
split, from each replica's own ``/metrics``:

    .venv/bin/python scripts/routing_replicas.py                    # 3 replicas, 1,000 cases
    .venv/bin/python scripts/routing_replicas.py --replicas 4 --burst 2000

On its own it makes a throwaway vhost (management API) and database, and removes them afterwards.
tests/integration/test_replicas.py calls ``run`` with the test's own vhost and database.
Environment: SANJI_TEST_RABBIT_URL (default amqp://guest:guest@127.0.0.1:5672), SANJI_TEST_RABBIT_CTL_URL
(default http://guest:guest@127.0.0.1:15672), SANJI_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402
from kombu import Connection, Producer, Queue  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from shared.db import normalise_url  # noqa: E402
from shared.events import CLOUDEVENTS_CONTENT_TYPE, CaseSubmittedV1, CloudEvent  # noqa: E402
from shared.topology import declare_topology, events_exchange  # noqa: E402

COMMUNITY = "320113003021"  # 馨合家园社区
MATTER = "residence-permit"
# As prometheus_client writes it: labels in alphabetical order.
HANDLER = ('sanji_messages_handled_total{event_type="cn.sanji.case.submitted.v1",handler="on_case_submitted",'
           'queue="routing.case-submitted"}')


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path
    handled: int = 0
    relayed: int = 0


@dataclass
class BurstResult:
    replicas: int
    burst: int
    items: int = 0
    distinct_cases: int = 0
    routed_events: int = 0
    distinct_routed_items: int = 0
    handled: dict[str, int] = field(default_factory=dict)
    relayed: dict[str, int] = field(default_factory=dict)
    startup_seconds: float = 0.0
    burst_seconds: float = 0.0

    def report(self) -> str:
        lines = [f"{self.replicas} routing replicas, a burst of {self.burst} cases: {self.items} items "
                 f"({self.distinct_cases} cases), {self.routed_events} item.routed events for "
                 f"{self.distinct_routed_items} distinct items; routed in {self.burst_seconds:.1f}s "
                 f"(replicas started in {self.startup_seconds:.1f}s)"]
        for name in sorted(self.handled):
            share = self.handled[name] / self.burst * 100 if self.burst else 0
            lines.append(f"  {name}: handled {self.handled[name]:5d} cases ({share:4.1f}%), "
                         f"relayed {self.relayed[name]:5d} events")
        return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    """Sample lines of a replica's /metrics, as {'name{labels}': value}."""
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    response.raise_for_status()
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, number = line.rpartition(" ")
            samples[name] = float(number)
    return samples


def start_replicas(count: int, amqp_uri: str, database_url: str, workdir: Path) -> list[Replica]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SANJI_")}
    env.update(SANJI_AMQP_URI=amqp_uri, SANJI_DATABASE_URL=database_url, SANJI_HTTP_HOST="127.0.0.1",
               SANJI_LOG_FORMAT="json", SANJI_LOG_LEVEL="WARNING", SANJI_VAR_DIR=str(workdir),
               SANJI_RELAY_POLL_SECONDS="0.2", PYTHONUNBUFFERED="1")
    replicas = []
    for index in range(1, count + 1):
        port = free_port()
        log_path = workdir / f"routing-{index}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "sanji.cli", "serve", "routing"], cwd=REPO_ROOT,
            env={**env, "SANJI_ROUTING_HTTP_PORT": str(port)},
            stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
        replicas.append(Replica(f"routing-{index}", port, process, log_path))
    return replicas


def wait_until_healthy(replicas: list[Replica], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(replicas)
    while waiting:
        for replica in list(waiting):
            if replica.process.poll() is not None:
                raise RuntimeError(f"{replica.name} exited: {replica.log_path.read_text(errors='replace')[-2000:]}")
            try:
                if requests.get(f"http://127.0.0.1:{replica.port}/health", timeout=2).status_code == 200:
                    waiting.remove(replica)
            except requests.RequestException:
                pass
        if waiting and time.monotonic() > deadline:
            raise TimeoutError(f"not healthy after {timeout}s: {[replica.name for replica in waiting]}")
        time.sleep(0.2)


def stop_replicas(replicas: list[Replica], timeout: float = 20.0) -> None:
    for replica in replicas:
        if replica.process.poll() is None:
            replica.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for replica in replicas:
        try:
            replica.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait()


def publish_burst(amqp_uri: str, burst: int) -> None:
    now = datetime.now(UTC)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel(), exchange=events_exchange)
        for _ in range(burst):
            case_id = str(uuid.uuid4())
            payload = CaseSubmittedV1(case_id=case_id, case_number=f"SJBURST-{case_id[:8]}", community_code=COMMUNITY,
                                      catalogue_version="burst", bundle_code=None, matter_codes=(MATTER,),
                                      channel="kiosk", applicant_masked_name="刘**", submitted_at=now)
            event = CloudEvent.wrap(payload, source="/sanji/intake", time=now)
            producer.publish(event.model_dump_json(), routing_key=payload.routing_key(),
                             content_type=CLOUDEVENTS_CONTENT_TYPE, content_encoding="utf-8", delivery_mode=2,
                             user_id=connection.userid or "guest", retry=False)  # as intake's relay does


def run(amqp_uri: str, database_url: str, *, replicas: int = 3, burst: int = 1000,
        timeout: float = 90.0) -> BurstResult:
    """Start the replicas, route the burst, collect the evidence, stop the replicas."""
    result = BurstResult(replicas=replicas, burst=burst)
    observer = Queue(f"burst.observer.{uuid.uuid4().hex[:8]}", exchange=events_exchange,
                     routing_key="item.routed.#", durable=False, auto_delete=False)
    engine = create_engine(normalise_url(database_url))
    with Connection(amqp_uri) as connection:
        declare_topology(connection)
        observer(connection.default_channel).declare()
    with tempfile.TemporaryDirectory(prefix="sanji-replicas-") as workdir:
        started = time.monotonic()
        running = start_replicas(replicas, amqp_uri, database_url, Path(workdir))
        try:
            wait_until_healthy(running, timeout=60)
            result.startup_seconds = time.monotonic() - started
            began = time.monotonic()
            publish_burst(amqp_uri, burst)
            deadline = began + timeout
            with Connection(amqp_uri) as connection:
                channel = connection.default_channel
                while True:
                    with engine.connect() as db:
                        items = db.execute(text("SELECT count(*) FROM routing_items")).scalar_one()
                    _, routed, _ = channel.queue_declare(observer.name, passive=True)
                    if items >= burst and routed >= burst:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"after {timeout}s: {items} items routed, {routed} item.routed events")
                    time.sleep(0.2)
                result.burst_seconds = time.monotonic() - began
                time.sleep(0.5)  # anything extra (a duplicate) would arrive now
                item_ids = []
                while (message := channel.basic_get(observer.name, no_ack=True)) is not None:
                    item_ids.append(json.loads(message.body)["data"]["item_id"])
                channel.queue_delete(observer.name)
            result.routed_events, result.distinct_routed_items = len(item_ids), len(set(item_ids))
            with engine.connect() as db:
                result.items, result.distinct_cases = db.execute(
                    text("SELECT count(*), count(DISTINCT case_id) FROM routing_items")).one()
            for replica in running:
                samples = scrape(replica.port)
                result.handled[replica.name] = int(samples.get(HANDLER, 0))
                result.relayed[replica.name] = int(samples.get("sanji_relay_published_total", 0))
        finally:
            stop_replicas(running)
            engine.dispose()
    return result


def _throwaway_vhost(ctl_url: str) -> str:
    vhost = "sanji_replicas_" + "".join(random.choice(string.ascii_lowercase) for _ in range(8))
    requests.put(f"{ctl_url}/api/vhosts/{vhost}", timeout=10).raise_for_status()
    user = requests.utils.urlparse(ctl_url).username or "guest"
    requests.put(f"{ctl_url}/api/permissions/{vhost}/{user}", json={"configure": ".*", "write": ".*", "read": ".*"},
                 timeout=10).raise_for_status()
    return vhost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args(argv)

    from shared.config import SERVICES
    from shared.migrate import migrate

    rabbit_url = os.environ.get("SANJI_TEST_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672")
    ctl_url = os.environ.get("SANJI_TEST_RABBIT_CTL_URL", "http://guest:guest@127.0.0.1:15672").rstrip("/")
    admin_url = os.environ.get("SANJI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    vhost = _throwaway_vhost(ctl_url)
    database = f"sanji_replicas_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    database_url = admin_url.rsplit("/", 1)[0] + f"/{database}"
    try:
        for service in SERVICES:
            migrate(service, database_url)
        result = run(f"{rabbit_url.rstrip('/')}/{vhost}", database_url, replicas=args.replicas, burst=args.burst)
        print(result.report())
        ok = (result.items == result.distinct_cases == result.routed_events == result.distinct_routed_items
              == args.burst and all(result.handled.values()) and sum(result.handled.values()) == args.burst)
        return 0 if ok else 1
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
        requests.delete(f"{ctl_url}/api/vhosts/{vhost}", timeout=10)


if __name__ == "__main__":
    sys.exit(main())
