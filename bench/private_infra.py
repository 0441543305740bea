"""A RabbitMQ node and a PostgreSQL cluster of the chaos run's own, on ports of their own, in temporary
directories: the only broker and database the fault suite restarts, alarms and cuts off.

The machine's RabbitMQ (5672) and PostgreSQL (5432) are shared with other work (the test suite, other
checkouts): the suite never touches them. Each private instance is started from the installed binaries,
reports how long it took to start, and is torn down (process stopped, directory removed) at the end, also
when the run fails or is interrupted.

Every fault on them is verified from the outside: a broker restart must change the node's OS process id
and reset its uptime (management API ``/api/nodes``); a PostgreSQL restart must change
``pg_postmaster_start_time()``; an alarm must show in ``/api/nodes`` (``mem_alarm``, ``disk_free_alarm``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

BROKER_AUTH = ("guest", "guest")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, seconds: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(interval)
    return False


def _rabbit_bin(name: str) -> str:
    # The Debian wrappers in /usr/sbin switch to the rabbitmq user and drop our environment: use the real scripts.
    packaged = glob.glob(f"/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/{name}")
    for candidate in (f"/usr/lib/rabbitmq/bin/{name}", *packaged):
        if os.path.exists(candidate):
            return candidate
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: the chaos suite needs RabbitMQ installed (it starts a node of its own)")
    return found


def _postgres_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: the chaos suite needs PostgreSQL's server binaries")
    return found


@dataclass
class PrivateRabbit:
    """A RabbitMQ node of its own (own node name, ports, Mnesia and log directories, config, cookie)."""

    amqp_port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    # the stream plugin listens too (5552 by default, which the machine's own node holds once `make test` has
    # enabled its stream plugin: the private node then failed to boot, eaddrinuse)
    stream_port: int = field(default_factory=free_port)
    started_in_s: float | None = None

    def __post_init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="sanji-chaos-rabbit-"))
        self.node = f"sanji-chaos-{uuid.uuid4().hex[:6]}@localhost"
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            f"management.tcp.port = {self.management_port}\n"
            f"stream.listeners.tcp.1 = 127.0.0.1:{self.stream_port}\n"
            "management.tcp.ip = 127.0.0.1\n"
            "loopback_users = none\n"
            # The alarms the suite raises are set by rabbitmqctl; these are the values it restores.
            "vm_memory_high_watermark.relative = 0.4\n"
            "disk_free_limit.absolute = 50MB\n"
            "collect_statistics_interval = 1000\n")
        # the management API (vhosts, alarms, node state) and streams (the event log, subscriptions' sinks)
        (self.base / "enabled_plugins").write_text("[rabbitmq_management,rabbitmq_stream].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        self.process: subprocess.Popen | None = None

    @property
    def management(self) -> str:
        return f"http://127.0.0.1:{self.management_port}/api"

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.base),  # the Erlang cookie lives here, not in the shared one's home
                "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.amqp_port),
                "RABBITMQ_DIST_PORT": str(self.dist_port), "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.base / "log"), "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
                "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
                "RABBITMQ_PID_FILE": str(self.base / "node.pid"), "ERL_EPMD_ADDRESS": "127.0.0.1"}

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([_rabbit_bin("rabbitmqctl"), "-n", self.node, *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def start(self, timeout: float = 120) -> float:
        began = time.monotonic()
        log = open(self.base / "server.out", "ab")  # noqa: SIM115 - the server's for its whole life
        self.process = subprocess.Popen([_rabbit_bin("rabbitmq-server")], env=self.env(), cwd=self.base,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_for(self._answers, timeout, 0.5):
            raise RuntimeError(f"the private RabbitMQ node did not start in {timeout}s; see {self.base}/server.out")
        self.started_in_s = round(time.monotonic() - began, 1)
        return self.started_in_s

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"the private RabbitMQ node exited ({self.process.returncode}); see {self.base}")
        if requests.get(f"{self.management}/overview", auth=BROKER_AUTH, timeout=2).status_code != 200:
            return False
        # the management API can answer before the AMQP listener is up (the node starts it last)
        try:
            with socket.create_connection(("127.0.0.1", self.amqp_port), timeout=2):
                return True
        except OSError:
            return False

    def node_state(self) -> dict:
        """The node as the management API reports it: os_pid, uptime (ms), mem_alarm, disk_free_alarm."""
        nodes = requests.get(f"{self.management}/nodes", auth=BROKER_AUTH, timeout=5).json()
        node = next(n for n in nodes if n["name"] == self.node)
        return {key: node.get(key) for key in ("os_pid", "uptime", "mem_alarm", "disk_free_alarm", "running")}

    def stop_node(self, timeout: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.ctl("stop", timeout=timeout)
            self.process.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, OSError):
            self._kill_group()

    def _kill_group(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)

    def restart(self) -> dict:
        """Stop the node and start it again; verified: new OS pid, uptime reset."""
        wait_for(lambda: self.node_state()["uptime"] is not None, 30)
        before = self.node_state()
        stopped_at = time.monotonic()
        self.stop_node()
        down_s = time.monotonic() - stopped_at
        self.start()
        wait_for(lambda: self.node_state()["uptime"] is not None, 30)  # stats come a moment after the API
        after = self.node_state()
        return {"os_pid_before": before["os_pid"], "os_pid_after": after["os_pid"],
                "uptime_before_s": round(before["uptime"] / 1000, 1),
                "uptime_after_s": round(after["uptime"] / 1000, 1),
                "stop_s": round(down_s, 1), "start_s": self.started_in_s,
                "verified": before["os_pid"] != after["os_pid"] and after["uptime"] < before["uptime"]}

    def set_alarm(self, kind: str, on: bool) -> None:
        if kind == "memory":
            self.ctl("set_vm_memory_high_watermark", "0.000001" if on else "0.4")
        elif kind == "disk":
            self.ctl("set_disk_free_limit", "100000GB" if on else "50MB")
        else:
            raise ValueError(kind)

    def alarm_raised(self, kind: str) -> bool:
        return bool(self.node_state()["mem_alarm" if kind == "memory" else "disk_free_alarm"])

    def destroy(self) -> None:
        try:
            self.stop_node(timeout=30)
        finally:
            self._kill_group()
            shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of its own: ``initdb`` into a temporary directory (as the ``postgres`` user when
    run as root), ``pg_ctl start`` on a port and socket directory of its own."""

    port: int = field(default_factory=free_port)
    started_in_s: float | None = None

    def __post_init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="sanji-chaos-postgres-"))
        self.data = self.base / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.base, postgres.pw_uid, postgres.pw_gid)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        if self._as_postgres:
            command = ("runuser", "-u", "postgres", "--", *command)
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.base)

    def start(self) -> float:
        began = time.monotonic()
        result = self._run(_postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                           "--no-sync", "-E", "UTF8", "--locale", "C")
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.strip()[-500:]}")
        self._pg_ctl("start")
        self.started_in_s = round(time.monotonic() - began, 1)
        return self.started_in_s

    def _pg_ctl(self, action: str) -> None:
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c max_connections=400 "
                   "-c fsync=off -c shared_buffers=64MB")
        args = [_postgres_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "-l", str(self.base / "server.log")]
        if action in ("start", "restart"):
            args += ["-o", options]
        if action in ("stop", "restart"):
            args += ["-m", "fast"]
        result = self._run(*args, action)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl {action} failed: {result.stderr.strip()[-500:]}")

    def start_time(self) -> str:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin_url.replace("postgresql://", "postgresql+psycopg2://"))
        try:
            with engine.connect() as connection:
                return str(connection.execute(text("SELECT pg_postmaster_start_time()")).scalar())
        finally:
            engine.dispose()

    def restart(self) -> dict:
        """``pg_ctl restart -m fast``; verified: ``pg_postmaster_start_time()`` changed."""
        before = self.start_time()
        began = time.monotonic()
        self._pg_ctl("restart")
        took = round(time.monotonic() - began, 1)
        after = self.start_time()
        return {"start_time_before": before, "start_time_after": after, "restart_s": took,
                "verified": before != after}

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("stop")
        except Exception:  # noqa: BLE001 - remove the directory all the same
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
                except (ValueError, ProcessLookupError):
                    pass
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
