"""Load years of history into a Sanji database with COPY, for `make bench-scale` (bench/scale.py).

    .venv/bin/python -m bench.preload --database-url postgresql://postgres@127.0.0.1:5432/sanji_bench_scale

The database is migrated first with the project's own migrations (every service's branch), so the rows land in
exactly the tables and indexes the services use; the rows are then written with PostgreSQL's COPY (psycopg2's
``copy_expert``), not through the API. What a run holds, for ``--items`` N (default 1,000,000):

- intake: the cases (about N / 1.6: single matters and the 一件事 bundles of the catalogue), their applicants
  sealed for real with the development keys (so the resident lookup opens them), the case items as routing's
  events left them, the 容缺 materials and the material ledger;
- routing: the items, routed by the catalogue's own rule (``entitled_desk``; a few per cent returned one level
  up), with deadlines counted by the project's working-day calendar, over ``--years`` (4) of submissions that
  grow towards today; their status by age (recent ones mostly open, older ones resolved, rejected or
  terminated, a few per mille of old ones still open and long overdue), the append-only history of each
  (route, claim, accept, supplement, decision), the cases, and the 容缺 ledger;
- escalation: one row per item, the 督办 deadlines of the open ones (pending when in the future, fired when
  passed), and the action log of the breaches;
- notification: the resident's SMS per case and the unit's inbox message per item of the last year.

The run ends with ``VACUUM ANALYZE`` (what autovacuum would have done to years-old rows). Nothing is timed here.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time

from sqlalchemy import create_engine, text

from services.routing.domain import entitled_desk
from services.routing.lifecycle import OPEN_STATUSES
from shared.catalogue import Level, load_catalogue
from shared.config import DEV_KEYS_FILE, REPO_ROOT
from shared.crypto import keyring_from_config
from shared.db import normalise_url
from shared.identity import id_number_fingerprint
from shared.migrate import migrate
from shared.workdays import SHANGHAI, WorkdayCalendar

SERVICES = ("intake", "routing", "escalation", "notification", "console")
MARKER_TABLE = "bench_scale_dataset"
CHUNK_CASES = 20_000

# Who files: many residents file more than once (their ID number's blind index is computed once each).
RESIDENT_POOL = 5_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("芳", "伟", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英")


def _id_number(rng: random.Random) -> str:
    """A GB 11643 ID number with a correct check character (the lookup never checks it, intake did)."""
    body = f"320113{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]
    return body + check


def _copy_value(value) -> str:
    kind = type(value)
    if kind is str:
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return value
    if value is None:
        return r"\N"
    if kind is bool:
        return "t" if value else "f"
    return value.isoformat() if kind in (datetime, date) else str(value)   # an offset PostgreSQL reads


class Copier:
    """Rows per table, written with one COPY per table and chunk, by a thread of its own: while PostgreSQL
    takes one chunk (the thread waits on the socket, without the GIL) the next one is being generated."""

    def __init__(self, raw_connection):
        self.raw = raw_connection
        self.buffers: dict[str, tuple[tuple[str, ...], io.StringIO]] = {}
        self.counts: dict[str, int] = {}
        self._pending: threading.Thread | None = None
        self._failure: BaseException | None = None

    def add(self, table: str, columns: tuple[str, ...], row: Iterable) -> None:
        if table not in self.buffers:
            self.buffers[table] = (columns, io.StringIO())
        buffer = self.buffers[table][1]
        buffer.write("\t".join(_copy_value(value) for value in row))
        buffer.write("\n")
        self.counts[table] = self.counts.get(table, 0) + 1

    def flush(self) -> None:
        self.wait()
        chunk, self.buffers = self.buffers, {}

        def copy():
            try:
                with self.raw.cursor() as cursor:
                    for table, (columns, buffer) in chunk.items():
                        buffer.seek(0)
                        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
                self.raw.commit()
            except BaseException as exc:  # noqa: BLE001 - raised again in the generating thread
                self._failure = exc
        self._pending = threading.Thread(target=copy, name="copy")
        self._pending.start()

    def wait(self) -> None:
        if self._pending is not None:
            self._pending.join()
            self._pending = None
        if self._failure is not None:
            raise self._failure


ROUTING_ITEM_COLUMNS = (
    "id", "case_id", "case_number", "matter_code", "community_code", "department_code", "level", "unit_code",
    "district_prefix", "street_prefix", "status", "waiting_for", "legal_deadline", "promised_deadline",
    "deadline_provisional", "catalogue_version", "routed_at", "clock_started_at", "placed_at", "claimed_by",
    "return_count", "returns_locked", "clock_paused_at", "result", "delivery_json", "closed_reason", "updated_at",
    "accepting_unit_code", "deadlines_counted_from", "legal_days", "promised_days", "supplement_requested_on",
    "supplement_due_days", "supplement_due_date", "supplement_due_date_provisional")
HISTORY_COLUMNS = ("item_id", "at", "actor", "action", "from_status", "to_status", "reason_code", "note", "details")
ESCALATION_ITEM_COLUMNS = (
    "item_id", "case_id", "case_number", "matter_code", "department_code", "community_code", "district_code",
    "level", "unit_code", "status", "as_of", "first_level", "routed_at", "placed_at", "clock_cycle",
    "clock_started_at", "promised_deadline", "legal_deadline", "clock_paused_at", "warned_at",
    "promised_breached_at", "legal_breached_at", "closed_at", "updated_at")


class Generator:
    def __init__(self, *, items: int, years: float, seed: int, now: datetime):
        self.rng = random.Random(seed)
        self.items_wanted = items
        self.now = now
        self.span = timedelta(days=365.25 * years)
        self.catalogue = load_catalogue(REPO_ROOT / "catalogue" / "nanjing")
        self.calendar = WorkdayCalendar.from_file(REPO_ROOT / "config" / "calendar-overrides.yaml",
                                                  reload_on_change=False)
        self.keyring = keyring_from_config({"SANJI_KEYS_FILE": str(DEV_KEYS_FILE)})
        self.communities = sorted(code for code, unit in self.catalogue.units.items()
                                  if unit.level == Level.COMMUNITY)
        matters = self.catalogue.matters
        self.person_matters = sorted(c for c, m in matters.items() if str(m.applicant_kind) == "person")
        self.enterprise_matters = sorted(c for c, m in matters.items() if str(m.applicant_kind) != "person")
        self.bundles = {code: tuple(m.code for m in self.catalogue.expand(bundle_code=code))
                        for code in self.catalogue.bundles}
        self.desks: dict[tuple[str, str], tuple[str, str]] = {}
        self.deadlines: dict[tuple[date, int], tuple[datetime, bool]] = {}
        rng = self.rng
        self.residents = []
        for _ in range(RESIDENT_POOL):
            id_number = _id_number(rng)
            self.residents.append((rng.choice(SURNAMES) + rng.choice(GIVEN), id_number,
                                   f"139{rng.randint(0, 99_999_999):08d}",
                                   id_number_fingerprint(id_number, self.keyring.blind_index_key)))
        self.looked_up: list[tuple[str, str]] = []   # (case number, phone's last four) of a sample of cases
        self.version = self.catalogue.version if hasattr(self.catalogue, "version") else "bench"

    # ── the rules the services apply, memoised ──────────────────────────────────────────────────────

    def desk(self, community: str, matter: str) -> tuple[str, str]:
        key = (community, matter)
        if key not in self.desks:
            level, unit = entitled_desk(self.catalogue, community, self.catalogue.matter(matter))
            self.desks[key] = (str(level), unit)
        return self.desks[key]

    def deadline(self, start: datetime, days: int) -> tuple[datetime, bool]:
        key = (start.astimezone(SHANGHAI).date(), days)
        if key not in self.deadlines:
            self.deadlines[key] = self.calendar.deadline_at(start, days)
        return self.deadlines[key]

    def unit_above(self, community: str, level: str) -> tuple[str, str] | None:
        above = Level(level).above()
        if above is None:
            return None
        return str(above), self.catalogue.unit_at(community, above).code

    # ── one case ────────────────────────────────────────────────────────────────────────────────────

    def submitted_at(self) -> datetime:
        rng = self.rng
        age = self.span * (1 - math.sqrt(rng.random()))   # denser towards today: the service grows
        day = (self.now - age).astimezone(SHANGHAI).date()
        if day.weekday() >= 5 and rng.random() < 0.9:
            day += timedelta(days=7 - day.weekday())
        moment = datetime.combine(day, clock_time(8, 30), tzinfo=SHANGHAI) + timedelta(
            seconds=rng.randint(0, 8 * 3600 + 1800))
        return min(moment, self.now - timedelta(minutes=rng.randint(1, 600)))

    def matters_of_case(self) -> tuple[str | None, tuple[str, ...]]:
        roll = self.rng.random()
        if roll < 0.12:
            return "migrant-bundle", self.bundles["migrant-bundle"]
        if roll < 0.18:
            return "social-insurance-transfer", self.bundles["social-insurance-transfer"]
        if roll < 0.21:
            return "enterprise-startup", self.bundles["enterprise-startup"]
        if roll < 0.23:
            return "enterprise-change", self.bundles["enterprise-change"]
        if roll < 0.33:
            return None, (self.rng.choice(self.enterprise_matters),)
        return None, (self.rng.choice(self.person_matters),)

    def open_probability(self, age: timedelta, promised_days: int) -> float:
        days = age.total_seconds() / 86400
        window = 1.4 * promised_days + 2
        if days <= window:
            return 0.1 + 0.85 * (1 - days / window)
        if days <= 90:
            return 0.04
        return 0.008

    def case(self, out: Copier) -> int:
        rng, now, catalogue = self.rng, self.now, self.catalogue
        case_id = str(uuid.uuid4())
        submitted = self.submitted_at()
        case_number = f"SJ{submitted.astimezone(SHANGHAI):%Y%m%d}-{case_id.replace('-', '')[:12].upper()}"
        community = rng.choice(self.communities)
        district = catalogue.unit_at(community, Level.DISTRICT).code
        bundle, matter_codes = self.matters_of_case()
        enterprise = str(catalogue.matter(matter_codes[0]).applicant_kind) != "person"
        name, id_number, phone, fingerprint = rng.choice(self.residents)
        if rng.random() < 0.002 and len(self.looked_up) < 20_000:
            self.looked_up.append((case_number, phone[-4:]))
        age = now - submitted

        # intake: the case and its sealed applicant
        applicant = self.keyring.seal({"name": name, "id_number": id_number, "phone": phone, "email": None},
                                      context=f"intake_applicants:{case_id}")
        out.add("intake_cases", ("id", "case_number", "community_code", "bundle_code", "channel", "agent_id",
                                 "description", "catalogue_version", "submitted_by", "submitted_at", "completed_at",
                                 "delivery_json", "service_point_id", "accepting_unit_code",
                                 "taken_in_community_code"),
                (case_id, case_number, community, bundle, "kiosk", None, "", self.version,
                 f"kiosk:{community}", submitted, None, None, None, None, None))
        out.add("intake_applicants", ("case_id", "key_id", "wrapped_key", "name_sealed", "id_number_sealed",
                                      "phone_sealed", "email_sealed", "id_fingerprint", "kind",
                                      "organisation_name", "uscc", "representative_role"),
                (case_id, applicant.key_id, applicant.wrapped_key, applicant.fields["name"],
                 applicant.fields["id_number"], applicant.fields["phone"], applicant.fields["email"], fingerprint,
                 "enterprise" if enterprise else "person", "南京某某科技有限公司" if enterprise else None,
                 "91350100M000100Y43" if enterprise else None, "legal_representative" if enterprise else None))
        out.add("routing_cases", ("case_id", "case_number", "community_code", "completed_at"),
                (case_id, case_number, community, None))
        out.add("notification_deliveries",
                ("id", "recipient", "channel", "cause", "kind", "audience", "event_type", "case_id", "item_id",
                 "community_code", "subject", "body", "urgent", "status", "attempts", "created_at", "sent_at"),
                (str(uuid.uuid4()), f"resident:{case_id}", "sms", f"intake#{uuid.uuid4()}/case-received",
                 "case-received", "resident", "cn.sanji.case.submitted", case_id, None, community,
                 "受理通知", f"您的办件{case_number}已受理", False, "sent", 1, submitted + timedelta(seconds=5),
                 submitted + timedelta(seconds=6)))

        deferred_material = None
        if rng.random() < 0.12:
            candidates = [(m, material) for m in matter_codes for material in catalogue.matter(m).materials
                          if material.deferrable]
            if candidates:
                deferred_material = rng.choice(candidates)

        statuses: dict[str, str] = {}
        for position, matter_code in enumerate(matter_codes):
            matter = catalogue.matter(matter_code)
            level, unit = self.desk(community, matter_code)
            item_id = str(uuid.uuid4())
            routed = submitted + timedelta(seconds=rng.randint(1, 30))
            legal, legal_provisional = self.deadline(routed, matter.legal_days)
            promised, promised_provisional = self.deadline(routed, matter.promised_days)
            return_count = 0
            if rng.random() < 0.03 and (moved := self.unit_above(community, level)) is not None:
                level, unit = moved
                return_count = 1
            waiting_for = tuple(p for p in matter.prerequisites if p in matter_codes)
            if rng.random() < self.open_probability(age, matter.promised_days):
                roll = rng.random()
                status = ("waiting" if waiting_for and any(statuses.get(p) in OPEN_STATUSES for p in waiting_for)
                          else "queued" if roll < 0.35 else "claimed" if roll < 0.55
                          else "accepted" if roll < 0.85 else "supplement_requested")
            else:
                roll = rng.random()
                status = "resolved" if roll < 0.95 else "rejected" if roll < 0.985 else "terminated"
            statuses[matter_code] = status
            is_open = status in OPEN_STATUSES
            elapsed = age.total_seconds()
            closed_at = (None if is_open else
                         routed + timedelta(seconds=elapsed * rng.uniform(0.05, 0.9)
                                            if elapsed < (promised - routed).total_seconds() * 1.2
                                            else (promised - routed).total_seconds() * rng.uniform(0.3, 1.1)))
            if closed_at is not None:
                closed_at = min(closed_at, now - timedelta(seconds=1))
            actor = f"staff-{unit}"
            claimed_by = None if status in ("waiting", "queued") else actor
            # the history, in order
            steps = [("route", None, "waiting" if waiting_for else "queued", routed, "routing",
                      json.dumps({"level": level, "unit_code": unit}))]
            moment = routed

            def later(limit: datetime | None = None) -> datetime:
                nonlocal moment
                end = limit or now
                moment = moment + (end - moment) * rng.uniform(0.05, 0.4)
                return moment
            if waiting_for and status != "waiting":
                steps.append(("release", "waiting", "queued", later(closed_at), "routing", "{}"))
            supplement = None
            if status not in ("waiting", "queued") and not (status == "terminated" and rng.random() < 0.5):
                steps.append(("claim", "queued", "claimed", later(closed_at), actor, "{}"))
                if status not in ("claimed",) and not (status == "rejected" and rng.random() < 0.5):
                    steps.append(("accept", "claimed", "accepted", later(closed_at), actor, "{}"))
                    if status == "supplement_requested" or (not is_open and rng.random() < 0.08):
                        asked = later(closed_at)
                        due = self.calendar.add_workdays(asked.astimezone(SHANGHAI).date(), 5).date
                        supplement = (asked, due)
                        steps.append(("request-supplement", "accepted", "supplement_requested", asked, actor,
                                      json.dumps({"materials": [matter.materials[0].code],
                                                  "due_date": due.isoformat(), "due_date_provisional": False})))
                        if status != "supplement_requested":
                            steps.append(("record-supplement", "supplement_requested", "accepted",
                                          later(closed_at), actor,
                                          json.dumps({"materials": [matter.materials[0].code]})))
            if not is_open:
                last_status = steps[-1][2]
                action = {"resolved": "resolve", "rejected": "reject", "terminated": "terminate"}[status]
                steps.append((action, last_status, status, closed_at, actor if action != "terminate" else "routing",
                              "{}"))
            updated = max(step[3] for step in steps)
            paused_at = supplement[0] if status == "supplement_requested" else None
            result = "已办结，证照已制发" if status == "resolved" else None
            delivery = json.dumps({"method": "pickup", "place": "政务服务中心窗口"}) if status == "resolved" else None
            closed_reason = "not-eligible" if status == "rejected" else None
            provisional = legal_provisional or promised_provisional
            out.add("routing_items", ROUTING_ITEM_COLUMNS, (
                item_id, case_id, case_number, matter_code, community, matter.department, level, unit,
                unit[:6], unit[:9], status, " ".join(waiting_for) if status == "waiting" else "", legal, promised,
                provisional, self.version, routed, routed, routed, claimed_by, return_count, False, paused_at,
                result, delivery, closed_reason, updated, None, routed, matter.legal_days, matter.promised_days,
                supplement[0].astimezone(SHANGHAI).date() if paused_at else None, 5 if paused_at else None,
                supplement[1] if paused_at else None, False if paused_at else None))
            for action, from_status, to_status, at, who, details in steps:
                out.add("routing_item_history", HISTORY_COLUMNS,
                        (item_id, at, who, action, from_status, to_status,
                         "not-eligible" if action == "reject" else None, "", details))
            out.add("intake_case_items", ("case_id", "matter_code", "position", "status", "item_id", "level",
                                          "unit_code", "department_code", "legal_deadline", "promised_deadline",
                                          "deadline_provisional", "updated_at"),
                    (case_id, matter_code, position, status, item_id, level, unit, matter.department, legal,
                     promised, provisional, updated))
            if supplement is not None:
                out.add("intake_material_ledger", ("case_id", "matter_code", "material_code", "state", "due_date",
                                                   "updated_at"),
                        (case_id, matter_code, matter.materials[0].code,
                         "requested" if status == "supplement_requested" else "supplied", supplement[1], updated))
            if deferred_material is not None and deferred_material[0] == matter_code:
                material = deferred_material[1]
                due = self.calendar.add_workdays(submitted.astimezone(SHANGHAI).date(), 5).date
                today = now.astimezone(SHANGHAI).date()
                state = ("pending" if is_open and due >= today else "expired" if is_open or rng.random() < 0.05
                         else "supplied")
                out.add("routing_deferred_materials", ("item_id", "material_code", "case_id", "due_date", "state",
                                                       "reminded_at"),
                        (item_id, material.code, case_id, due, state, None))
                out.add("intake_deferred_materials", ("case_id", "material_code", "material_name", "matter_codes",
                                                      "due_date", "due_date_provisional", "consequence",
                                                      "due_working_days"),
                        (case_id, material.code, material.name, matter_code, due, False, "逾期未补交的，不予办理", 5))
            # escalation: its copy of the item, its 督办 deadlines while open, and the breaches it logged
            breached = promised < (closed_at or now)
            legal_breached = legal < (closed_at or now)
            out.add("escalation_items", ESCALATION_ITEM_COLUMNS, (
                item_id, case_id, case_number, matter_code, matter.department, community, district, level, unit,
                status, updated, level, routed, routed, 0, routed, promised, legal, paused_at,
                routed + (promised - routed) * 0.8 if routed + (promised - routed) * 0.8 < (closed_at or now)
                else None, promised if breached else None, legal if legal_breached else None, closed_at, updated))
            if is_open:
                for kind, due_at in (("deadline_warning", routed + (promised - routed) * 0.8),
                                     ("promised_breach", promised), ("legal_breach", legal)):
                    fired = due_at <= now
                    out.add("escalation_deadlines", ("id", "key", "kind", "subject_type", "subject_id", "call_id",
                                                     "due_at", "state", "created_at", "fired_at", "attempts"),
                            (str(uuid.uuid4()), f"{kind}:{item_id}:0", kind, "item", item_id, None, due_at,
                             "fired" if fired else "pending", routed, due_at if fired else None, 0))
            if breached:
                out.add("escalation_actions", ("kind", "at", "item_id", "matter_code", "department_code", "level",
                                               "unit_code", "community_code", "district_code", "details"),
                        ("promised_breach", promised, item_id, matter_code, matter.department, level, unit,
                         community, district, "{}"))
            if age < timedelta(days=365):
                delivery_id = str(uuid.uuid4())
                out.add("notification_deliveries",
                        ("id", "recipient", "channel", "cause", "kind", "audience", "event_type", "case_id",
                         "item_id", "community_code", "subject", "body", "urgent", "status", "attempts",
                         "created_at", "sent_at"),
                        (delivery_id, f"unit:{unit}:{matter.department}", "inbox",
                         f"routing#{uuid.uuid4()}/item-routed", "item-routed", "staff", "cn.sanji.item.routed",
                         case_id, item_id, community, "新办件", f"新办件 {case_number}",
                         False, "sent", 1, routed, routed))
                out.add("notification_inbox", ("id", "delivery_id", "unit_code", "department_code", "kind", "subject",
                                               "body", "case_id", "case_number", "item_id", "created_at"),
                        (str(uuid.uuid4()), delivery_id, unit, matter.department, "item-routed", "新办件",
                         f"新办件 {case_number}", case_id, case_number, item_id, routed))
        return len(matter_codes)


LOADED_TABLES = ("intake_cases", "intake_applicants", "intake_case_items", "intake_deferred_materials",
                 "intake_material_ledger", "routing_items", "routing_cases", "routing_item_history",
                 "routing_deferred_materials", "escalation_items", "escalation_deadlines", "escalation_actions",
                 "notification_deliveries", "notification_inbox")


def secondary_indexes(raw) -> list[tuple[str, str]]:
    """The loaded tables' indexes that back no constraint, with their definitions as the migrations made them:
    dropped before the load and built again after it (one sort per index instead of a million inserts)."""
    with raw.cursor() as cursor:
        cursor.execute("SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' "
                       "AND i.tablename = ANY(%s) AND NOT EXISTS "
                       "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", (list(LOADED_TABLES),))
        return cursor.fetchall()


def loaded(engine) -> dict | None:
    with engine.connect() as connection:
        exists = connection.execute(text("SELECT to_regclass(:t)"), {"t": MARKER_TABLE}).scalar()
        if not exists:
            return None
        row = connection.execute(text(f"SELECT summary FROM {MARKER_TABLE}")).scalar()
        return json.loads(row) if row else None


def ensure_database(database_url: str, *, fresh: bool = False) -> None:
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    name = database_url.rsplit("/", 1)[1]
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if fresh:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def has_rows(engine) -> bool:
    with engine.connect() as connection:
        return bool(connection.execute(text("SELECT to_regclass('routing_items')")).scalar()
                    and connection.execute(text("SELECT EXISTS (SELECT 1 FROM routing_items)")).scalar())


def preload(database_url: str, *, items: int, years: float, seed: int = 17, force: bool = False) -> dict:
    """Migrate, and load the data set unless this database already holds one of ``items`` items."""
    ensure_database(database_url)
    engine = create_engine(normalise_url(database_url))
    summary = loaded(engine)
    if summary is not None and summary.get("items") == items and not force:
        for service in SERVICES:
            migrate(service, database_url)
        print(f"data set already loaded ({summary['items']:,} items, {summary['cases']:,} cases, "
              f"{summary['seconds']:.0f} s to load); reusing it", flush=True)
        engine.dispose()
        return summary
    if summary is not None or force or has_rows(engine):
        print("the database holds another or an unfinished data set: starting it afresh", flush=True)
        engine.dispose()
        ensure_database(database_url, fresh=True)
        engine = create_engine(normalise_url(database_url))
    for service in SERVICES:
        migrate(service, database_url)
    try:
        started = time.monotonic()
        generator = Generator(items=items, years=years, seed=seed, now=datetime.now(UTC))
        # COPY is synchronous: the cooperative wait callback shared.db installs for eventlet refuses it.
        import psycopg2.extensions
        psycopg2.extensions.set_wait_callback(None)
        raw = engine.raw_connection()
        try:
            indexes = secondary_indexes(raw)
            with raw.cursor() as cursor:
                cursor.execute("SET synchronous_commit = off")
                for name, _definition in indexes:
                    cursor.execute(f'DROP INDEX "{name}"')
            raw.commit()
            out = Copier(raw)
            made, cases = 0, 0
            while made < items:
                made += generator.case(out)
                cases += 1
                if cases % CHUNK_CASES == 0:
                    out.flush()
                    rate = made / (time.monotonic() - started)
                    print(f"  {made:,} items ({cases:,} cases) loaded, {rate:,.0f} items/s", flush=True)
            out.flush()
            out.wait()
            print(f"  building {len(indexes)} indexes again …", flush=True)
            with raw.cursor() as cursor:
                cursor.execute("SET maintenance_work_mem = '512MB'")
                for _name, definition in indexes:
                    cursor.execute(definition)
            raw.commit()
            with raw.cursor() as cursor:
                # The per-status counts the migration took on an empty table, taken again for what was loaded.
                cursor.execute("DELETE FROM routing_item_status_changes")
                cursor.execute("DELETE FROM routing_item_status_counts")
                cursor.execute("INSERT INTO routing_item_status_counts (status, items) "
                               "SELECT status, count(*) FROM routing_items GROUP BY status")
                summary = {"items": made, "cases": cases, "rows": out.counts, "looked_up": generator.looked_up,
                           "seconds": time.monotonic() - started, "loaded_at": datetime.now(UTC).isoformat()}
                cursor.execute(f"CREATE TABLE {MARKER_TABLE} (summary text NOT NULL)")
                cursor.execute(f"INSERT INTO {MARKER_TABLE} (summary) VALUES (%s)", (json.dumps(summary),))
            raw.commit()
        finally:
            raw.close()
        print("  VACUUM ANALYZE …", flush=True)
        vacuum = create_engine(normalise_url(database_url), isolation_level="AUTOCOMMIT")
        with vacuum.connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
        vacuum.dispose()
        summary["seconds"] = time.monotonic() - started
        print(f"loaded {made:,} items in {summary['seconds']:.0f} s: "
              + ", ".join(f"{table} {count:,}" for table, count in sorted(out.counts.items())), flush=True)
        return summary
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sanji_bench_scale")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--years", type=float, default=4.0)
    args = parser.parse_args(argv)
    preload(args.database_url, items=args.items, years=args.years)
    return 0


if __name__ == "__main__":
    sys.exit(main())
