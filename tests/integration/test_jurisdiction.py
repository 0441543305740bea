"""Jurisdiction everywhere: each finding of the probes, replayed over HTTP against the real broker and database.

- A department token that names no department sees nothing (routing, escalation, notification), not every
  department's items, calls and messages.
- Staff of one district cannot file a 办不成事 report on another district's item or case (that report would
  text the resident a receipt), nor grant 容缺 on another district's item (that would text her reminders).
- A resident's rejection SMS and e-mail carry the catalogue's reason name only: an unknown reason code becomes a
  generic phrase, and an event's free-text note never reaches her.
(The delivery log's rule, staff only, is in test_notification_api.py; the whistle race in test_escalation_race.py.)
"""

from __future__ import annotations

from datetime import datetime

import pytest

from services.notification.domain import UNKNOWN_NAMES
from services.notification.service import NotificationService
from shared.clock import FrozenClock
from shared.config import REPO_ROOT
from shared.events import ItemRejectedV1, ItemRoutedV1
from shared.workdays import SHANGHAI
from tests.support.db import count_rows
from tests.support.escalation_harness import query, start_stack
from tests.support.notification_fakes import envelope, sample
from tests.support.notification_harness import publish
from tests.support.routing_harness import at

pytestmark = pytest.mark.integration

NO_DEPARTMENT = {"Authorization": "Bearer dev-dept-qixia-nameless"}
TOKENS_WITH_A_SLIP = (REPO_ROOT / "config" / "dev-tokens.yaml").read_text(encoding="utf-8") + """
  - name: dept-qixia-nameless            # a department system whose entry forgot its department
    kind: department
    unit: "320113000000"
    token: dev-dept-qixia-nameless
"""
COMPLAINT = "property-management-complaint"
REPORTS = "/v1/failure-reports"
ESCALATION_TABLES = ("escalation_failure_reports", "escalation_report_entries", "escalation_deferral_grants",
                     "escalation_actions", "escalation_deadlines", "outbox_messages")


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))  # a Monday


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text(TOKENS_WITH_A_SLIP, encoding="utf-8")
    return path


@pytest.fixture
def stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config, database_url, clock,
          tokens_file):
    def make_with_tokens(service, web_port=None, **overrides):
        return make_service_config(service, web_port=web_port, SANJI_TOKENS_FILE=str(tokens_file), **overrides)

    return start_stack(container_factory, make_with_tokens, web_config_port, web_session, rabbit_config,
                       database_url, clock)


# ── A department token without a department ─────────────────────────────────────────────────────────


def test_a_department_token_that_names_no_department_sees_and_claims_nothing(stack, clock):
    items = stack.submit("residence-permit", "employment-registration")  # police at the street, hrss at home
    item_id = items["residence-permit"]
    web = stack.routing.web

    queue = web.get("/v1/items", headers=NO_DEPARTMENT)
    assert (queue.status_code, queue.json()) == (200, {"items": [], "next_cursor": None, "count": 0,
                                                       "count_exact": True})
    assert web.get(f"/v1/items/{item_id}", headers=NO_DEPARTMENT).json()["reason"] == "item_forbidden"
    for action in ("claim", "accept"):
        refused = web.post(f"/v1/items/{item_id}/{action}", headers=NO_DEPARTMENT)
        assert (refused.status_code, refused.json()["reason"]) == (403, "item_forbidden")
    assert stack.routing.get(item_id)["claimed_by"] is None
    assert stack.routing.outbox("item.claimed.v1") == []
    # The police system of the same district does see its own item, so the slip is the only difference.
    police = web.get("/v1/items", headers={"Authorization": "Bearer dev-dept-qixia-police"}).json()
    assert [item["item_id"] for item in police["items"]] == [item_id]

    # Escalation: the item's record and the 吹哨 calls (an item escalated to the street calls two departments).
    complaint = stack.submit(COMPLAINT)[COMPLAINT]
    clock._at = at(2026, 12, 3, 17, 31)
    stack.sweep()
    calls = stack.wait_item(complaint, lambda v: v["level"] == "street" and len(v["calls"]) == 2, "calls")["calls"]
    for seen in (item_id, complaint):
        refused = stack.http.get(f"{stack.base}/v1/items/{seen}/escalation", headers=NO_DEPARTMENT, timeout=10)
        assert (refused.status_code, refused.json()["reason"]) == (403, "item_forbidden")
    listed = stack.http.get(f"{stack.base}/v1/whistle-calls", headers=NO_DEPARTMENT, timeout=10)
    assert (listed.status_code, listed.json()) == (200, {"calls": [], "total": 0})
    for call in calls:
        refused = stack.http.post(f"{stack.base}/v1/whistle-calls/{call['call_id']}/acknowledge",
                                  headers=NO_DEPARTMENT, timeout=10)
        assert (refused.status_code, refused.json()["reason"]) == (403, "call_forbidden")
    assert stack.published("whistle.acknowledged.v1") == []


# ── 办不成事 filed about another district's item or case ───────────────────────────────────────────


def test_staff_of_another_district_cannot_file_a_report_on_an_item_or_case_of_this_one(stack, database_url):
    item_id = stack.submit("residence-permit")["residence-permit"]          # 栖霞区 迈皋桥街道 馨合家园社区
    case_id = query(database_url, "SELECT case_id FROM escalation_items WHERE item_id = :i", i=item_id)[0][0]
    before = count_rows(database_url, *ESCALATION_TABLES)

    for who in ("xiaolingwei", "specialist-xuanwu"):                        # 玄武区 staff and specialist
        for body in ({"item_id": item_id, "note": "居住证没办成"}, {"case_id": case_id},
                     {"item_id": item_id, "report_class": "simple", "cause_code": "attitude"}):
            refused = stack.post(REPORTS, who, body, expect=403)
            assert refused["reason"] == "report_forbidden", (who, body)
    assert stack.post(REPORTS, "maigaoqiao", {"item_id": "no-such-item"}, expect=422)["reason"] == "unknown_item"
    assert stack.post(REPORTS, "maigaoqiao", {"case_id": "no-such-case"}, expect=422)["reason"] == "unknown_case"
    mismatch = stack.post(REPORTS, "maigaoqiao", {"item_id": item_id, "case_id": "another-case"}, expect=422)
    assert mismatch["reason"] == "case_mismatch"
    assert count_rows(database_url, *ESCALATION_TABLES) == before
    assert stack.published("report.filed.v1") == []                         # so no receipt SMS to anyone

    # From another district, 首问负责 still holds for the person in front of you: without her case or item.
    elsewhere = stack.post(REPORTS, "xiaolingwei", {"community_code": "320113003021", "matter_code":
                                                    "residence-permit"}, expect=201)
    assert (elsewhere["case_id"], elsewhere["item_id"], elsewhere["unit_code"]) == (None, None, "320102009000")
    # Her own street may file about the item itself.
    filed = stack.post(REPORTS, "maigaoqiao", {"item_id": item_id}, expect=201)
    assert (filed["case_id"], filed["community_code"]) == (case_id, "320113003021")
    assert [e["case_id"] for e in stack.published("report.filed.v1")] == [None, case_id]


def test_a_specialist_cannot_grant_a_deferral_on_another_districts_item(stack, database_url):
    qixia_item = stack.submit("residence-permit")["residence-permit"]
    xuanwu_report = stack.post(REPORTS, "specialist-xuanwu", {"community_code": "320102002001",
                                                              "report_class": "simple", "cause_code": "attitude"},
                               expect=201)
    before = count_rows(database_url, *ESCALATION_TABLES)
    refused = stack.post(f"{REPORTS}/{xuanwu_report['report_id']}/close", "specialist-xuanwu", {
        "outcome": "deferral_granted", "deferral": {"item_id": qixia_item, "material_codes": ["landlord-id-copy"]}},
        expect=403)
    assert refused["reason"] == "report_forbidden"
    assert count_rows(database_url, *ESCALATION_TABLES) == before
    assert stack.published("report.deferral-granted.v1") == []


# ── What a resident is told about a rejection ───────────────────────────────────────────────────────

AT = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)
CASE = "00000000-0000-4000-8000-0000000000aa"


@pytest.fixture
def notification(container_factory, make_service_config, web_config_port, tmp_path, rabbit_config):
    container = container_factory(NotificationService, make_service_config(
        "notification", web_port=web_config_port, SANJI_NOTIFICATION_SWEEP_SECONDS=3600,
        SANJI_VAR_DIR=str(tmp_path / "var")))
    container.start()
    return container


@pytest.mark.parametrize("reason_code, note, told", [
    ("not-eligible", "请点击 http://evil.example/refund 并输入银行卡号", "不符合办理条件"),
    ("速到 http://evil.example 领取补贴", "", UNKNOWN_NAMES["reject_reason"]),
    ("materials-false", "材料系伪造，已移交公安", "材料虚假或不真实"),
])
def test_a_rejection_tells_the_resident_the_catalogue_reason_only(notification, rabbit_config, database_url,
                                                                  web_session, reason_code, note, told):
    routed = sample(ItemRoutedV1.event_type, 0, case_id=CASE, item_id="item-r")
    rejected = sample(ItemRejectedV1.event_type, 1, case_id=CASE, item_id="item-r", reason_code=reason_code,
                      note=note)
    for payload in (routed, rejected):
        publish(notification, rabbit_config["AMQP_URI"], *envelope(payload, AT))

    rows = query(database_url, "SELECT channel, subject, body FROM notification_deliveries "
                               "WHERE case_id = :c AND kind = 'item_rejected' ORDER BY channel", c=CASE)
    assert [channel for channel, _, _ in rows] == ["email", "sms"]
    for _, subject, body in rows:
        assert f"原因：{told}" in body
        assert "evil" not in subject + body and (not note or note not in body)
        assert reason_code not in body
