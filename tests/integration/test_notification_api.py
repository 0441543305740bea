"""The notification HTTP API: the staff inbox and the delivery log, each within the caller's jurisdiction."""

from __future__ import annotations

import inspect
import re
from datetime import datetime

import pytest
from nameko.web.handlers import HttpRequestHandler

from services.notification.api import OPERATIONS
from services.notification.service import NotificationService
from shared.events import ItemRoutedV1, ReportOverdueV1
from shared.workdays import SHANGHAI
from tests.support.notification_fakes import envelope, sample
from tests.support.notification_harness import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
TOKENS = """
tokens:
  - {name: staff-maigaoqiao, kind: staff, unit: "320113003000", token: staff-maigaoqiao}
  - {name: staff-xuanwu-meiyuan, kind: staff, unit: "320102002000", token: staff-meiyuan}
  - {name: dept-qixia-police, kind: department, unit: "320113000000", department: police, token: dept-police}
  - {name: kiosk-xinhe, kind: kiosk, unit: "320113003021", token: kiosk-xinhe}
  - {name: dept-qixia-nameless, kind: department, unit: "320113000000", token: dept-nameless}
"""
MAIGAOQIAO = {"Authorization": "Bearer staff-maigaoqiao"}
MEIYUAN = {"Authorization": "Bearer staff-meiyuan"}
POLICE = {"Authorization": "Bearer dept-police"}
KIOSK = {"Authorization": "Bearer kiosk-xinhe"}
NAMELESS = {"Authorization": "Bearer dept-nameless"}   # a department system whose token names no department

CASE_XINHE = "00000000-0000-4000-8000-00000000000a"    # 馨合家园社区, 迈皋桥街道
CASE_MAQUN = "00000000-0000-4000-8000-00000000000b"    # 马群社区, 马群街道 (栖霞区)
CASE_MEIYUAN = "00000000-0000-4000-8000-00000000000c"  # 梅园新村社区 (玄武区)


def routed(case_id, community, unit, level, department, district, number):
    return sample(ItemRoutedV1.event_type, 0, case_id=case_id, item_id=f"item-{number}", community_code=community,
                  unit_code=unit, level=level, department_code=department, district_code=district,
                  case_number=f"SJ20261201-{number:04d}")


ITEMS = [
    routed(CASE_XINHE, "320113003021", "320113003000", "street", "police", "320113000000", 1),
    routed(CASE_XINHE, "320113003021", "320113003021", "community", "health", "320113000000", 2),
    routed(CASE_MAQUN, "320113002001", "320113000000", "district", "police", "320113000000", 3),
    routed(CASE_MEIYUAN, "320102002001", "320102002000", "street", "hrss", "320102000000", 4),
]


@pytest.fixture
def notification(container_factory, make_service_config, web_config_port, tmp_path, rabbit_config):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(TOKENS, encoding="utf-8")
    container = container_factory(NotificationService, make_service_config(
        "notification", web_port=web_config_port, SANJI_TOKENS_FILE=str(tokens),
        SANJI_NOTIFICATION_SWEEP_SECONDS=3600, SANJI_VAR_DIR=str(tmp_path / "var"),
        # the test expects each resident SMS to be tried at once, whatever the hour of the run (22:00-08:00
        # Beijing time would hold it until morning)
        SANJI_NOTIFICATION_QUIET_HOURS="off"))
    container.start()
    for payload in ITEMS:
        publish(container, rabbit_config["AMQP_URI"], *envelope(payload, AT))
    return container


def inbox(web_session, headers, query=""):
    response = web_session.get(f"/v1/inbox{query}", headers=headers)
    return response.status_code, response.json()


def numbers(document) -> list[str]:
    return sorted(message["case_number"] for message in document["messages"])


def test_street_staff_read_the_inbox_of_their_street_and_its_communities(notification, web_session):
    status, document = inbox(web_session, MAIGAOQIAO)
    assert status == 200 and document["total"] == 2
    assert numbers(document) == ["SJ20261201-0001", "SJ20261201-0002"]
    message = next(m for m in document["messages"] if m["case_number"] == "SJ20261201-0001")
    assert (message["kind"], message["unit_code"], message["department_code"]) == ("staff_new_item", "320113003000",
                                                                                   "police")
    assert message["subject"] == "新办件：居住证办理（SJ20261201-0001）" and "待办队列" in message["body"]


def test_a_unit_below_narrows_the_inbox_and_a_unit_outside_is_refused(notification, web_session):
    assert numbers(inbox(web_session, MAIGAOQIAO, "?unit=320113003021")[1]) == ["SJ20261201-0002"]
    status, problem = inbox(web_session, MAIGAOQIAO, "?unit=320113000000")
    assert (status, problem["reason"]) == (403, "unit_forbidden")
    status, problem = inbox(web_session, MAIGAOQIAO, "?unit=999999999999")
    assert (status, problem["reason"]) == (422, "unknown_unit")


def test_each_caller_sees_only_its_own_jurisdiction(notification, web_session):
    assert numbers(inbox(web_session, MEIYUAN)[1]) == ["SJ20261201-0004"]
    assert numbers(inbox(web_session, POLICE)[1]) == ["SJ20261201-0001", "SJ20261201-0003"]  # police only


def test_a_department_token_that_names_no_department_reads_an_empty_inbox_and_no_delivery_log(
        notification, web_session, rabbit_config):
    # A message for the district's staff as a whole (no department): the nameless token must not read it either.
    overdue = sample(ReportOverdueV1.event_type, 0)
    publish(notification, rabbit_config["AMQP_URI"], *envelope(overdue, AT, source="/sanji/escalation"))
    assert inbox(web_session, POLICE)[1]["total"] == 2                  # the police see their own two only
    status, document = inbox(web_session, NAMELESS)
    assert (status, document) == (200, {"messages": [], "total": 0})
    assert inbox(web_session, NAMELESS, "?unit=320113003000")[1] == {"messages": [], "total": 0}
    refused = web_session.get(f"/v1/deliveries?case_id={CASE_XINHE}", headers=NAMELESS)
    assert (refused.status_code, refused.json()["reason"]) == (403, "staff_only")


def test_kiosks_and_strangers_read_no_inbox(notification, web_session):
    status, problem = inbox(web_session, KIOSK)
    assert (status, problem["reason"]) == (403, "staff_only")
    status, problem = inbox(web_session, {})
    assert (status, problem["reason"]) == (401, "unauthenticated")
    status, problem = inbox(web_session, {"Authorization": "Bearer guessed"})
    assert (status, problem["reason"]) == (401, "unauthenticated")


def test_the_inbox_pages(notification, web_session):
    status, first = inbox(web_session, MAIGAOQIAO, "?limit=1")
    _, second = inbox(web_session, MAIGAOQIAO, "?limit=1&offset=1")
    assert status == 200 and first["total"] == second["total"] == 2
    assert len(first["messages"]) == len(second["messages"]) == 1
    assert first["messages"][0]["id"] != second["messages"][0]["id"]
    for query in ("?limit=0", "?limit=500", "?limit=ten", "?offset=-1"):
        status, problem = inbox(web_session, MAIGAOQIAO, query)
        assert (status, problem["reason"]) == (400, "invalid_query"), query


def test_the_delivery_log_of_a_case_within_the_callers_jurisdiction(notification, web_session):
    def attempted():
        # Planning wakes the sweep: each resident message gets its first attempt at once, which fails for now
        # (no intake here to give the contact details) and waits for its retry.
        response = web_session.get(f"/v1/deliveries?case_id={CASE_XINHE}", headers=MAIGAOQIAO)
        assert response.status_code == 200
        log = response.json()
        resident = [d for d in log["deliveries"] if d["channel"] in ("sms", "email")]
        return log if resident and all(d["attempts"] for d in resident) else None

    log = wait_until(attempted, timeout=20, what="the first attempts of the resident's messages")
    assert log["case_id"] == CASE_XINHE
    expected = [("item_routed", "sms", "pending"), ("item_routed", "email", "pending"),
                ("staff_new_item", "inbox", "sent")] * 2
    assert sorted((d["kind"], d["channel"], d["status"]) for d in log["deliveries"]) == sorted(expected)
    resident = next(d for d in log["deliveries"] if d["channel"] == "sms")
    assert resident["recipient"] == f"resident:{CASE_XINHE}" and resident["address_hint"] is None
    assert [a["outcome"] for a in resident["attempts"]] == ["transient"] and resident["next_attempt_at"] is not None
    inbox_delivery = next(d for d in log["deliveries"] if d["channel"] == "inbox")
    assert [a["outcome"] for a in inbox_delivery["attempts"]] == ["sent"]
    # Stricter than before (the police system used to read this log): department systems never read what a
    # resident was told; they read their own messages in the inbox.
    for case_id in (CASE_MAQUN, CASE_XINHE):
        refused = web_session.get(f"/v1/deliveries?case_id={case_id}", headers=POLICE)
        assert (refused.status_code, refused.json()["reason"]) == (403, "staff_only")
        assert "deliveries" not in refused.json()


def test_the_delivery_log_of_another_jurisdiction_or_an_unknown_case_is_refused(notification, web_session):
    for query, headers, status, reason in [
        (f"?case_id={CASE_MEIYUAN}", MAIGAOQIAO, 403, "case_forbidden"),
        (f"?case_id={CASE_XINHE}", MEIYUAN, 403, "case_forbidden"),
        ("?case_id=no-such-case", MAIGAOQIAO, 404, "unknown_case"),
        ("", MAIGAOQIAO, 400, "invalid_query"),
        (f"?case_id={CASE_XINHE}", KIOSK, 403, "staff_only"),
    ]:
        response = web_session.get(f"/v1/deliveries{query}", headers=headers)
        assert (response.status_code, response.json()["reason"]) == (status, reason), query


def test_health_and_the_served_document_describe_exactly_the_served_operations(notification, web_session):
    assert web_session.get("/health").json()["status"] == "ok"
    document = web_session.get("/openapi.json").json()
    served = set()
    for _, attribute in inspect.getmembers(NotificationService):
        for entrypoint in getattr(attribute, "nameko_entrypoints", ()):
            if isinstance(entrypoint, HttpRequestHandler):
                served.add((entrypoint.method, re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", entrypoint.url)))
    documented = {(operation.method, operation.path) for operation in OPERATIONS}
    assert {route for route in served if route[1].startswith("/v1/")} == {
        route for route in documented if route[1].startswith("/v1/")}
    assert documented <= served
    assert set(document["paths"]) == {path for _, path in documented}
    assert {p["name"] for p in document["paths"]["/v1/deliveries"]["get"]["parameters"]} == {"case_id"}
