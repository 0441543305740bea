"""A minimal COPY loader of earlier items for `make bench` (the issue: the database not empty when the
timing starts, at least 100,000 earlier items, loaded once by COPY and reused between runs).

Each earlier case has one item and leaves what the pipeline would have left: intake's case and item, routing's
case, item and history line, escalation's item (and, for the open ones, its three 督办 deadlines, pending, due
in the future so that no sweep fires them during the timing), evaluation's item, notification's two SMS
(receipt and progress, sent), and the consumer records of the events handled. Nine in ten are closed
(resolved); the rest are open in a queue. Submissions are spread over the two years before the load.

The rows are plausible, not a model of a city's history: bench/scale.py's loader is that (1,000,000 items,
years of history). This one is what the throughput bench needs: tables and indexes of a realistic size.
"""

from __future__ import annotations

import io
import random
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text

from shared.db import normalise_url

COMMUNITIES = ("320113003021", "320113003002")
MATTER, DEPARTMENT = "employment-registration", "hrss"
CHUNK = 20_000
CONSUMERS = ("routing.case-submitted", "notification.events", "intake.item-updates", "escalation.events",
             "evaluation.events")


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _tsv(rows) -> io.StringIO:
    out = io.StringIO()
    for row in rows:
        out.write("\t".join("\\N" if value is None else str(value).replace("\t", " ").replace("\n", " ")
                            for value in row) + "\n")
    out.seek(0)
    return out


TABLES = {
    "intake_cases": ("id", "case_number", "community_code", "channel", "description", "catalogue_version",
                     "submitted_by", "submitted_at", "completed_at"),
    "intake_case_items": ("case_id", "matter_code", "position", "status", "item_id", "level", "unit_code",
                          "department_code", "legal_deadline", "promised_deadline", "deadline_provisional",
                          "updated_at"),
    "routing_cases": ("case_id", "case_number", "community_code", "completed_at"),
    "routing_items": ("id", "case_id", "case_number", "matter_code", "community_code", "department_code", "level",
                      "unit_code", "status", "waiting_for", "legal_deadline", "promised_deadline",
                      "deadline_provisional", "catalogue_version", "routed_at", "clock_started_at", "placed_at",
                      "return_count", "returns_locked", "updated_at", "deadlines_counted_from", "legal_days",
                      "promised_days", "district_prefix", "street_prefix"),
    "routing_item_history": ("item_id", "at", "actor", "action", "to_status", "note", "details"),
    "escalation_items": ("item_id", "case_id", "case_number", "matter_code", "department_code", "community_code",
                         "district_code", "level", "unit_code", "status", "as_of", "first_level", "routed_at",
                         "placed_at", "clock_cycle", "clock_started_at", "promised_deadline", "legal_deadline",
                         "closed_at", "updated_at"),
    "escalation_deadlines": ("id", "key", "kind", "subject_type", "subject_id", "due_at", "state", "created_at",
                             "attempts"),
    "evaluation_items": ("item_id", "case_id", "matter_code", "department_code", "level", "unit_code",
                         "district_code", "community_code", "status", "as_of", "responded_in_time",
                         "concluded_in_time", "return_count", "flag_return_reset", "flag_late_suspension",
                         "flag_reopened", "updated_at"),
    "notification_deliveries": ("id", "recipient", "channel", "cause", "kind", "audience", "event_type", "case_id",
                                "item_id", "community_code", "subject", "body", "urgent", "status", "attempts",
                                "created_at", "sent_at"),
    "processed_messages": ("consumer", "event_key", "processed_at"),
}


def _rows_of_case(rng: random.Random, now: datetime, catalogue_version: str) -> dict[str, list[tuple]]:
    case_id, item_id = str(uuid.uuid4()), str(uuid.uuid4())
    submitted = now - timedelta(seconds=rng.uniform(3600, 2 * 365 * 86400))
    number = f"P{submitted:%Y%m%d}{case_id[:8].upper()}"
    community = rng.choice(COMMUNITIES)
    district = community[:6] + "000000"
    legal, promised = submitted + timedelta(days=28), submitted + timedelta(days=14)
    is_open = rng.random() < 0.1
    if is_open:  # open ones are recent enough that their deadlines lie ahead
        submitted = now - timedelta(seconds=rng.uniform(60, 5 * 86400))
        legal, promised = now + timedelta(days=28), now + timedelta(days=14)
    status = "queued" if is_open else "resolved"
    closed = None if is_open else submitted + timedelta(days=rng.uniform(1, 10))
    touched = closed or submitted
    rows: dict[str, list[tuple]] = {table: [] for table in TABLES}
    rows["intake_cases"].append((case_id, number, community, "kiosk", "earlier case", catalogue_version, "preload",
                                 _iso(submitted), _iso(closed) if closed else None))
    rows["intake_case_items"].append((case_id, MATTER, 0, status, item_id, "community", community, DEPARTMENT,
                                      _iso(legal), _iso(promised), "f", _iso(touched)))
    rows["routing_cases"].append((case_id, number, community, _iso(closed) if closed else None))
    rows["routing_items"].append((item_id, case_id, number, MATTER, community, DEPARTMENT, "community", community,
                                  status, "", _iso(legal), _iso(promised), "f", catalogue_version, _iso(submitted),
                                  _iso(submitted), _iso(submitted), 0, "f", _iso(touched), _iso(submitted), 20, 10,
                                  community[:6], community[:9]))
    rows["routing_item_history"].append((item_id, _iso(submitted), "system", "route", "queued", "", "{}"))
    rows["escalation_items"].append((item_id, case_id, number, MATTER, DEPARTMENT, community, district, "community",
                                     community, status, _iso(touched), "community", _iso(submitted), _iso(submitted),
                                     0, _iso(submitted), _iso(promised), _iso(legal),
                                     _iso(closed) if closed else None, _iso(touched)))
    if is_open:
        for kind, due in (("deadline_warning", promised - timedelta(days=2)), ("promised_breach", promised),
                          ("legal_breach", legal)):
            rows["escalation_deadlines"].append((str(uuid.uuid4()), f"{kind}:{item_id}:0", kind, "item", item_id,
                                                 _iso(due), "pending", _iso(submitted), 0))
    rows["evaluation_items"].append((item_id, case_id, MATTER, DEPARTMENT, "community", community, district,
                                     community, status, _iso(touched), 1, 0 if is_open else 1, 0, 0, 0, 0,
                                     _iso(touched)))
    for kind, event_type in (("receipt", "cn.sanji.case.submitted.v1"), ("item_routed", "cn.sanji.item.routed.v1")):
        event_id = str(uuid.uuid4())
        rows["notification_deliveries"].append((
            str(uuid.uuid4()), f"resident:{case_id}", "sms", f"{event_id}/{kind}", kind, "resident", event_type,
            case_id, item_id if kind == "item_routed" else None, community, "", "您的办件已受理", "f", "sent", 1,
            _iso(submitted), _iso(submitted)))
    for consumer in CONSUMERS:
        rows["processed_messages"].append((consumer, str(uuid.uuid4()), _iso(submitted)))
    return rows


def load_items(database_url: str, items: int, *, seed: int = 7, say=print) -> None:
    """COPY ``items`` earlier cases of one item each into a migrated database (every service's tables)."""
    from shared.catalogue import load_catalogue
    from shared.config import REPO_ROOT

    catalogue_version = load_catalogue(REPO_ROOT / "catalogue" / "nanjing").version
    rng = random.Random(seed)
    now = datetime.now(UTC)
    engine = create_engine(normalise_url(database_url))
    import psycopg2.extensions

    # COPY is synchronous: no cooperative wait callback while it runs. The callback is process-wide, so the
    # previous one comes back after (a test process that preloads goes on with green connections).
    previous_wait_callback = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    try:
        raw = engine.raw_connection()
    except Exception:
        psycopg2.extensions.set_wait_callback(previous_wait_callback)
        raise
    try:
        made = 0
        while made < items:
            batch = {table: [] for table in TABLES}
            for _ in range(min(CHUNK, items - made)):
                for table, rows in _rows_of_case(rng, now, catalogue_version).items():
                    batch[table].extend(rows)
            with raw.cursor() as cursor:
                for table, columns in TABLES.items():
                    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", _tsv(batch[table]))
            raw.commit()
            made += len(batch["routing_items"])
            say(f"  {made:,} earlier items loaded")
    finally:
        raw.close()
        engine.dispose()
        psycopg2.extensions.set_wait_callback(previous_wait_callback)
    vacuum = create_engine(normalise_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        with vacuum.connect() as connection:
            # COPY went past the routing service, which keeps the per-status counts of /metrics: count once, as
            # its migration does.
            connection.execute(text("DELETE FROM routing_item_status_changes"))
            connection.execute(text("DELETE FROM routing_item_status_counts"))
            connection.execute(text("INSERT INTO routing_item_status_counts (status, items) "
                                    "SELECT status, count(*) FROM routing_items GROUP BY status"))
            connection.execute(text("VACUUM ANALYZE"))
    finally:
        vacuum.dispose()
