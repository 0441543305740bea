"""`make fault-suite` / `make fault-suite-quick` (work in progress, not in CI; docs/fault-suite.md): faults
under mixed load, effects counted outside, a checker that can fail.

The suite starts a RabbitMQ node and a PostgreSQL cluster of its own (bench/private_infra.py) and hurts
only those; the machine's shared broker and database are never touched. Every service runs as real
processes (``sanji serve``): intake, two routing replicas, escalation, two notification replicas,
evaluation and console. Each process reaches the broker through a TCP proxy of its own and the database
through a shared one (bench/fault_proxy.py), so a link can be refused, hung or partitioned.

Load (bench/chaos_load.py): open-loop kiosk submissions, half 流动人口一件事 bundles (four matters, a 容缺
material) and half single matters, and staff working the items (claim, accept, 补正 requests, supplied
materials, resolve, returns) during the faults.

Faults, in turn, each verified to have happened: kill -9 of every service; SIGTERM of a routing replica
under load; a broker restart (new OS pid, uptime reset); a PostgreSQL restart (new postmaster start
time); the database refusing connections for 30 s, then hanging for 30 s; the broker's memory alarm and
disk alarm (seen in the management API); a routing replica partitioned from the broker; every event
delivered twice, the copies in reverse order; poison messages of four kinds (not JSON, an unknown event
version, a payload that fails validation, a valid event whose handler raises once and then succeeds). The
working-day timers fire under the load and the faults: the services' clock is stepped on twice in whole days
(bench/chaos_timers.py), first to the due date of the 容缺 materials owed (reminders, 督办 warnings and breaches),
then a day further (expiry), each step followed at once by the next fault. Once the load is over, the clock
jumps 60 days with the sweepers killed while they fire: every timer then due must fire exactly once (容缺 and
补正 expiry, escalation's item deadlines).

Effects are counted outside (bench/recorders.py): a fake SMS gateway, SMTP server and webhook receiver, and
a department subscriber on the bus. The checker (bench/chaos_checker.py) compares them with what the
acknowledged cases and the staff actions answered 200 must produce: lost, duplicated, read-model
disagreements. After each fault, the time until the event throughput seen by the subscriber is back to
90 % of its level before the fault is reported. Then the self-test runs the same checker against services
built wrong on purpose (bench/faulty_build.py) and must find both lost and duplicated effects.

The last line printed is one JSON object. The exit status is non-zero if anything was lost or duplicated,
a fault was not verified, a real message was dead-lettered, a service stopped consuming or exited on its
own, a recovery took longer than 30 s, or the self-test did not see its injected faults.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from kombu import Connection, Consumer, Producer, Queue
from sqlalchemy import create_engine, text

from bench.chaos_checker import check, count_sent_twice
from bench.chaos_load import MixedLoad
from bench.chaos_timers import ITEM_DEADLINE_KINDS, TERMINATED, TimersUnderLoad, deadline_firings
from bench.fault_proxy import FaultProxy
from bench.private_infra import PrivatePostgres, PrivateRabbit
from bench.recorders import DepartmentSubscriber, HttpRecorder, SmtpRecorder
from bench.stack import REPO, ServiceProcess, Stack
from services.routing.lifecycle import OPEN_STATUSES
from shared.clock import CLOCK_OFFSET_FILE_VARIABLE
from shared.db import normalise_url
from shared.events import CLOUDEVENTS_CONTENT_TYPE
from shared.topology import DEAD_LETTER_QUEUE_NAME, events_exchange

RECOVERY_TARGET_S = 30.0
WHISTLE_ACK_MINUTES = 1
RECOVERY_SHARE = 0.9
CHAOS_ENV = {"SANJI_NOTIFICATION_QUIET_HOURS": "off",
             "SANJI_NOTIFICATION_RATE_LIMITS": "sms=100000,email=100000,webhook=100000",
             "SANJI_NOTIFICATION_SWEEP_SECONDS": "0.5",
             "SANJI_NOTIFICATION_RETRY_BASE_SECONDS": "1",
             "SANJI_NOTIFICATION_RETRY_CAP_SECONDS": "5",
             "SANJI_NOTIFICATION_MAX_ATTEMPTS": "50",
             "SANJI_ESCALATION_SWEEP_SECONDS": "2",
             # a minute for 报到 (30 by default), so that the 吹哨 calls left unanswered escalate during the faults
             "SANJI_ESCALATION_WHISTLE_ACK_MINUTES": str(WHISTLE_ACK_MINUTES),
             "SANJI_EVALUATION_SWEEP_SECONDS": "5",
             "SANJI_DB_POOL_SIZE": "5", "SANJI_DB_MAX_OVERFLOW": "10",
             "SANJI_LOG_LEVEL": "INFO"}
SERVICES = {"intake": 1, "routing": 2, "escalation": 1, "notification": 2, "evaluation": 1, "subscriptions": 1,
            "console": 1}
RAISE_ONCE_PREFIX = "chaos-raise-once-"
# The services whose clock the suite steps on are those with the working-day timers under test. Notification and
# subscriptions keep the machine's: their claims are leases on their own clock, so a step beyond a lease (60 s)
# lets a second replica take a delivery in flight and send it again (the documented at-least-once resend, same
# id, new attempt), which would swamp what the kills are measured by (docs/fault-suite.md).
MACHINE_CLOCK_SERVICES = ("notification", "subscriptions")


def say(message: str) -> None:
    print(f"[chaos {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# ── the system under test, on private infrastructure ─────────────────────────────────────────────────


class ChaosSystem:
    """Private broker and database, proxies, recorders, the services, the subscriber; torn down together."""

    def __init__(self, rabbit: PrivateRabbit, postgres: PrivatePostgres, replicas: dict[str, int], label: str,
                 faulty: dict[str, str] | None = None, proxies: bool = True):
        self.rabbit, self.postgres, self.label = rabbit, postgres, label
        self.faulty = faulty or {}
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.http = HttpRecorder(self.secret)
        self.smtp = SmtpRecorder()
        self.db_proxy = FaultProxy(("127.0.0.1", postgres.port), "postgres") if proxies else None
        self.broker_proxies: dict[str, FaultProxy] = {}
        self.use_proxies = proxies
        self.clock_offset_file = Path(tempfile.mkdtemp(prefix="sanji-clock-")) / "offset-seconds"
        self.clock_offset_file.write_text("0")
        self.stack = Stack(label, replicas=replicas, extra_env=dict(CHAOS_ENV), management=rabbit.management,
                           amqp_port=rabbit.amqp_port, postgres_admin_url=postgres.admin_url,
                           process_env=self._process_env, process_command=self._process_command)

    def _process_command(self, proc: ServiceProcess) -> list[str]:
        fault = self.faulty.get(proc.service)
        if fault:
            return [sys.executable, "-m", "bench.faulty_build", fault, proc.service]
        return [sys.executable, "-m", "sanji.cli", "serve", proc.service]

    def _process_env(self, proc: ServiceProcess) -> dict[str, str]:
        stack = self.stack
        env = {}
        if proc.service not in MACHINE_CLOCK_SERVICES:
            env[CLOCK_OFFSET_FILE_VARIABLE] = str(self.clock_offset_file)
        if self.use_proxies:
            proxy = self.broker_proxies.get(proc.name)
            if proxy is None:
                proxy = self.broker_proxies[proc.name] = FaultProxy(("127.0.0.1", self.rabbit.amqp_port),
                                                                    f"broker-{proc.name}")
            vhost = urllib.parse.quote(stack.vhost, safe="")
            env["SANJI_AMQP_URI"] = f"amqp://guest:guest@127.0.0.1:{proxy.port}/{vhost}"
            env["SANJI_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{self.db_proxy.port}/{stack.database}"
        if proc.service == "notification":
            env |= {"SANJI_NOTIFICATION_SMS_URL": self.http.url("/sms"),
                    "SANJI_NOTIFICATION_SMTP_HOST": self.smtp.host, "SANJI_NOTIFICATION_SMTP_PORT": str(self.smtp.port),
                    "SANJI_NOTIFICATION_WEBHOOKS_FILE": str(stack.workdir / "webhooks.yaml")}
        if proc.service == "console":
            for service in ("intake", "routing", "escalation", "notification", "evaluation"):
                if stack.of(service):
                    env[f"SANJI_CONSOLE_{service.upper()}_URL"] = stack.url(service)
        return env

    def start(self) -> None:
        stack = self.stack
        stack.create()
        (stack.workdir / "webhooks.yaml").write_text(
            "webhooks:\n  - name: chaos-department\n"
            f"    url: {self.http.url('/webhook')}\n    secrets: [\"{self.secret}\"]\n"
            "    kinds: [department_new_item]\n")
        self.subscriber = DepartmentSubscriber(stack.amqp_uri)
        self.subscriber.declare()   # before any service starts: nothing published is missed
        self.subscriber.start()
        order = ["intake", "routing", "escalation", "notification", "evaluation", "subscriptions", "console"]
        for service in order:
            for replica in range(stack.replicas.get(service, 0)):
                from bench.stack import free_port

                stack.start_process(ServiceProcess(service, replica, free_port()))
        stack.wait_healthy(180)
        stack.supervise()

    def teardown(self) -> None:
        for step in (self.stack.stop, getattr(self, "subscriber", None) and self.subscriber.stop,
                     self.http.stop, self.smtp.stop):
            if step:
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 - tear down the rest all the same
                    say(f"teardown: {type(exc).__name__}: {exc}")
        for proxy in [*self.broker_proxies.values(), self.db_proxy]:
            if proxy:
                proxy.close()
        shutil.rmtree(self.clock_offset_file.parent, ignore_errors=True)

    def rows(self, sql: str) -> list:
        engine = create_engine(normalise_url(self.stack.database_url))
        try:
            with engine.connect() as connection:
                return list(connection.execute(text(sql)))
        finally:
            engine.dispose()

    def read_model(self) -> dict:
        resolved = self.rows("SELECT id FROM routing_items WHERE status = 'resolved'")
        terminated = self.rows("SELECT id FROM routing_items WHERE status = 'terminated'")
        return {"resolved_items": {row[0] for row in resolved}, "terminated_items": {row[0] for row in terminated},
                "completed_cases": {row[0] for row in self.rows(
                    "SELECT id FROM intake_cases WHERE completed_at IS NOT NULL")}}

    def arrivals(self) -> list:
        return [*self.http.arrivals, *self.smtp.arrivals]

    def stuck_sessions(self) -> list[dict]:
        """Database sessions not idle at the end (a transaction left open, a lock waited for), and every
        service's green-thread stacks written to its log (SIGUSR1, sanji/cli.py): where a stall is."""
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        for proc in self.stack.processes:
            self.stack.signal(proc, signal.SIGUSR1)
            if spy and proc.process and proc.process.poll() is None and proc.log_path:
                # the OS thread's stack too: a process frozen in a C call (libpq without the green wait
                # callback) runs no signal handler
                dump = subprocess.run([spy, "dump", "--pid", str(proc.process.pid)], capture_output=True,
                                      text=True, timeout=30, check=False)
                proc.log_path.with_suffix(".py-spy.txt").write_text(dump.stdout + dump.stderr)
        rows = self.rows(
            "SELECT pid, application_name, state, wait_event_type, wait_event, now() - xact_start,"
            " left(query, 160) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'")
        return [{"pid": r[0], "application": r[1], "state": r[2], "wait": f"{r[3]}:{r[4]}",
                 "in_transaction_for": str(r[5]), "query": r[6]} for r in rows]

    def wait_notification_drained(self, timeout: float) -> float | None:
        """Wait until notification holds nothing pending: a message whose sender was killed between the send and
        its record goes again only once its claim lapses (a minute or more), after the arrivals have gone quiet.
        Returns the seconds waited, or None if something was still pending at the timeout."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            pending = self.rows("SELECT count(*) FROM notification_deliveries WHERE status = 'pending'")[0][0]
            if pending == 0:
                return round(time.monotonic() - began, 1)
            time.sleep(2)
        return None

    def notification_backlog(self) -> list[dict]:
        """What notification still holds at the end, by channel, status, hold and last error: a message the
        checker counts as lost is pending (backing off, claimed, held) or failed here, or was never planned."""
        rows = self.rows(
            "SELECT channel, status, coalesce(hold_reason, ''), claim_token IS NOT NULL,"
            " next_attempt_at < now(), left(coalesce(last_error, ''), 120), count(*), max(attempts)"
            " FROM notification_deliveries WHERE status <> 'sent'"
            " GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 7 DESC LIMIT 40")
        return [{"channel": r[0], "status": r[1], "hold": r[2], "claimed": r[3], "due": r[4], "last_error": r[5],
                 "count": r[6], "max_attempts": r[7]} for r in rows]

    def settle(self, timeout: float, quiet: float = 8.0) -> float:
        """Wait until nothing new arrives anywhere for ``quiet`` seconds; returns the seconds waited."""
        began = time.monotonic()
        last, last_change = None, time.monotonic()
        while time.monotonic() - began < timeout:
            now = (len(self.subscriber.records), len(self.http.arrivals), len(self.smtp.arrivals))
            if now != last:
                last, last_change = now, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                break
            time.sleep(1)
        return round(time.monotonic() - began, 1)


# ── faults ───────────────────────────────────────────────────────────────────────────────────────────


class Faults:
    def __init__(self, system: ChaosSystem):
        self.system = system
        self.entries: list[dict] = []
        self.baseline: float | None = None

    def measure_baseline(self, seconds: float) -> float:
        """The steady level before any fault: events per second reaching the subscriber over ``seconds``."""
        now = time.time()
        self.baseline = len(self._event_times(now - seconds, now)) / seconds
        say(f"steady level before the faults: {self.baseline:.2f} events/s at the subscriber")
        return self.baseline

    @contextmanager
    def fault(self, name: str, wait_for_recovery: bool = True, **details):
        entry = {"fault": name, "started": time.time(), "verified": False, **details}
        say(f"fault: {name}")
        try:
            yield entry
        except Exception as exc:  # noqa: BLE001 - a fault that could not be injected is a fault not verified
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["ended"] = time.time()
        entry["recovery_s"] = self.recovery(entry) if wait_for_recovery else "pending"
        say(f"  verified={entry['verified']} recovery_s={entry['recovery_s']} "
            f"{ {k: v for k, v in entry.items() if k not in ('fault', 'started', 'ended', 'verified', 'recovery_s')} }")
        self.entries.append(entry)

    def settle_recoveries(self) -> None:
        """The recoveries not waited for (faults in quick succession): computed afterwards from the same
        records, up to the next fault's start (a fault not recovered before the next began counts as not
        recovered)."""
        for index, entry in enumerate(self.entries):
            if entry["recovery_s"] != "pending" or not entry.get("recovery_applies", True):
                continue
            limit = self.entries[index + 1]["started"] if index + 1 < len(self.entries) else time.time()
            entry["recovery_s"] = self._first_recovered_window(entry["ended"], min(limit, entry["ended"] + 35))
            if entry["recovery_s"] is None and index + 1 < len(self.entries) and limit < entry["ended"] + 35:
                # the next fault began first: it is measured from the next one's end instead
                entry["recovery_s"] = self._first_recovered_window(entry["ended"], entry["ended"] + 60)

    def _first_recovered_window(self, ended: float, until: float) -> float | None:
        baseline = self.baseline or 0.0
        times = self._event_times(ended, until)
        for second in range(int(max(0, until - ended - 5)) + 1):
            start = ended + second
            if sum(1 for t in times if start <= t < start + 5) / 5 >= RECOVERY_SHARE * baseline > 0:
                return float(second)
        return None

    def recovery(self, entry: dict) -> float | None:
        """Seconds after the fault was repaired until events reached the subscriber at >= 90 % of the pre-fault
        level (the steady level measured before the first fault; the load is open loop, so that level is the
        offered load), in 5 s windows, waiting at most the target plus 5 s."""
        baseline = self.baseline or 0.0
        if baseline <= 0:
            return None
        ended = entry["ended"]
        deadline = ended + RECOVERY_TARGET_S + 5
        while True:
            now = time.time()
            times = self._event_times(ended, now)
            for second in range(int(max(0, now - ended - 5)) + 1):
                start = ended + second
                if start + 5 > now:
                    break
                in_window = sum(1 for t in times if start <= t < start + 5)
                if in_window / 5 >= RECOVERY_SHARE * baseline:
                    return float(second)
            if now > deadline:
                return None
            time.sleep(1)

    def wait_recovered(self, seconds: float) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline:
            now = time.time()
            if len(self._event_times(now - 5, now)) / 5 >= RECOVERY_SHARE * (self.baseline or 0):
                return
            time.sleep(1)

    def _event_times(self, since: float, until: float) -> list[float]:
        return [r.at for r in self.system.subscriber.snapshot()
                if since <= r.at < until and r.type in ("cn.sanji.case.submitted.v1", "cn.sanji.item.routed.v1")]

    # the faults themselves

    def kill_9(self, proc: ServiceProcess, wait: bool = True) -> None:
        """SIGKILL, restarted at once (as a supervisor does); verified: died of SIGKILL, a new pid. ``wait``:
        until it answers /health again and throughput is back; otherwise the next fault follows at once."""
        stack = self.system.stack
        with self.fault(f"kill -9 {proc.name}", wait_for_recovery=wait) as entry:
            before = proc.process.pid
            with stack.unsupervised(proc):
                stack.signal(proc, signal.SIGKILL)
                code = proc.process.wait(timeout=30)
                stack.start_process(proc)
            stack.wait_healthy(180, [proc])
            entry.update(pid_before=before, pid_after=proc.process.pid, exit_status=code,
                         verified=code == -signal.SIGKILL and proc.process.pid != before)

    def sigterm(self, proc: ServiceProcess) -> None:
        stack = self.system.stack
        with self.fault(f"SIGTERM {proc.name} under load") as entry:
            before = proc.process.pid
            handled = self._handled_count(proc)
            with stack.unsupervised(proc):
                stack.signal(proc, signal.SIGTERM)
                code = proc.process.wait(timeout=90)
                stack.start_process(proc)
            stack.wait_healthy(90, [proc])
            entry.update(pid_before=before, pid_after=proc.process.pid, exit_status=code,
                         handled_in_log_before=handled,
                         verified=code is not None and proc.process.pid != before and handled > 0)

    def _handled_count(self, proc: ServiceProcess) -> int:
        try:
            # the handlers' own log line per event handled (routing: "case routed"; any service: "...planned")
            log = proc.log_path.read_bytes()
            return log.count(b'"event": "case routed"') + log.count(b'"event": "notifications planned"')
        except OSError:
            return 0

    def broker_restart(self) -> None:
        with self.fault("broker restart") as entry:
            entry.update(self.system.rabbit.restart())

    def postgres_restart(self) -> None:
        with self.fault("PostgreSQL restart") as entry:
            entry.update(self.system.postgres.restart())

    def database_refused(self, seconds: float) -> None:
        proxy = self.system.db_proxy
        with self.fault(f"database refusing connections {seconds:g}s") as entry:
            reset = proxy.refuse()
            refusing = proxy.refusing()
            time.sleep(seconds)
            still = proxy.refusing()
            proxy.restore()
            accepting_again = not proxy.refusing()
            entry.update(connections_reset=reset, refused_at_start=refusing, refused_at_end=still,
                         accepting_again=accepting_again, verified=refusing and still and accepting_again)

    def database_hang(self, seconds: float) -> None:
        proxy = self.system.db_proxy
        with self.fault(f"database hanging {seconds:g}s") as entry:
            made_before = proxy.connections_made
            held = proxy.hang()
            time.sleep(seconds)
            new_during = proxy.connections_made - made_before
            proxy.restore(reset_held=True)  # what a firewall that forgot its state does when it heals
            entry.update(connections_held=held, connections_opened_while_hung=new_during, verified=held > 0)

    def alarm(self, kind: str, seconds: float) -> None:
        rabbit = self.system.rabbit
        with self.fault(f"broker {kind} alarm {seconds:g}s") as entry:
            rabbit.set_alarm(kind, True)
            raised = _wait(lambda: rabbit.alarm_raised(kind), 15)
            time.sleep(seconds)
            rabbit.set_alarm(kind, False)
            cleared = _wait(lambda: not rabbit.alarm_raised(kind), 30)
            entry.update(alarm_seen=raised, alarm_cleared=cleared, verified=raised and cleared)

    def partition(self, proc: ServiceProcess, seconds: float) -> None:
        proxy = self.system.broker_proxies[proc.name]
        with self.fault(f"partition {proc.name} from the broker {seconds:g}s") as entry:
            held = proxy.partition()
            time.sleep(seconds)
            proxy.restore(reset_held=True)
            entry.update(connections_held=held, verified=held > 0)

    def duplicate_and_reorder(self, seconds: float) -> None:
        with self.fault(f"every event delivered twice, copies reordered, {seconds:g}s") as entry:
            copies = duplicate_reversed(self.system.stack.amqp_uri, seconds)
            entry.update(copies_published=copies, verified=copies > 0)

    def poison(self) -> None:
        with self.fault("poison messages") as entry:
            sent = inject_poison(self.system.stack.amqp_uri)
            entry.update(sent=sent)
            deadline = time.time() + 60
            while time.time() < deadline:
                outcome = self.poison_outcome(sent)
                if outcome["verified"]:
                    break
                time.sleep(2)
            entry.update(outcome)

    def poison_outcome(self, sent: dict) -> dict:
        dead = dead_letter_ids(self.system.stack.amqp_uri, peek=True)
        dead_kinds = {kind: any(message_id in dead for message_id in sent[kind])
                      for kind in ("bad_json", "unknown_version", "invalid_payload")}
        raise_once_case = sent["raise_once_case"]
        routed = any(r.type == "cn.sanji.item.routed.v1" and r.data.get("case_id") == raise_once_case
                     for r in self.system.subscriber.snapshot())
        raised = sum(proc.log_path.read_bytes().count(b"chaos: raising once")
                     for proc in self.system.stack.of("routing") if proc.log_path and proc.log_path.exists())
        raise_once_dead = any(message_id in dead for message_id in sent["raise_once"])
        return {"dead_lettered": dead_kinds, "raise_once_raised": raised > 0, "raise_once_handled": routed,
                "raise_once_dead_lettered": raise_once_dead,
                "verified": all(dead_kinds.values()) and raised > 0 and routed and not raise_once_dead}


CLOCK_JUMP_DAYS = 60


def clock_jump(system: ChaosSystem, faults: Faults, days: int = CLOCK_JUMP_DAYS) -> dict:
    """The sweeps' clock jumps ``days`` ahead (the services' SANJI_CLOCK_OFFSET_FILE) once the load is over, and
    the processes that sweep are killed while they fire. Every timer then due must fire exactly once:

    - 容缺 and 补正 expiry (routing): each open item with a deferred material still missing, or waiting for a
      supplement, is terminated exactly once (``item.terminated``: deferral_expired or supplement_expired, or
      prerequisite_terminated when an item it waits for expired first);
    - escalation's item deadlines due by the new time (internal loops, 督办 warning and breaches) each leave
      ``pending`` (fired, or cancelled because the item closed first), and no firing is published twice
      (one warning per item, level and deadline; one escalation order per item and level; one breach per
      item, level and stage).

    The expected sets are read from the databases just before the jump, when nothing else moves (the load
    has stopped and the staff have finished), so they are the state the timers act on."""
    entry = {"fault": f"clock jump +{days} days for the sweeps, sweepers killed while firing",
             "started": time.time(), "verified": False, "recovery_applies": False}
    say(f"fault: {entry['fault']}")
    open_statuses = ", ".join(f"'{status}'" for status in sorted(OPEN_STATUSES))
    expiring = {row[0] for row in system.rows(
        "SELECT DISTINCT i.id FROM routing_items i LEFT JOIN routing_deferred_materials d"
        " ON d.item_id = i.id AND d.state = 'pending'"
        f" WHERE i.status IN ({open_statuses}) AND (d.item_id IS NOT NULL OR i.status = 'supplement_requested')")}
    jumped_to = f"now() + interval '{days} days'"
    kinds = ", ".join(f"'{kind}'" for kind in ITEM_DEADLINE_KINDS)
    deadlines = {row[0] for row in system.rows(
        f"SELECT id FROM escalation_deadlines WHERE state = 'pending' AND subject_type = 'item'"
        f" AND kind IN ({kinds}) AND due_at <= {jumped_to}")}
    seen_before = len(system.subscriber.snapshot())
    jumped_at = time.time()
    system.clock_offset_file.write_text(str(days * 86400))
    time.sleep(1.5)  # the services read the offset twice a second; the sweeps start firing
    killed = []
    for service in ("escalation", "routing"):
        proc = system.stack.of(service)[0]
        before = proc.process.pid
        with system.stack.unsupervised(proc):
            system.stack.signal(proc, signal.SIGKILL)
            code = proc.process.wait(timeout=30)
            system.stack.start_process(proc)
        killed.append({"process": proc.name, "exit_status": code, "pid_before": before, "pid_after": proc.process.pid})
    system.stack.wait_healthy(180, [system.stack.of(s)[0] for s in ("escalation", "routing")])

    def timer_outcome():
        after = system.subscriber.snapshot()[seen_before:]
        terminated = {}
        for record in after:  # any reason: an item whose prerequisite expired first ends "prerequisite_terminated"
            if record.type == TERMINATED:
                terminated.setdefault(record.event_id, (record.data or {}).get("item_id"))
        left = {row[0] for row in system.rows(
            "SELECT id FROM escalation_deadlines WHERE state IN ('pending', 'parked')")} & deadlines
        return after, terminated, left

    settled_s = None
    deadline = time.time() + 240
    while time.time() < deadline:
        after, terminated, left = timer_outcome()
        if expiring <= set(terminated.values()) and not left:
            settled_s = round(time.time() - jumped_at, 1)
            break
        time.sleep(2)
    system.settle(timeout=120, quiet=10)  # anything a timer still causes (messages, a second firing) arrives
    after, terminated, left = timer_outcome()
    fired_keys = deadline_firings(after)
    moved = system.rows("SELECT count(*) FROM escalation_deadlines"
                        f" WHERE fired_at > now() + interval '{days - 1} days'")
    entry.update(expiring_items=len(expiring), deadlines_due=len(deadlines), items_terminated=len(terminated),
                 deadlines_left_pending=len(left), timers_settled_s=settled_s, killed=killed,
                 deadlines_fired_at_jumped_time=moved[0][0], ended=time.time(), recovery_s=settled_s,
                 verified=(moved[0][0] > 0 or bool(terminated))
                 and all(k["exit_status"] == -signal.SIGKILL and k["pid_after"] != k["pid_before"] for k in killed))
    say(f"  verified={entry['verified']} timers settled in {settled_s}s: {len(terminated)} of {len(expiring)} expiring "
        f"items terminated, {len(deadlines) - len(left)} of {len(deadlines)} due deadlines fired or cancelled")
    faults.entries.append(entry)
    timers = {"expected": {"expiry terminated the item": {(item,) for item in expiring},
                           "escalation deadline left pending": {(d,) for d in deadlines}},
              "fired": {"expiry terminated the item": [(item,) for item in terminated.values()],
                        "escalation deadline left pending": [(d,) for d in deadlines - left]}}
    for name, keys in fired_keys.items():  # no expected set: each key at most once
        timers["expected"][f"{name} (once per key)"] = set()
        timers["fired"][f"{name} (once per key)"] = keys
    return {"timers": timers}


def _wait(check_fn, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check_fn():
                return True
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.5)
    return False


def duplicate_reversed(amqp_uri: str, seconds: float) -> int:
    """A tap on ``#`` collects every event for ``seconds`` and publishes a copy of each (same id, same sender)
    in reverse order: each consumer sees every event twice, the copies out of order."""
    queue = Queue(f"chaos.tap-{uuid.uuid4().hex[:6]}", exchange=events_exchange, routing_key="#",
                  durable=False, auto_delete=True, exclusive=True)
    held: list = []
    with Connection(amqp_uri) as consuming:
        def on_message(body, message):
            held.append((message.body, message.delivery_info["routing_key"], message.properties.get("message_id"),
                         message.properties.get("user_id")))
            message.ack()

        with Consumer(consuming.channel(), queues=[queue], callbacks=[on_message], accept=None):
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    consuming.drain_events(timeout=0.5)
                except TimeoutError:
                    continue
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as publishing:
        producer = Producer(publishing.channel(), exchange=events_exchange)
        for body, routing_key, message_id, user_id in reversed(held):
            producer.publish(body, routing_key=routing_key, content_type=CLOUDEVENTS_CONTENT_TYPE,
                             content_encoding="utf-8", delivery_mode=2, message_id=message_id, user_id=user_id)
    return len(held)


def _case_submitted(event_id: str, event_type: str, data: dict) -> str:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "/sanji/intake", "type": event_type,
                       "time": datetime.now(UTC).isoformat(), "datacontenttype": "application/json", "data": data},
                      ensure_ascii=False)


def inject_poison(amqp_uri: str) -> dict:
    """Four kinds: not JSON; an unknown event version; a case.submitted whose payload fails validation; and a
    valid case.submitted (a case of its own) whose routing handler raises once, then succeeds."""
    now = datetime.now(UTC).isoformat()
    case_id = str(uuid.uuid4())
    valid = {"case_id": case_id, "case_number": "CHAOS-RAISE-ONCE", "community_code": "320113003021",
             "catalogue_version": "chaos", "bundle_code": None, "matter_codes": ["employment-registration"],
             "channel": "kiosk", "applicant_masked_name": "压*", "submitted_at": now}
    kinds = {
        "bad_json": ("case.submitted.320113003021", "{not json"),
        "unknown_version": ("case.submitted.320113003021",
                            _case_submitted(f"poison-{uuid.uuid4()}", "cn.sanji.case.submitted.v9", valid)),
        "invalid_payload": ("case.submitted.320113003021",
                            _case_submitted(f"poison-{uuid.uuid4()}", "cn.sanji.case.submitted.v1",
                                            {"case_id": str(uuid.uuid4()), "matter_codes": "not a list"})),
    }
    sent: dict = {}
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel(), exchange=events_exchange)
        for kind, (routing_key, body) in kinds.items():
            message_id = f"poison-{kind}-{uuid.uuid4()}"
            producer.publish(body, routing_key=routing_key, content_type=CLOUDEVENTS_CONTENT_TYPE,
                             content_encoding="utf-8", delivery_mode=2, message_id=message_id, user_id="guest")
            sent[kind] = [message_id]
        event_id = f"{RAISE_ONCE_PREFIX}{uuid.uuid4()}"
        producer.publish(_case_submitted(event_id, "cn.sanji.case.submitted.v1", valid),
                         routing_key="case.submitted.320113003021", content_type=CLOUDEVENTS_CONTENT_TYPE,
                         content_encoding="utf-8", delivery_mode=2, message_id=event_id, user_id="guest")
        sent["raise_once"] = [event_id]
        sent["raise_once_case"] = case_id
    return sent


def dead_letter_ids(amqp_uri: str, peek: bool = False) -> dict[str, int]:
    """Message ids in the dead letters (and how many times): read, then requeued when ``peek``."""
    found: Counter = Counter()
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        taken = []
        while (message := channel.basic_get(DEAD_LETTER_QUEUE_NAME, no_ack=False)) is not None:
            message_id = message.properties.get("message_id") or ""
            if not message_id:
                try:
                    message_id = json.loads(message.body).get("id", "")
                except (ValueError, AttributeError):
                    message_id = ""
            found[message_id] += 1
            taken.append(message)
        for message in taken:
            if peek:
                channel.basic_reject(message.delivery_tag, requeue=True)
            else:
                channel.basic_ack(message.delivery_tag)
    return dict(found)


# ── the run ──────────────────────────────────────────────────────────────────────────────────────────


def run_faults(system: ChaosSystem, faults: Faults, timers: TimersUnderLoad, quick: bool) -> None:
    stack = system.stack
    outage = 30.0
    # kill -9 of every service in turn; in the quick run the next one as soon as the last answers /health again
    # (its recovery is measured afterwards, up to the next kill), the last one waited for
    services = list(SERVICES)
    for proc in [stack.of(service)[0] for service in services]:
        faults.kill_9(proc, wait=not quick or proc.service == services[-1])
        time.sleep(2)
    faults.sigterm(stack.of("routing")[1])
    # the working-day timers fall due now, and fire during the faults that follow at once (chaos_timers.py):
    # reminders and 督办 during the broker and database faults, expiry during the partition and after
    timers.step_to_reminders()
    faults.broker_restart()
    faults.postgres_restart()
    faults.database_refused(outage)
    faults.database_hang(outage if not quick else 20.0)
    faults.alarm("memory", 8.0)
    faults.alarm("disk", 8.0)
    timers.step_to_expiry()
    faults.partition(stack.of("routing")[0], 20.0)
    faults.duplicate_and_reorder(8.0)
    faults.poison()
    if not quick:
        for proc in [p for p in stack.processes if p.replica == 1]:
            faults.kill_9(proc)
        faults.broker_restart()
        faults.postgres_restart()
        faults.partition(stack.of("notification")[1], 20.0)


def main_run(rabbit: PrivateRabbit, postgres: PrivatePostgres, args) -> dict:
    system = ChaosSystem(rabbit, postgres, dict(SERVICES), "chaos",
                         faulty={"routing": "raise-once"})
    try:
        began = time.monotonic()
        system.start()
        say(f"{len(system.stack.processes)} service processes up in {time.monotonic() - began:.0f}s")
        load = MixedLoad(system.stack.url("intake"), [system.stack.url("routing", i) for i in range(2)],
                         rate=args.rate, escalation_url=system.stack.url("escalation"))
        load.start()
        time.sleep(10)
        faults = Faults(system)
        faults.measure_baseline(15)
        timers = TimersUnderLoad(system, faults, load)
        run_faults(system, faults, timers, args.quick)
        faults.settle_recoveries()
        say("stopping submissions; letting staff finish and the system settle")
        load.stop_submissions()
        load.finish_staff(timeout=60)
        if load.last_whistle_at is not None:   # the last calls left unanswered reach their limit (and a sweep)
            time.sleep(max(0.0, load.last_whistle_at + WHISTLE_ACK_MINUTES * 60 + 10 - time.monotonic()))
        # notification works off its backlog (each resident message looks the contact up at intake): wait until
        # nothing new has arrived anywhere for 20 s, then read the read model, then what arrived
        settled = system.settle(timeout=480, quiet=20)
        drained = system.wait_notification_drained(timeout=240)
        settled += system.settle(timeout=60, quiet=5)
        read_model = system.read_model()
        settled += system.settle(timeout=60, quiet=8)
        cases = load.acknowledged()
        # the suite's own poison and raise-once events are checked by the poison fault, not as cases' effects
        ours = ("poison-", RAISE_ONCE_PREFIX)
        events = [r for r in system.subscriber.snapshot() if not r.event_id.startswith(ours)]
        arrivals_before = list(system.arrivals())
        verdict = check(cases, events, arrivals_before, read_model, timers.outcome())
        for step in timers.steps:
            say(f"  {step['fault']}: verified={step['verified']}, {step['timers_fired']} timer events, "
                f"{step['expected_firings']} expected firings settled in {step['recovery_s']}s, "
                f"during {step['fired_during_faults']}")
        # the timers last, on their own: a jump of the clock makes every open item's deadlines and expiries fall
        # due, whose effects (terminations, escalations, their messages) the cases' expectations do not include
        jump = clock_jump(system, faults)
        seen = {r.event_id for r in events}
        after_jump = [r for r in system.subscriber.snapshot() if r.event_id not in seen
                      and not r.event_id.startswith(ours)]
        timer_verdict = check([], after_jump, [], None, jump["timers"])
        counted = {id(a) for a in arrivals_before}  # the recorders' own objects (an Arrival holds a dict)
        count_sent_twice(timer_verdict, [a for a in system.arrivals() if id(a) not in counted],
                         already=arrivals_before)
        verdict.absorb(timer_verdict)
        backlog = system.notification_backlog()
        stuck = system.stuck_sessions()
        dead = dead_letter_ids(system.stack.amqp_uri)
        # the raise-once case is the suite's own too (intake never held it), so intake rightly dead-letters the
        # item.routed that routing publishes for it: events about it are not real messages
        own_cases = {f.get("sent", {}).get("raise_once_case") for f in faults.entries} - {None}
        own_ids = {r.event_id for r in system.subscriber.snapshot() if (r.data or {}).get("case_id") in own_cases}
        real_dead = {mid: n for mid, n in dead.items()
                     if not any(mid.startswith(p) for p in ours) and mid not in own_ids}
        liveness = system.stack.liveness()
        totals = Counter(a.channel for a in system.arrivals())
        start = min((r.at for r in system.subscriber.records), default=time.time())
        timeline = Counter(int((r.at - start) // 5) * 5 for r in system.subscriber.records
                           if r.type in ("cn.sanji.case.submitted.v1", "cn.sanji.item.routed.v1"))
        return {"verdict": verdict.summary(), "faults": faults.entries, "liveness": liveness,
                "submitted": len(load.cases), "acknowledged": len(cases),
                "bundles": sum(1 for c in cases if c.bundle), "completed_cases": sum(1 for c in cases if c.completed),
                "staff_actions": sum(len(c.actions) for c in cases), "returns": sum(c.returns for c in cases),
                "whistle_calls": dict(Counter(state for c in cases for state in c.calls.values())),
                "staff_errors": load.staff_errors, "events_recorded": len(system.subscriber.records),
                "arrivals": dict(totals), "throughput_timeline_per_5s": dict(sorted(timeline.items())),
                "baseline_events_per_s": faults.baseline, "webhooks_refused": len(system.http.refused),
                "settle_s": settled, "notification_drained_s": drained, "notification_backlog": backlog,
                "stuck_sessions": stuck, "logs": str(system.stack.workdir),
                "dead_letters": dead, "real_messages_dead_lettered": sum(real_dead.values()),
                "real_dead_letter_examples": list(real_dead)[:5]}
    finally:
        system.teardown()


def self_test(rabbit: PrivateRabbit, postgres: PrivatePostgres) -> dict:
    """The checker against services built wrong on purpose: routing acknowledges before it commits (and is
    killed), notification sends everything twice. The checker must report lost and duplicated effects."""
    system = ChaosSystem(rabbit, postgres, {"intake": 1, "routing": 1, "notification": 1}, "chaos-selftest",
                         faulty={"routing": "ack-before-commit", "notification": "send-twice"}, proxies=False)
    try:
        system.start()
        load = MixedLoad(system.stack.url("intake"), [system.stack.url("routing")], rate=1.0, staff_delay=2.0)
        load.start()
        time.sleep(8)
        faults = Faults(system)
        faults.measure_baseline(6)
        faults.kill_9(system.stack.of("routing")[0])
        time.sleep(4)
        load.stop_submissions()
        load.finish_staff(timeout=30)
        system.settle(timeout=60, quiet=6)
        verdict = check(load.acknowledged(), system.subscriber.snapshot(), system.arrivals(), system.read_model())
        summary = verdict.summary()
        return {"lost": summary["lost"], "duplicated": summary["duplicated"],
                "lost_by_kind": summary["lost_by_kind"], "duplicated_by_kind": summary["duplicated_by_kind"],
                "acknowledged": len(load.acknowledged()),
                "caught": summary["lost"] > 0 and summary["duplicated"] > 0}
    finally:
        system.teardown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one of each fault (CI; about 6 minutes)")
    parser.add_argument("--rate", type=float, default=1.0, help="kiosk submissions per second")
    parser.add_argument("--skip-self-test", action="store_true")
    args = parser.parse_args()

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    began = time.monotonic()
    rabbit, postgres = PrivateRabbit(), PrivatePostgres()
    result: dict = {}
    try:
        starts = {}
        threads = [threading.Thread(target=lambda: starts.__setitem__("rabbitmq", rabbit.start())),
                   threading.Thread(target=lambda: starts.__setitem__("postgresql", postgres.start()))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if set(starts) != {"rabbitmq", "postgresql"}:
            raise RuntimeError(f"private infrastructure did not start: {starts}")
        say(f"private RabbitMQ node {rabbit.node} on :{rabbit.amqp_port} ({starts['rabbitmq']}s), "
            f"PostgreSQL on :{postgres.port} ({starts['postgresql']}s)")
        result = main_run(rabbit, postgres, args)
        if not args.skip_self_test:
            say("self-test: the checker against a build that acks before committing and one that sends twice")
            result["self_test"] = self_test(rabbit, postgres)
        result["private_start_s"] = starts
    finally:
        rabbit.destroy()
        postgres.destroy()
    result["wall_s"] = round(time.monotonic() - began)
    return report(result, args)


def report(result: dict, args) -> int:
    verdict = result["verdict"]
    liveness = result["liveness"]
    faults = result["faults"]
    unexpected = {name: s["unexpected_exits"] for name, s in liveness.items() if s["unexpected_exits"]}
    stopped = sorted(name for name, s in liveness.items() if not s["consuming"])
    slow = [f["fault"] for f in faults if f.get("recovery_applies", True)
            and (f["recovery_s"] is None or f["recovery_s"] > RECOVERY_TARGET_S)]
    unsettled_timers = [f["fault"] for f in faults if not f.get("recovery_applies", True) and f["recovery_s"] is None]
    summary = {
        "lost": verdict["lost"], "duplicated": verdict["duplicated"],
        "read_model_disagreements": verdict["read_model_disagreements"],
        "submitted": result["submitted"], "acknowledged": result["acknowledged"], "bundles": result["bundles"],
        "completed_cases": result["completed_cases"], "staff_actions": result["staff_actions"],
        "returns": result["returns"], "whistle_calls": result["whistle_calls"],
        "events_recorded": result["events_recorded"], "arrivals": result["arrivals"],
        "event_redeliveries": verdict["event_redeliveries"], "resent_by_channel": verdict["resent_by_channel"],
        "real_messages_dead_lettered": result["real_messages_dead_lettered"],
        "faults": [{"fault": f["fault"], "verified": f["verified"], "recovery_s": f["recovery_s"]} for f in faults],
        "all_verified": all(f["verified"] for f in faults),
        "max_recovery_s": max((f["recovery_s"] or 0 for f in faults if f.get("recovery_applies", True)), default=None),
        "slow_recoveries": slow, "unsettled_timers": unsettled_timers, "timers": verdict["timers"],
        "unexpected_exits": unexpected, "stopped_consuming": stopped,
        "self_test": result.get("self_test"), "private_start_s": result.get("private_start_s"),
        "quick": args.quick, "wall_s": result["wall_s"],
    }
    out = REPO / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"chaos-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps({"summary": summary, **result, "method": __doc__.split("\n\n", 1)[1].strip()},
                               ensure_ascii=False, indent=2, default=str))
    say(f"report written to {path.relative_to(REPO)}")
    for name, state in liveness.items():
        say(f"liveness {name}: running={state['running']} consumers={state['consumers']} "
            f"unexpected_exits={state['unexpected_exits']}")
    if verdict["examples"]:
        say(f"examples: {json.dumps(verdict['examples'][:8], ensure_ascii=False, default=str)}")
    print(json.dumps(summary, ensure_ascii=False, default=str))
    self_test_ok = args.skip_self_test or bool((summary["self_test"] or {}).get("caught"))
    # the 吹哨 timers fired under the faults only if calls were made and some were left to their limit
    whistled = summary["whistle_calls"].get("unanswered", 0) > 0 and summary["whistle_calls"].get("acknowledged", 0) > 0
    ok = (summary["lost"] == 0 and summary["duplicated"] == 0 and summary["read_model_disagreements"] == 0
          and summary["all_verified"] and not slow and not unsettled_timers and not unexpected and not stopped
          and summary["real_messages_dead_lettered"] == 0 and self_test_ok and whistled)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
