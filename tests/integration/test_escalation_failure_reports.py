"""The 办不成事 window over HTTP: a report through each class (simple, complex, special), owned by the first person
asked, worked by a specialist who records each contact, closed with an outcome, checked by a return visit and
reopened when the person disagrees; 容缺 granted as an outcome and followed up; jurisdiction enforced."""

from __future__ import annotations

import pytest

from shared.clock import FrozenClock
from tests.support.escalation_harness import start_stack
from tests.support.routing_harness import at

pytestmark = pytest.mark.integration

XINHE = "320113003021"
REPORTS = "/v1/failure-reports"


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))  # a Monday


@pytest.fixture
def stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config, database_url, clock):
    return start_stack(container_factory, make_service_config, web_config_port, web_session, rabbit_config,
                       database_url, clock)


def file(stack, who="maigaoqiao", **body):
    return stack.post(REPORTS, who, body, expect=201)


def act(stack, report, action, who, body=None, expect=200):
    return stack.post(f"{REPORTS}/{report['report_id']}/{action}", who, body, expect=expect)


def test_a_simple_report_is_solved_on_the_spot_by_the_first_person_asked(stack):
    filed = file(stack, "xinhe", community_code=XINHE, report_class="simple", cause_code="unclear-guidance",
                 note="不清楚要带哪些材料，跑了两趟")
    assert (filed["status"], filed["owner"], filed["report_class"], filed["unit_code"]) == (
        "open", "staff-xinhe-community", "simple", XINHE)
    assert filed["report_number"].startswith("BCS20261130-")
    assert (filed["opinion_due_at"], filed["time_limit_at"]) == (None, None)   # solved on the spot: owes nothing

    closed = act(stack, filed, "close", "xinhe", {"outcome": "solved", "note": "当场一次性告知全部材料并预约"})
    confirmed = act(stack, closed, "return-visit", "xinhe", {"agrees_solved": True, "note": "回访满意"})

    assert (closed["status"], confirmed["status"]) == ("closed", "confirmed")
    assert [entry["action"] for entry in confirmed["history"]] == ["file", "classify", "close", "return-visit"]
    assert [e["report_id"] for e in stack.published("report.filed.v1")] == [filed["report_id"]]
    assert [e["outcome"] for e in stack.published("report.closed.v1")] == ["solved"]
    assert [e["agrees_solved"] for e in stack.published("report.return-visited.v1")] == [True]


def test_a_complex_report_waits_for_the_department_opinion_and_reopens_after_a_failed_return_visit(stack, clock):
    item_id = stack.submit("residence-permit")["residence-permit"]
    filed = file(stack, item_id=item_id, note="居住证跑了三次没办成")
    assert (filed["matter_code"], filed["department_code"], filed["level"], filed["community_code"]) == (
        "residence-permit", "police", "street", XINHE)

    classified = act(stack, filed, "classify", "maigaoqiao", {"report_class": "complex", "cause_code": "buck-passing"})
    assert classified["opinion_due_at"].startswith("2026-12-07T09:30")  # 5 working days, 17:30 Shanghai
    assigned = act(stack, filed, "assign", "specialist-maigaoqiao")
    assert (assigned["status"], assigned["specialist"]) == ("assigned", "specialist-maigaoqiao")

    refused = act(stack, filed, "contacts", "maigaoqiao", {"department_code": "police", "channel": "phone",
                                                           "note": "询问进度"}, expect=409)
    assert refused["reason"] == "not_report_specialist"
    clock._at = at(2026, 12, 1, 10, 0)
    act(stack, filed, "contacts", "specialist-maigaoqiao", {"department_code": "police", "channel": "phone",
                                                            "unit_code": "320113003000", "note": "与派出所户籍室沟通"})
    early = act(stack, filed, "close", "specialist-maigaoqiao", {"outcome": "explained"}, expect=409)
    assert early["reason"] == "opinion_missing"
    act(stack, filed, "contacts", "specialist-maigaoqiao", {"department_code": "police", "channel": "document",
                                                            "kind": "opinion", "note": "分局书面意见：材料齐全可办"})
    act(stack, filed, "close", "specialist-maigaoqiao", {"outcome": "explained", "note": "已向本人解释政策"})

    clock._at = at(2026, 12, 3, 10, 0)
    reopened = act(stack, filed, "return-visit", "maigaoqiao", {"agrees_solved": False, "note": "本人仍不认可"})
    assert (reopened["status"], reopened["reopen_count"], reopened["outcome"]) == ("assigned", 1, None)
    assert reopened["opinion_due_at"].startswith("2026-12-10T09:30")    # the department owes a new opinion
    assert [(e["reason"], e["reopen_count"]) for e in stack.published("report.reopened.v1")] == [
        ("return_visit_disagreed", 1)]

    clock._at = at(2026, 12, 8, 9, 0)                                   # the first opinion limit is past: settled
    assert stack.sweep()["acted"] == {}
    act(stack, filed, "contacts", "specialist-maigaoqiao", {"department_code": "police", "channel": "meeting",
                                                            "kind": "opinion", "note": "协调会：当日办结"})
    act(stack, filed, "close", "specialist-maigaoqiao", {"outcome": "solved"})
    done = act(stack, filed, "return-visit", "maigaoqiao", {"agrees_solved": True})

    assert done["status"] == "confirmed" and done["overdue"] is False
    assert [entry["action"] for entry in done["history"]] == [
        "file", "classify", "assign", "contact", "contact", "close", "return-visit", "reopen", "contact", "close",
        "return-visit"]
    contacts = stack.published("report.contact-recorded.v1")
    assert [(c["department_code"], c["contact_kind"]) for c in contacts] == [
        ("police", "contact"), ("police", "opinion"), ("police", "opinion")]


def test_a_complex_report_without_an_opinion_in_five_working_days_is_overdue(stack, clock):
    filed = file(stack, community_code=XINHE, matter_code="residence-permit", department_code="police",
                 report_class="complex", cause_code="missing-material")
    clock._at = at(2026, 12, 7, 17, 29)
    assert stack.sweep()["acted"] == {}
    clock._at = at(2026, 12, 7, 17, 31)
    assert stack.sweep()["acted"] == {"report_opinion": 1}
    (overdue,) = stack.published("report.overdue.v1")
    assert (overdue["limit"], overdue["supervising_unit_code"]) == ("opinion", "320113000000")
    assert stack.get(f"{REPORTS}/{filed['report_id']}", "maigaoqiao")["overdue"] is True


def test_a_special_report_keeps_the_time_limit_told_to_the_person(stack, clock):
    refused = stack.post(REPORTS, "maigaoqiao", {"community_code": XINHE, "report_class": "special",
                                                 "cause_code": "policy-gap"}, expect=422)
    assert refused["reason"] == "time_limit_missing"
    filed = file(stack, community_code=XINHE, report_class="special", cause_code="policy-gap", time_limit_days=10)
    assert filed["time_limit_at"].startswith("2026-12-14T09:30")
    act(stack, filed, "assign", "maigaoqiao", {"specialist": "specialist-qixia"})

    clock._at = at(2026, 12, 14, 17, 31)
    assert stack.sweep()["acted"] == {"report_time_limit": 1}
    assert [e["limit"] for e in stack.published("report.overdue.v1")] == ["time_limit"]
    act(stack, filed, "contacts", "specialist-qixia", {"department_code": "hrss", "channel": "meeting",
                                                       "note": "区人社局研究后明确口径"})
    act(stack, filed, "close", "specialist-qixia", {"outcome": "solved"})
    assert act(stack, filed, "return-visit", "maigaoqiao", {"agrees_solved": True})["status"] == "confirmed"


def test_a_deferral_granted_as_the_outcome_is_followed_up_until_the_material_comes(stack, clock):
    item_id = stack.submit("residence-permit")["residence-permit"]
    filed = file(stack, item_id=item_id, report_class="complex", cause_code="missing-material")
    act(stack, filed, "assign", "specialist-maigaoqiao")
    act(stack, filed, "contacts", "specialist-maigaoqiao", {"department_code": "police", "channel": "phone",
                                                            "kind": "opinion", "note": "同意容缺受理"})
    mismatch = act(stack, filed, "close", "specialist-maigaoqiao", {"outcome": "deferral_granted"}, expect=422)
    assert mismatch["reason"] == "deferral_mismatch"
    closed = act(stack, filed, "close", "specialist-maigaoqiao", {
        "outcome": "deferral_granted", "deferral": {"item_id": item_id, "material_codes": ["landlord-id-copy"],
                                                    "due_in_working_days": 2}})
    assert closed["deferrals"] == [{"grant_id": closed["deferrals"][0]["grant_id"], "item_id": item_id,
                                    "matter_code": "residence-permit", "material_codes": ["landlord-id-copy"],
                                    "due_date": "2026-12-02", "state": "pending"}]
    (granted,) = stack.published("report.deferral-granted.v1")
    assert (granted["item_id"], granted["department_code"], granted["material_codes"]) == (
        item_id, "police", ["landlord-id-copy"])

    clock._at = at(2026, 12, 1, 9, 1)                                    # a working day before it is due
    assert stack.sweep()["acted"] == {"deferral_reminder": 1}
    reminders = stack.published("case.deferral-reminder.v1", source="/sanji/escalation")
    assert [(r["material_code"], r["due_date"]) for r in reminders] == [("landlord-id-copy", "2026-12-02")]

    stack.act(item_id, "claim", "maigaoqiao")
    stack.act(item_id, "accept", "maigaoqiao")
    stack.act(item_id, "request-supplement", "maigaoqiao", {"materials": ["landlord-id-copy"]})
    stack.routing.act(item_id, "record-supplement", "maigaoqiao", {"materials": ["landlord-id-copy"]})
    from tests.support.escalation_harness import wait_until

    wait_until(lambda: stack.get(f"{REPORTS}/{filed['report_id']}", "maigaoqiao")["deferrals"][0]["state"]
               == "supplied", what="material recorded as supplied")
    clock._at = at(2026, 12, 3, 9, 0)
    assert stack.sweep()["acted"] == {}                                  # nothing to follow up
    assert stack.get(f"{REPORTS}/{filed['report_id']}", "maigaoqiao")["status"] == "closed"


def test_a_deferral_whose_material_never_comes_reopens_the_report(stack, clock):
    item_id = stack.submit("residence-permit")["residence-permit"]
    filed = file(stack, item_id=item_id, report_class="simple", cause_code="missing-material")
    act(stack, filed, "assign", "specialist-maigaoqiao")
    act(stack, filed, "close", "specialist-maigaoqiao", {
        "outcome": "deferral_granted", "deferral": {"item_id": item_id, "material_codes": ["landlord-id-copy"]}})
    act(stack, filed, "return-visit", "maigaoqiao", {"agrees_solved": True})

    clock._at = at(2026, 12, 8, 9, 0)                                    # 5 working days: due Mon 12-07
    assert stack.sweep()["acted"] == {"deferral_reminder": 1, "deferral_due": 1}
    report = stack.get(f"{REPORTS}/{filed['report_id']}", "maigaoqiao")
    assert (report["status"], report["reopen_count"], report["deferrals"][0]["state"]) == ("assigned", 1, "overdue")
    assert [e["reason"] for e in stack.published("report.reopened.v1")] == ["deferral_material_overdue"]


def test_staff_and_specialists_see_only_their_own_jurisdiction(stack):
    filed = file(stack, community_code=XINHE, report_class="simple", cause_code="attitude")
    path = f"{REPORTS}/{filed['report_id']}"

    assert stack.get(path, "specialist-qixia")["report_id"] == filed["report_id"]   # the district sees its street
    assert stack.get(path, "specialist-xuanwu", expect=403)["reason"] == "report_forbidden"
    assert stack.get(path, "xiaolingwei", expect=403)["reason"] == "report_forbidden"
    assert stack.get(path, "housing-qixia", expect=403)["reason"] == "report_forbidden"   # departments: no
    assert stack.get(path, "kiosk", expect=403)["reason"] == "report_forbidden"
    assert act(stack, filed, "assign", "specialist-xuanwu", expect=403)["reason"] == "report_forbidden"
    assert stack.get(REPORTS, "specialist-xuanwu")["total"] == 0
    assert stack.get(REPORTS, "specialist-qixia")["total"] == 1
    assert stack.get("/v1/failure-reports/no-such-report", "maigaoqiao", expect=404)["reason"] == "report_not_found"
    item_view = stack.post(REPORTS, "specialist-xuanwu", {"community_code": XINHE}, expect=201)
    assert item_view["unit_code"] == "320102000000"                   # filed where it was asked, in 玄武区


def test_personal_data_and_unknown_codes_are_refused(stack):
    phone = stack.post(REPORTS, "maigaoqiao", {"note": "请回电 13912345678"}, expect=422)
    assert phone["reason"] == "personal_data_in_text"
    cause = stack.post(REPORTS, "maigaoqiao", {"report_class": "simple", "cause_code": "no-such-cause"}, expect=422)
    assert cause["reason"] == "unknown_cause"
    causes = stack.get("/v1/failure-causes", "maigaoqiao")["causes"]
    assert {"policy-gap", "missing-material", "system-problem", "attitude", "out-of-scope"} <= {
        c["code"] for c in causes}
    assert stack.published("report.filed.v1") == []
