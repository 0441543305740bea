"""The evaluation service over the real broker and database: its consumer (duplicates and poison), a rating
changed within the change window, 体验官 findings with photos, and refusals that write nothing."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import requests
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import find_free_port

from services.evaluation.service import EvaluationService
from shared.clock import FrozenClock, new_id
from shared.events import CaseCompletedV1, CloudEvent, ItemClaimedV1, ItemOutcome, ItemResolvedV1, ItemRoutedV1
from shared.nameko_ext import ClockProvider
from tests.support.bus import dead_letters, publish_raw
from tests.support.escalation_harness import query
from tests.support.routing_harness import STAFF, at

pytestmark = pytest.mark.integration

XINHE, STREET = "320113003021", "320113003000"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 12, 1, 9, 0))


@pytest.fixture
def service(container_factory, make_service_config, clock):
    frozen = clock

    class OnFrozenClock(EvaluationService):
        clock = ClockProvider(frozen)

    port = find_free_port()
    container = container_factory(OnFrozenClock, make_service_config(
        "evaluation", web_port=port, SANJI_EVALUATION_SWEEP_SECONDS=3600, SANJI_EVALUATION_ATTACHMENT_MAX_BYTES=1024))
    container.start()
    return container, f"http://127.0.0.1:{port}"


def _item(item_id: str, case_id: str, **fields) -> dict:
    return dict(item_id=item_id, case_id=case_id, case_number="SJ-1", matter_code="birth-registration-proof",
                department_code="health", level="community", unit_code=XINHE, district_code="320113000000",
                community_code=XINHE, **fields)


def deliver(container, amqp: str, payload, routing_key: str | None = None, event_id: str | None = None) -> str:
    event = CloudEvent.wrap(payload, source="/sanji/routing", time=payload.model_dump().get("occurred_at")
                            or payload.completed_at, event_id=event_id)
    results = []
    with entrypoint_waiter(container, "on_event", callback=lambda _c, result, _e: results.append(result) or True):
        publish_raw(amqp, event.model_dump_json(), routing_key or payload.routing_key())
    return results[0]


def completed_case(container, amqp: str, clock) -> tuple[str, str]:
    case_id, item_id = new_id(), new_id()
    start = clock.now() - timedelta(days=1)
    deliver(container, amqp, ItemRoutedV1(**_item(item_id, case_id), status="queued", occurred_at=start,
                                          legal_deadline=start + timedelta(days=20),
                                          promised_deadline=start + timedelta(days=10), deadline_provisional=False,
                                          catalogue_version="v"))
    deliver(container, amqp, ItemClaimedV1(**_item(item_id, case_id), status="claimed",
                                           occurred_at=start + timedelta(hours=1), actor="s"))
    deliver(container, amqp, ItemResolvedV1(**_item(item_id, case_id), status="resolved",
                                            occurred_at=start + timedelta(hours=2), actor="s", result="ok",
                                            delivery={"method": "pickup", "place": "窗口"}))
    deliver(container, amqp, CaseCompletedV1(case_id=case_id, case_number="SJ-1", community_code=XINHE,
                                             outcomes=(ItemOutcome(item_id=item_id,
                                                                   matter_code="birth-registration-proof",
                                                                   status="resolved"),),
                                             delivery=None, completed_at=start + timedelta(hours=2)))
    return case_id, item_id


def test_a_redelivered_event_changes_nothing_and_poison_is_dead_lettered(service, rabbit_config, database_url, clock):
    container, _ = service
    amqp = rabbit_config["AMQP_URI"]
    case_id, item_id = new_id(), new_id()
    routed = ItemRoutedV1(**_item(item_id, case_id), status="queued", occurred_at=clock.now(),
                          legal_deadline=clock.now() + timedelta(days=20),
                          promised_deadline=clock.now() + timedelta(days=10), deadline_provisional=False,
                          catalogue_version="v")
    assert deliver(container, amqp, routed, event_id="e-1") == "cn.sanji.item.routed.v1"
    assert deliver(container, amqp, routed, event_id="e-1") == "duplicate"
    assert query(database_url, "SELECT count(*) FROM evaluation_items")[0][0] == 1

    publish_raw(amqp, '{"hello": "world"}', "item.routed.320113000000.community.320113003021.health")
    assert len(dead_letters(amqp, expect=1)) == 1
    assert deliver(container, amqp, routed, event_id="e-2") == "cn.sanji.item.routed.v1"  # still flowing


def test_a_kiosk_rating_changed_within_a_day_replaces_and_reopens_nothing_twice(service, rabbit_config, database_url,
                                                                                 clock):
    container, base = service
    case_id, item_id = completed_case(container, rabbit_config["AMQP_URI"], clock)
    kiosk = {**STAFF["kiosk"], "Content-Type": "application/json"}
    url = f"{base}/v1/cases/{case_id}/ratings"

    first = requests.post(url, data=json.dumps({"item_id": item_id, "level": "不满意", "rater_phone": "13812345678"}),
                          headers=kiosk)
    assert first.status_code == 201, first.text
    clock.advance(hours=2)
    second = requests.post(url, data=json.dumps({"item_id": item_id, "level": "非常不满意"}), headers=kiosk)
    assert second.status_code == 200 and second.json()["replaces"] == first.json()["rating_id"]
    # One rectification for the item, whatever the change.
    assert second.json()["rectification_id"] == first.json()["rectification_id"]
    assert query(database_url, "SELECT count(*) FROM evaluation_ratings")[0][0] == 2
    assert query(database_url, "SELECT count(*) FROM evaluation_ratings WHERE superseded_by IS NULL")[0][0] == 1
    # The phone is kept only as a fingerprint.
    stored = query(database_url, "SELECT rater_fingerprint FROM evaluation_ratings")
    assert all(row[0] is None or "13812345678" not in row[0] for row in stored)

    refused = requests.post(url, data=json.dumps({"item_id": item_id, "level": "满意", "reason_codes": ["bogus"]}),
                            headers=kiosk)
    assert refused.status_code == 422 and refused.json()["reason"] == "unknown_reason"
    staff = requests.post(url, data=json.dumps({"item_id": item_id, "level": "满意"}),
                          headers={**STAFF["xinhe"], "Content-Type": "application/json"})
    assert staff.status_code == 403 and staff.json()["reason"] == "not_kiosk"
    assert query(database_url, "SELECT count(*) FROM evaluation_ratings")[0][0] == 2


def test_the_console_and_the_case_s_kiosk_get_a_rating_link_by_case_number(service, rabbit_config, database_url,
                                                                             clock):
    """The resident lookup and the kiosk know the receipt's case number, not the case id: the console service
    (after intake matched the number and the phone ending) and the kiosk of the case's community get a link by
    it; the link's page lists the coded reasons with their Chinese names."""
    container, base = service
    case_id, item_id = completed_case(container, rabbit_config["AMQP_URI"], clock)

    def issue(body, token):
        return requests.post(f"{base}/v1/rating-links", data=json.dumps(body),
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    by_console = issue({"case_number": "SJ-1"}, "dev-console-service")
    assert by_console.status_code == 201, by_console.text
    assert by_console.json()["case_id"] == case_id
    view = requests.get(f"{base}/v1/rating-links/{by_console.json()['token']}").json()
    assert [item["item_id"] for item in view["items"]] == [item_id]
    reasons = {reason["code"]: (reason["name"], reason["kind"]) for reason in view["reasons"]}
    assert reasons["quick"] == ("办理快捷", "praise") and reasons["attitude"] == ("服务态度差", "complaint")
    assert [reason["kind"] for reason in view["reasons"]] == sorted(
        (reason["kind"] for reason in view["reasons"]), key=lambda kind: kind != "praise")

    assert issue({"case_number": "SJ-1"}, "dev-kiosk-xinhe").json()["case_id"] == case_id
    other_kiosk = issue({"case_number": "SJ-1"}, "dev-kiosk-xuanwu")
    assert other_kiosk.status_code == 403 and other_kiosk.json()["reason"] == "community_forbidden"
    assert issue({"case_number": "SJ-404"}, "dev-console-service").json()["reason"] == "unknown_case"
    both = issue({"case_number": "SJ-1", "case_id": case_id}, "dev-console-service")
    assert both.status_code == 422 and both.json()["reason"] == "validation_failed"
    assert issue({}, "dev-console-service").status_code == 422
    # A department system is neither the case's line nor the console.
    assert issue({"case_number": "SJ-1"}, "dev-dept-qixia-police").json()["reason"] == "outside_jurisdiction"
    assert query(database_url, "SELECT count(*) FROM evaluation_ratings")[0][0] == 0


def test_an_evaluator_files_a_finding_with_photos_and_it_opens_a_rectification(service, rabbit_config, database_url,
                                                                               clock):
    container, base = service
    _, item_id = completed_case(container, rabbit_config["AMQP_URI"], clock)
    json_headers = {"Content-Type": "application/json"}

    street = requests.post(f"{base}/v1/evaluators", data=json.dumps({"display_name": "体验官甲", "category": "deputy"}),
                           headers={**STAFF["maigaoqiao"], **json_headers})
    assert street.status_code == 403 and street.json()["reason"] == "not_district_staff"
    registered = requests.post(f"{base}/v1/evaluators", headers={**STAFF["qixia"], **json_headers},
                               data=json.dumps({"display_name": "体验官甲", "category": "deputy"})).json()
    evaluator = {"Authorization": f"Evaluator {registered['token']}", **json_headers}

    finding = {"unit_code": XINHE, "item_id": item_id, "mode": "visit", "place": "馨合家园社区服务中心",
               "tried": "办理生育登记", "went_wrong": "窗口无人，等待四十分钟", "severity": "high"}
    assert requests.post(f"{base}/v1/findings", data=json.dumps(finding), headers=json_headers).status_code == 401
    filed = requests.post(f"{base}/v1/findings", data=json.dumps(finding), headers=evaluator)
    assert filed.status_code == 201, filed.text
    finding_id, rectification_id = filed.json()["finding_id"], filed.json()["rectification_id"]
    assert rectification_id
    outside = requests.post(f"{base}/v1/findings", data=json.dumps({**finding, "unit_code": "320102002001",
                                                                   "item_id": None}), headers=evaluator)
    assert outside.status_code == 403

    photo = {"content_type": "image/png", "data_base64": base64.b64encode(PNG).decode()}
    added = requests.post(f"{base}/v1/findings/{finding_id}/attachments", data=json.dumps(photo), headers=evaluator)
    assert added.status_code == 201 and len(added.json()["attachments"]) == 1
    too_big = {"content_type": "image/png", "data_base64": base64.b64encode(PNG + b"\x00" * 2000).decode()}
    refused = requests.post(f"{base}/v1/findings/{finding_id}/attachments", data=json.dumps(too_big),
                            headers=evaluator)
    assert refused.status_code == 413 and refused.json()["reason"] == "attachment_too_large"
    wrong = {"content_type": "image/jpeg", "data_base64": base64.b64encode(PNG).decode()}
    refused = requests.post(f"{base}/v1/findings/{finding_id}/attachments", data=json.dumps(wrong),
                            headers=evaluator)
    assert refused.status_code == 415 and refused.json()["reason"] == "attachment_type"
    assert query(database_url, "SELECT count(*) FROM evaluation_attachments")[0][0] == 1

    # The finding's rectification runs at the community, and never enters the satisfaction rate.
    rect = requests.get(f"{base}/v1/rectifications/{rectification_id}", headers=STAFF["xinhe"]).json()
    assert (rect["origin"], rect["unit_code"], rect["state"]) == ("finding", XINHE, "open")
    assert query(database_url, "SELECT count(*) FROM evaluation_items WHERE satisfaction IS NOT NULL")[0][0] == 0
    events = [json.loads(b) for (b,) in query(database_url, "SELECT body FROM outbox_messages WHERE event_type = "
                                                           "'cn.sanji.rectification.opened.v1'")]
    assert [e["data"]["origin"] for e in events] == ["finding"]
    assert "四十分钟" not in json.dumps(events, ensure_ascii=False)


def test_a_closing_with_a_coded_reason_is_published_in_both_versions_and_a_mismatched_code_is_refused(
        service, rabbit_config, database_url, clock):
    container, base = service
    case_id, item_id = completed_case(container, rabbit_config["AMQP_URI"], clock)
    kiosk = {**STAFF["kiosk"], "Content-Type": "application/json"}
    staff = {**STAFF["xinhe"], "Content-Type": "application/json"}
    rated = requests.post(f"{base}/v1/cases/{case_id}/ratings", headers=kiosk,
                          data=json.dumps({"item_id": item_id, "level": "非常不满意", "rater_phone": "13812345678"}))
    rectification_id = rated.json()["rectification_id"]
    url = f"{base}/v1/rectifications/{rectification_id}"
    assert requests.post(f"{url}/callback", data=json.dumps({"outcome": "reached_unsatisfied"}),
                         headers=staff).status_code == 200

    for body in ({"result": "cannot_rectify", "reason": "超出职权", "reason_code": "policy_explained"},
                 {"result": "rectified", "reason_code": "beyond_authority"}):
        refused = requests.post(f"{url}/close", data=json.dumps(body), headers=staff)
        assert refused.status_code == 422 and refused.json()["reason"] == "reason_code_mismatch", refused.text
    unknown = requests.post(f"{url}/close", headers=staff, data=json.dumps(
        {"result": "cannot_rectify", "reason": "x", "reason_code": "because"}))
    assert unknown.status_code == 422 and unknown.json()["reason"] == "validation_failed"
    assert query(database_url, "SELECT state FROM evaluation_rectifications")[0][0] == "open"

    closed = requests.post(f"{url}/close", headers=staff, data=json.dumps(
        {"result": "cannot_rectify", "reason": "该事项须由区公安分局审批，社区无权办理",
         "reason_code": "beyond_authority"}))
    assert closed.status_code == 200 and closed.json()["reason_code"] == "beyond_authority", closed.text
    v1 = [json.loads(b) for (b,) in query(database_url, "SELECT body FROM outbox_messages WHERE event_type = "
                                                       "'cn.sanji.rectification.closed.v1'")]
    v2 = [json.loads(b) for (b,) in query(database_url, "SELECT body FROM outbox_messages WHERE event_type = "
                                                       "'cn.sanji.rectification.closed.v2'")]
    assert len(v1) == len(v2) == 1 and "reason_code" not in v1[0]["data"]
    assert (v2[0]["data"]["result"], v2[0]["data"]["reason_code"], v2[0]["data"]["case_number"],
            v2[0]["data"]["case_id"], v2[0]["data"]["community_code"]) == ("cannot_rectify", "beyond_authority", "SJ-1",
                                                                  case_id, XINHE)
    assert "区公安分局" not in json.dumps(v2, ensure_ascii=False) and "13812345678" not in json.dumps(v2)


def test_a_supervision_order_and_its_answer_are_published_with_codes_and_ids_only(service, rabbit_config,
                                                                                  database_url, clock):
    container, base = service
    case_id, item_id = completed_case(container, rabbit_config["AMQP_URI"], clock)
    issued = requests.post(f"{base}/v1/supervision-orders", headers={**STAFF["maigaoqiao"],
                                                                     "Content-Type": "application/json"},
                           data=json.dumps({"subject_type": "item", "subject_id": item_id, "target_unit_code": XINHE,
                                            "what": "说明办理超时的原因", "due_in_working_days": 1}))
    assert issued.status_code == 201, issued.text
    order_id = issued.json()["order_id"]
    clock.advance(days=3)
    answered = requests.post(f"{base}/v1/supervision-orders/{order_id}/answer",
                             headers={**STAFF["xinhe"], "Content-Type": "application/json"},
                             data=json.dumps({"answer": "窗口人员请假，已补位"}))
    assert answered.status_code == 200 and answered.json()["state"] == "answered_late", answered.text

    rows = query(database_url, "SELECT event_type, routing_key, body FROM outbox_messages WHERE event_type LIKE "
                               "'cn.sanji.supervision-order.%' ORDER BY seq")
    assert [(event_type, key) for event_type, key, _ in rows] == [
        ("cn.sanji.supervision-order.issued.v1", f"supervision-order.issued.320113000000.community.{XINHE}.health"),
        ("cn.sanji.supervision-order.answered.v1",
         f"supervision-order.answered.320113000000.community.{XINHE}.health")]
    issued_event, answered_event = (json.loads(body)["data"] for _, _, body in rows)
    assert (issued_event["order_id"], issued_event["issuer_unit_code"], issued_event["unit_code"],
            issued_event["item_id"], issued_event["case_id"]) == (order_id, STREET, XINHE, item_id, case_id)
    assert answered_event["late"] is True
    text = json.dumps([json.loads(body) for _, _, body in rows], ensure_ascii=False)
    assert "超时的原因" not in text and "已补位" not in text
