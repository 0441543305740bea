"""The console's reach, pure: the enterprise applicant on the kiosk's form (统一社会信用代码 checked with GB 32100,
the legal representative or an authorised agent), and the 15-minute circle's centres and lists in Chinese."""

from __future__ import annotations

from datetime import date

import pytest

from services.console.kiosk import checklist
from services.console.kiosk.circle import circle_list, places_from, problem_message
from services.console.kiosk.printing import render_pdf
from services.console.kiosk.receipt import receipt_from_case
from services.intake.handlers import catalogue_summary
from shared.catalogue import load_catalogue
from shared.config import REPO_ROOT
from shared.identity import make_valid_id_number
from shared.service_points import load_service_points
from tests.support.pdf import pdf_text

NANJING = REPO_ROOT / "catalogue" / "nanjing"
RULES = load_catalogue(NANJING)
CATALOGUE = catalogue_summary(RULES).model_dump(mode="json")
TODAY = date(2026, 11, 30)
USCC = "91350100M000100Y43"          # the example of GB 32100-2015
BAD_USCC = "91350100M000100Y44"
REPRESENTATIVE_ID = make_valid_id_number("32010219800512003")


def startup():
    return checklist.application_for(CATALOGUE, bundle="enterprise-startup")


def answers(application, *, deferred=(), **fields):
    form = {m.field: ("deferred" if m.code in deferred else "provided") for m in application.materials}
    form.update({"organisation_name": "南京玄武某某科技有限公司", "uscc": USCC, "role": "legal_representative",
                 "name": "徐明", "id_number": REPRESENTATIVE_ID, "phone": "13951234567"})
    if deferred:
        form["commitment"] = "accepted"
    form.update(fields)
    return form


def read(form, application=None):
    application = application or startup()
    return checklist.read_form(form, application, community_code="320102002001", today=TODAY)


# ── the enterprise applicant ──────────────────────────────────────────────────────────────────────────────

def test_an_enterprise_bundle_is_for_enterprises_and_a_residents_is_not():
    assert startup().for_enterprise and startup().name == "企业开办一件事"
    assert [code for code, _ in startup().matters] == [
        "enterprise-establishment", "company-seal-engraving", "new-taxpayer-registration",
        "employer-social-insurance-registration"]
    assert not checklist.application_for(CATALOGUE, bundle="migrant-bundle").for_enterprise
    assert checklist.application_for(CATALOGUE, matter="enterprise-deregistration").for_enterprise


def test_the_legal_representative_submits_for_the_enterprise():
    result = read(answers(startup(), deferred={"premises-proof"}, uscc=" 91350100m000100y43 "))
    assert result.errors == {}
    assert result.body["bundle"] == "enterprise-startup"
    assert result.body["applicant"] == {
        "kind": "enterprise", "organisation_name": "南京玄武某某科技有限公司", "uscc": USCC,
        "representative": {"role": "legal_representative", "name": "徐明", "id_number": REPRESENTATIVE_ID,
                           "phone": "13951234567"}}
    assert result.body["materials"]["deferred"] == ["premises-proof"]
    assert result.body["description"] == "企业开办一件事"


def test_an_agent_needs_the_letter_of_authorisation_and_the_case_says_it_was_seen():
    refused = read(answers(startup(), role="agent"))
    assert refused.body is None
    assert "授权委托书" in refused.errors["authorisation"]
    accepted = read(answers(startup(), role="agent", authorisation="provided"))
    assert accepted.errors == {}
    assert accepted.body["applicant"]["representative"]["role"] == "agent"
    assert accepted.body["description"] == "企业开办一件事（委托代理人办理，已提交授权委托书）"


@pytest.mark.parametrize("uscc, message", [
    (BAD_USCC, "统一社会信用代码校验失败（GB 32100 校验位不符），请核对后重新输入。"),
    ("91350100M00010", "统一社会信用代码应为18位，请对照营业执照（或名称自主申报告知书）核对。"),
    ("91350100M000100I43", "统一社会信用代码只含数字和大写字母（不用 I、O、Z、S、V），第3至8位为数字，请核对。"),
    ("", "请输入18位统一社会信用代码。"),
])
def test_a_wrong_uscc_gets_its_message_and_nothing_is_sent(uscc, message):
    result = read(answers(startup(), uscc=uscc))
    assert result.body is None
    assert result.errors == {"uscc": message}


def check_character(first17: str) -> str:
    """GB 32100-2015, computed here: 31 - (Σ value·weight mod 31), 31 written as 0."""
    charset = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = [pow(3, i, 31) for i in range(17)]   # 1, 3, 9, 27, 19, 26, 16, … (3^i mod 31)
    total = sum(charset.index(c) * w for c, w in zip(first17, weights, strict=True))
    return charset[(31 - total % 31) % 31]


def test_the_uscc_check_is_gb_32100():
    assert check_character(USCC[:17]) == USCC[17]   # the standard's own example
    assert checklist.uscc_problem(USCC) is None
    first17 = "91320102MA1XYW123"
    assert checklist.uscc_problem(first17 + check_character(first17)) is None
    others = [c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY" if c != check_character(first17)]
    assert all(checklist.uscc_problem(first17 + c) == checklist.USCC_MESSAGES["bad_checksum"] for c in others)


def test_organisation_name_and_role_are_required():
    result = read(answers(startup(), organisation_name=" ", role="owner"))
    assert set(result.errors) == {"organisation_name", "role"}


def test_intakes_enterprise_refusals_become_messages_next_to_the_field():
    assert checklist.errors_from_problem({"reason": "invalid_uscc", "problem": "bad_checksum"}, startup()) == {
        "uscc": checklist.USCC_MESSAGES["bad_checksum"]}
    assert "id_number" in checklist.errors_from_problem(
        {"reason": "validation_failed", "errors": [{"field": "applicant.representative.id_number"}]}, startup())
    assert "_form" in checklist.errors_from_problem({"reason": "applicant_kind_mismatch"}, startup())


def test_the_enterprise_receipt_names_the_enterprise_and_the_person_acting_masked():
    case = {"case_id": "0a1b2c3d-0000-4000-8000-000000000002", "case_number": "SJ20261130-0A1B2C3D0001",
            "applicant_name": "徐*", "submitted_at": "2026-11-30T01:00:00+00:00", "applicant_kind": "enterprise",
            "organisation_name": "南京玄武某某科技有限公司", "uscc": USCC, "representative_role": "agent",
            "items": [{"matter_code": "enterprise-establishment", "matter_name": "企业设立登记（营业执照）",
                       "status": "queued", "level": "district", "unit_code": "320102000000",
                       "unit_name": "玄武区", "promised_deadline": "2026-12-03T09:00:00+00:00"}],
            "deferred_materials": []}
    receipt = receipt_from_case(case, startup(), community_name="梅园新村社区", lookup_url="http://console.test/lookup")
    assert receipt.applicant_line == f"南京玄武某某科技有限公司（统一社会信用代码 {USCC}）　委托代理人：徐*"
    shown = pdf_text(render_pdf(receipt, "receipt", "a4"))
    assert "南京玄武某某科技有限公司" in shown and USCC in shown and "徐明" not in shown


# ── the circle ────────────────────────────────────────────────────────────────────────────────────────────

def test_a_communitys_circle_is_centred_on_its_centre_and_a_terminal_on_its_point():
    places = places_from(load_service_points(NANJING / "service-points.yaml", RULES), RULES)
    xinhe = places.for_device("320113003021", None)
    assert (xinhe.lat, xinhe.lon, xinhe.label) == (32.1121, 118.8046, "馨合家园社区党群服务中心")
    suguo = places.for_device("320113003021", "sp-qx-xinhe-suguo")
    assert (suguo.lat, suguo.lon) == (32.1087, 118.8021)
    assert places.for_device("320113003021", "sp-no-such-point") == xinhe
    assert places.for_device("999999999999", None) is None
    assert "vocational-training-signup" in places.accepted
    assert "enterprise-establishment" not in places.accepted
    assert any(c.code == "320113003021" and c.full_name.endswith("迈皋桥街道 馨合家园社区")
               for c in places.communities)


ANSWER = {"matter_code": "residence-permit", "matter_name": "居住证办理",
          "circle": {"max_walking_minutes": 15, "radius_m": 1125},
          "points": [{"point_id": "sp-qx-xinhe-centre", "kind": "community-centre", "name": "馨合家园社区党群服务中心",
                      "address": "华电路1号", "walking_minutes": 1, "distance_m": 0, "how": "handover",
                      "today": {"day_kind": "workday", "hours": ["08:30-12:00", "13:30-17:30"]},
                      "open_until": "12:00",
                      "materials": [{"name": "居民身份证", "deferrable": False},
                                    {"name": "房东身份证复印件", "deferrable": True}]}]}


def test_the_list_in_chinese_and_why_it_is_empty():
    listed = circle_list(ANSWER)
    row = listed.rows[0]
    assert (row.kind_name, row.how_name, row.day_kind_name) == ("社区党群服务中心", "代收转办", "工作日")
    assert row.hours_today == "08:30-12:00、13:30-17:30" and row.materials[1] == ("房东身份证复印件", True)
    assert listed.empty_message is None
    closed = circle_list({**ANSWER, "points": []})
    assert closed.empty_message.startswith("现在步行15分钟范围内没有开放、可办理“居住证办理”的服务点")
    nowhere = circle_list({**ANSWER, "points": []}, accepted_anywhere=False)
    assert nowhere.empty_message.startswith("附近的便民服务点不受理“居住证办理”")


@pytest.mark.parametrize("reason, field", [("invalid_coordinates", "coordinates"), ("unknown_matter", "matter"),
                                           ("unknown_service_point", "point"), ("invalid_query", "matter"),
                                           ("something_else", "_form")])
def test_intakes_reasons_become_messages_next_to_the_field(reason, field):
    assert problem_message({"reason": reason})[0] == field
