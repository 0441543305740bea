"""Provisional deadlines revised once the year's holiday arrangement is loaded, over the real broker and database.

A case submitted on 2 December 2026 for a matter whose limits reach into January 2027, with a 容缺 material: the
2027 arrangement is not loaded yet, so the item's deadlines and the due date are provisional. Then the 2027
arrangement is installed, making Saturday 9 January a working day: the revision (run twice, on two routing
replicas) moves the stored deadlines and the due date, clears the flags, answers them on the API, moves the
escalation service's 督办 timers, and sends the resident one correcting SMS.
"""

from __future__ import annotations

import json
import shutil
import socket
from datetime import UTC, date, datetime

import pytest
import requests
from nameko.testing.services import entrypoint_hook, entrypoint_waiter
from sqlalchemy import create_engine, text

from services.escalation.service import EscalationService
from services.intake.service import IntakeService
from services.notification.service import NotificationService
from services.routing.service import RoutingService
from shared.clock import FrozenClock
from shared.config import REPO_ROOT
from shared.db import normalise_url
from shared.nameko_ext import ClockProvider
from shared.workdays import SHANGHAI
from tests.support import notification_db
from tests.support.bus import EventFollower
from tests.support.calendar_files import calendar_file, load_2027_arrangement  # noqa: F401 - fixture
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE, XINHE_COMMUNITY, XINHE_KIOSK
from tests.support.notification_harness import sweep_until
from tests.support.notification_servers import HttpStandIn
from tests.support.waiting import wait_until

SUBMITTED_AT = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)
WORKED_SATURDAY = date(2027, 1, 9)
QIXIA_STAFF = {"Authorization": "Bearer dev-staff-qixia"}


def on_clock(service_class, clock):
    return type(service_class.__name__ + "OnFrozenClock", (service_class,), {"clock": ClockProvider(clock)})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def catalogue_dir(tmp_path):
    """The shipped catalogue, with 居住证 given limits long enough to reach into 2027 from 2 December."""
    directory = tmp_path / "catalogue"
    shutil.copytree(REPO_ROOT / "catalogue" / "nanjing", directory)
    matters = directory / "matters.yaml"
    content = matters.read_text(encoding="utf-8")
    start = content.index("  - code: residence-permit")
    end = content.index("  - code:", start + 10)
    block = content[start:end]
    block = block.replace("legal_days: 15", "legal_days: 30", 1).replace("promised_days: 10", "promised_days: 27", 1)
    matters.write_text(content[:start] + block + content[end:], encoding="utf-8")
    return directory


@pytest.fixture
def system(container_factory, make_service_config, web_config_port, catalogue_dir, calendar_file, tmp_path):
    clock = FrozenClock(SUBMITTED_AT)
    gateway = HttpStandIn()
    shared = dict(SANJI_CATALOGUE_DIR=str(catalogue_dir), SANJI_CALENDAR_OVERRIDES=str(calendar_file),
                  SANJI_ESCALATION_CAUSES_FILE=str(REPO_ROOT / "config" / "failure-causes.yaml"))
    routing_port = free_port()
    intake = container_factory(on_clock(IntakeService, clock), make_service_config(
        "intake", web_port=web_config_port, SANJI_DEFERRAL_WORKING_DAYS=27, **shared))
    routing = container_factory(on_clock(RoutingService, clock), make_service_config(
        "routing", web_port=routing_port, **shared))
    replica = container_factory(on_clock(RoutingService, clock), make_service_config(
        "routing", WEB_SERVER_ADDRESS="127.0.0.1:0", **shared))
    escalation = container_factory(on_clock(EscalationService, clock), make_service_config(
        "escalation", WEB_SERVER_ADDRESS="127.0.0.1:0", **shared))
    notification = container_factory(NotificationService, make_service_config(
        "notification", WEB_SERVER_ADDRESS="127.0.0.1:0", SANJI_NOTIFICATION_SMS_URL=gateway.url("/sms"),
        SANJI_NOTIFICATION_QUIET_HOURS="off", SANJI_NOTIFICATION_SWEEP_SECONDS=0.05,
        SANJI_VAR_DIR=str(tmp_path / "var"), **shared))
    for container in (notification, escalation, routing, replica, intake):
        container.start()
    yield dict(intake=intake, routing=routing, replica=replica, escalation=escalation,
               notification=notification, gateway=gateway, routing_url=f"http://127.0.0.1:{routing_port}")
    gateway.stop()


def rows(database_url: str, sql: str, **params) -> list:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).all()
    finally:
        engine.dispose()


def shanghai_day(value) -> date:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # SQLite: naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(SHANGHAI).date()


def escalation_timers(database_url: str, item_id: str) -> dict[str, date]:
    found = rows(database_url, "SELECT kind, due_at FROM escalation_deadlines WHERE subject_id = :i AND state = "
                               "'pending' AND kind IN ('promised_breach', 'legal_breach')", i=item_id)
    return {kind: shanghai_day(due_at) for kind, due_at in found}


def revise(container, entrypoint: str) -> dict | None:
    with entrypoint_hook(container, entrypoint) as run:
        return run()


def test_provisional_deadlines_are_revised_exactly_once_when_the_years_arrangement_is_loaded(
        system, web_session, rabbit_config, database_url, calendar_file):
    everything = EventFollower(rabbit_config["AMQP_URI"], "audit.calendar-revision", "#")
    body = {"community_code": XINHE_COMMUNITY, "matters": ["residence-permit"],
            "applicant": {"name": "刘金花", "id_number": APPLICANT_ID_NUMBER, "phone": APPLICANT_PHONE},
            "materials": {"provided": ["id-card", "photo", "rental-contract", "landlord-property-certificate-copy",
                                       "job-or-school-proof"], "deferred": ["landlord-id-copy"]},
            "channel": {"kind": "kiosk"}, "description": "居住证"}
    with entrypoint_waiter(system["escalation"], "on_event", timeout=15):
        response = web_session.post("/v1/cases", data=json.dumps(body, ensure_ascii=False),
                                    headers={"Content-Type": "application/json", **XINHE_KIOSK})
    assert response.status_code == 201, response.text
    case = response.json()
    case_id = case["case_id"]
    [deferred] = case["deferred_materials"]
    assert deferred["due_date"] == "2027-01-11" and deferred["due_date_provisional"] is True

    wait_until(lambda: rows(database_url, "SELECT id FROM routing_items WHERE case_id = :c", c=case_id),
               what="the item routed")
    [(item_id,)] = rows(database_url, "SELECT id FROM routing_items WHERE case_id = :c", c=case_id)
    before = requests.get(f"{system['routing_url']}/v1/items/{item_id}", headers=QIXIA_STAFF, timeout=10).json()
    # 27 and 30 working days after 2 December without 2027's 调休: 11 and 14 January.
    assert shanghai_day(before["promised_deadline"]) == date(2027, 1, 11)
    assert shanghai_day(before["legal_deadline"]) == date(2027, 1, 14)
    assert before["deadline_provisional"] is True
    wait_until(lambda: escalation_timers(database_url, item_id) == {"promised_breach": date(2027, 1, 11),
                                                                    "legal_breach": date(2027, 1, 14)},
               what="the 督办 timers armed at the provisional deadlines")
    # Nothing to revise while 2027 is still not loaded: a pass changes nothing and says nothing.
    assert revise(system["routing"], "revise_deadlines")["revised"] == 0
    assert revise(system["intake"], "revise_due_dates")["revised"] == 0

    load_2027_arrangement(calendar_file, WORKED_SATURDAY)
    with entrypoint_waiter(system["escalation"], "on_event", timeout=15):
        first = revise(system["routing"], "revise_deadlines")
    again = revise(system["routing"], "revise_deadlines")
    replica = revise(system["replica"], "revise_deadlines")
    intake_first = revise(system["intake"], "revise_due_dates")
    intake_again = revise(system["intake"], "revise_due_dates")
    assert first["revised"] == 1 and first["dates_changed"] == 1
    assert again is None or again["revised"] == 0  # no change of calendar since: no pass at all
    assert replica["revised"] == 0  # the other replica finds nothing left to revise
    assert intake_first["revised"] == 1 and intake_first["dates_changed"] == 1
    assert intake_again is None or intake_again["revised"] == 0

    # The stored deadlines and flag, and the API's answer: the worked Saturday counts.
    after = requests.get(f"{system['routing_url']}/v1/items/{item_id}", headers=QIXIA_STAFF, timeout=10).json()
    assert shanghai_day(after["promised_deadline"]) == WORKED_SATURDAY  # 27th working day: Saturday 9 January
    assert shanghai_day(after["legal_deadline"]) == date(2027, 1, 13)
    assert after["deadline_provisional"] is False
    assert [entry["action"] for entry in after["history"]].count("revise-deadlines") == 1
    # The escalation service's timers follow the revised deadlines.
    wait_until(lambda: escalation_timers(database_url, item_id) == {"promised_breach": WORKED_SATURDAY,
                                                                    "legal_breach": date(2027, 1, 13)},
               what="the 督办 timers moved to the revised deadlines")
    # Intake's answer: the 容缺 due date and the item's deadlines as revised, flags cleared.
    wait_until(lambda: web_session.get(f"/v1/cases/{case_id}", headers=XINHE_KIOSK).json()["items"][0][
        "deadline_provisional"] is False, what="intake's read model follows the revision")
    seen = web_session.get(f"/v1/cases/{case_id}", headers=XINHE_KIOSK).json()
    assert seen["deferred_materials"][0]["due_date"] == WORKED_SATURDAY.isoformat()
    assert seen["deferred_materials"][0]["due_date_provisional"] is False
    # Routing's copy of the 容缺 due date, by which it reminds and expires, follows intake's revision.
    wait_until(lambda: [due for (due,) in rows(database_url, "SELECT due_date FROM routing_deferred_materials "
                                                             "WHERE case_id = :c", c=case_id)]
               in ([WORKED_SATURDAY], [WORKED_SATURDAY.isoformat()]), what="routing's 容缺 copy revised")

    # One correcting SMS to the resident, for the date she was told; none for the flag alone.
    def corrected() -> bool:
        sent = [row for row in notification_db.deliveries(database_url, case_id=case_id, channel="sms")
                if row["kind"] == "deferral_due_revised"]
        return len(sent) == 1 and sent[0]["status"] == "sent"

    sweep_until(system["notification"], corrected, timeout=20)
    events = everything.settle(1.0)
    everything.stop()
    texts = [request.json()["text"] for request in system["gateway"].to("/sms")]
    corrections = [t for t in texts if "更正" in t]
    assert len(corrections) == 1
    assert "2027年1月11日" in corrections[0] and "2027年1月9日" in corrections[0]
    revised = [e for e in events if e["type"] == "cn.sanji.item.deadline-revised.v1"]
    deferral = [e for e in events if e["type"] == "cn.sanji.case.deferral-due-date-revised.v1"]
    assert len(revised) == 1 and len(deferral) == 1
    assert revised[0]["data"]["deadline_provisional"] is False
    assert revised[0]["data"]["previous_promised_deadline"] != revised[0]["data"]["promised_deadline"]
    assert deferral[0]["data"]["previous_due_date"] == "2027-01-11"
    bus_text = json.dumps(revised + deferral, ensure_ascii=False)
    for secret in (APPLICANT_PHONE, APPLICANT_ID_NUMBER, "刘金花"):
        assert secret not in bus_text
