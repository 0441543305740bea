"""A whole Sanji stack as real processes, isolated for one measurement run.

Each run gets its own RabbitMQ vhost (through the management API) and its own PostgreSQL database, so
it cannot disturb, or be disturbed by, anything else on the broker. Services are started exactly as
devops would (`sanji serve <service>`), each replica its own process with its own HTTP port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from shared.db import normalise_url
from shared.migrate import migrate

REPO = Path(__file__).resolve().parent.parent
# Where the run's broker and database are; another node and cluster keep the chaos run's restarts away
# from other work on the machine (docs/reliability.md).
MANAGEMENT = os.environ.get("SANJI_BENCH_RABBIT_API", "http://127.0.0.1:15672/api")
AMQP_PORT = int(os.environ.get("SANJI_BENCH_AMQP_PORT", "5672"))
BROKER_AUTH = ("guest", "guest")
POSTGRES_ADMIN_URL = os.environ.get("SANJI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServiceProcess:
    service: str
    replica: int
    port: int
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    supervised: bool = True        # restarted by the stack's supervisor if it exits on its own
    unexpected_exits: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.service}-{self.replica}"


# Every service of the system, one process each: what `make bench` measures (the "every service runs").
EVERY_SERVICE = {"intake": 1, "routing": 1, "escalation": 1, "notification": 1, "evaluation": 1, "console": 1,
                 "subscriptions": 1}


@dataclass
class Stack:
    label: str
    replicas: dict[str, int] = field(default_factory=lambda: {"intake": 1, "routing": 1, "notification": 1})
    extra_env: dict[str, str] = field(default_factory=dict)
    # A database to copy (CREATE DATABASE … TEMPLATE) instead of an empty one: already migrated, and holding
    # whatever the run wants there before it starts (bench.preload_items' earlier items).
    template: str | None = None
    # Where the broker and database are (the chaos suite passes its private node and cluster).
    management: str = MANAGEMENT
    amqp_port: int = AMQP_PORT
    postgres_admin_url: str = POSTGRES_ADMIN_URL
    # Per process: extra environment (e.g. its own proxy in front of the broker) and the command to run.
    process_env: Callable[[ServiceProcess], dict[str, str]] | None = None
    process_command: Callable[[ServiceProcess], list[str]] | None = None

    def __post_init__(self):
        suffix = uuid.uuid4().hex[:8]
        self.vhost = f"sanji-{self.label}-{suffix}"
        self.database = f"sanji_{self.label.replace('-', '_')}_{suffix}"
        self.database_url = self.postgres_admin_url.rsplit("/", 1)[0] + f"/{self.database}"
        self.amqp_uri = f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/{urllib.parse.quote(self.vhost, safe='')}"
        self.workdir = REPO / "var" / "bench" / self.vhost
        self.processes: list[ServiceProcess] = []
        self._supervising = threading.Event()
        self._supervise_lock = threading.Lock()

    # ── lifecycle ──────────────────────────────────────────────────────────────────────────────────

    def create(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        vhost = urllib.parse.quote(self.vhost, safe="")
        requests.put(f"{self.management}/vhosts/{vhost}", auth=BROKER_AUTH, timeout=10).raise_for_status()
        requests.put(f"{self.management}/permissions/{vhost}/guest", auth=BROKER_AUTH, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        admin = create_engine(normalise_url(self.postgres_admin_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            template = f' TEMPLATE "{self.template}"' if self.template else ""
            connection.execute(text(f'CREATE DATABASE "{self.database}"{template}'))
        admin.dispose()
        for service in dict.fromkeys(("intake", "routing", "notification", *self.replicas)):
            migrate(service, self.database_url)  # nothing left to do on a migrated template
        from kombu import Connection

        from shared.topology import declare_topology

        with Connection(self.amqp_uri) as connection:
            declare_topology(connection)
        return self

    def env(self, service: str, port: int) -> dict[str, str]:
        return {
            **os.environ,
            "SANJI_AMQP_URI": self.amqp_uri,
            "SANJI_DATABASE_URL": self.database_url,
            "SANJI_HTTP_PORT": str(port),
            "SANJI_LOG_FORMAT": "json",
            # Production's level (INFO, deploy/k8s/base/config.yaml) unless the run says otherwise.
            "SANJI_LOG_LEVEL": os.environ.get("SANJI_BENCH_LOG_LEVEL", "INFO"),
            "SANJI_VAR_DIR": str(self.workdir),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def start(self, timeout: float = 180) -> Stack:
        for service, count in self.replicas.items():
            for replica in range(count):
                self.start_process(ServiceProcess(service, replica, free_port()))
        self.wait_healthy(timeout)
        return self

    def start_process(self, proc: ServiceProcess) -> ServiceProcess:
        proc.log_path = self.workdir / f"{proc.name}.log"
        log = open(proc.log_path, "ab")  # noqa: SIM115 - owned by the child for its whole life
        command = (self.process_command(proc) if self.process_command
                   else [sys.executable, "-m", "sanji.cli", "serve", proc.service])
        env = {**self.env(proc.service, proc.port), **(self.process_env(proc) if self.process_env else {})}
        proc.process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        if proc not in self.processes:
            self.processes.append(proc)
        return proc

    def wait_healthy(self, timeout: float = 60, processes=None) -> None:
        deadline = time.monotonic() + timeout
        for proc in processes or self.processes:
            while True:
                if proc.process.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited with {proc.process.returncode}; see {proc.log_path}")
                try:
                    if requests.get(f"http://127.0.0.1:{proc.port}/health", timeout=10).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.name} not healthy after {timeout}s; see {proc.log_path}")
                time.sleep(0.2)

    # ── supervision, as `sanji run-all` or Kubernetes does ─────────────────────────────────────────

    def supervise(self, interval: float = 0.5) -> None:
        """Restart, in a background thread, any process that exits while supervised; each exit is
        recorded (``ServiceProcess.unexpected_exits``) for the liveness report."""
        self._supervising.set()

        def loop():
            while self._supervising.is_set():
                with self._supervise_lock:
                    for proc in self.processes:
                        code = proc.process.poll() if proc.process else None
                        if proc.supervised and code is not None:
                            proc.unexpected_exits.append(code)
                            self.start_process(proc)
                time.sleep(interval)

        threading.Thread(target=loop, daemon=True, name="stack-supervisor").start()

    @contextmanager
    def unsupervised(self, proc: ServiceProcess):
        """For a fault the caller injects and repairs itself (kill -9, SIGTERM and restart)."""
        with self._supervise_lock:
            proc.supervised = False
        try:
            yield proc
        finally:
            proc.supervised = True

    def liveness(self) -> dict[str, dict]:
        """Each process: running or not, /health, unexpected exits, and the consumers on its queues.

        A service whose process runs and answers but has no consumer on one of its queues has stopped
        consuming: that is what a dead nameko container inside a live process looked like."""
        vhost = urllib.parse.quote(self.vhost, safe="")
        queues = requests.get(f"{self.management}/queues/{vhost}", auth=BROKER_AUTH, timeout=10).json()
        report = {}
        for proc in self.processes:
            code = proc.process.poll() if proc.process else None
            try:
                health = requests.get(f"http://127.0.0.1:{proc.port}/health", timeout=3).status_code
            except requests.RequestException:
                health = None
            consumers = {queue["name"]: queue.get("consumers", 0) for queue in queues
                         if queue["name"].startswith((f"{proc.service}.", f"rpc-{proc.service}"))}
            report[proc.name] = {
                "running": code is None, "exit_status": code, "health": health,
                "unexpected_exits": proc.unexpected_exits, "consumers": consumers,
                # a service without queues (the console) consumes nothing and cannot stop consuming
                "consuming": code is None and all(n > 0 for n in consumers.values()),
            }
        return report

    def of(self, service: str) -> list[ServiceProcess]:
        return [proc for proc in self.processes if proc.service == service]

    def url(self, service: str = "intake", replica: int = 0) -> str:
        return f"http://127.0.0.1:{self.of(service)[replica].port}"

    def signal(self, proc: ServiceProcess, signum: int) -> None:
        if proc.process and proc.process.poll() is None:
            proc.process.send_signal(signum)

    def stop(self, grace: float = 30) -> None:
        self._supervising.clear()
        with self._supervise_lock:
            for proc in self.processes:
                proc.supervised = False
        for proc in self.processes:
            self.signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.processes:
            if proc.process is None:
                continue
            try:
                proc.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait()

    def destroy(self) -> None:
        self.stop()
        admin = create_engine(normalise_url(self.postgres_admin_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        admin.dispose()
        requests.delete(f"{self.management}/vhosts/{urllib.parse.quote(self.vhost, safe='')}", auth=BROKER_AUTH,
                        timeout=10)

    # ── reading the outcome from the databases ─────────────────────────────────────────────────────

    def scalar(self, sql: str, **params):
        engine = create_engine(normalise_url(self.database_url))
        try:
            with engine.connect() as connection:
                return connection.execute(text(sql), params).scalar()
        finally:
            engine.dispose()

    def rows(self, sql: str, **params) -> list:
        engine = create_engine(normalise_url(self.database_url))
        try:
            with engine.connect() as connection:
                return list(connection.execute(text(sql), params))
        finally:
            engine.dispose()
