"""The kiosk's rules on the page, with fakes only: the checklist and its 容缺 reasons, reading the form, the ID
number check, intake's refusals as messages next to the field, the throttle, the signed receipt cookie, and the
printed PDFs."""

from __future__ import annotations

import re
from datetime import date

import pytest

from services.console.kiosk import checklist
from services.console.kiosk.guard import SlidingWindowLimiter
from services.console.kiosk.printing import render_pdf
from services.console.kiosk.receipt import receipt_from_case
from services.console.kiosk.signing import Signer, derive_key
from services.intake.handlers import catalogue_summary
from shared.catalogue import load_catalogue
from shared.config import REPO_ROOT
from shared.identity import make_valid_id_number
from tests.support.pdf import pdf_text

CATALOGUE = catalogue_summary(load_catalogue(REPO_ROOT / "catalogue" / "nanjing")).model_dump(mode="json")
VALID_ID = make_valid_id_number("32011319900307123")
TODAY = date(2026, 11, 30)


def migrant():
    return checklist.application_for(CATALOGUE, bundle="migrant-bundle")


def answers(application, *, deferred=(), **fields):
    form = {m.field: ("deferred" if m.code in deferred else "provided") for m in application.materials}
    form.update({"name": "刘金花", "id_number": VALID_ID, "phone": "13912345678"})
    if deferred:
        form["commitment"] = "accepted"
    form.update(fields)
    return form


# ── the checklist ─────────────────────────────────────────────────────────────────────────────────────────

def test_a_bundle_has_one_set_of_materials_with_the_deferrable_ones_marked():
    application = migrant()
    assert application.kind == "bundle" and application.name == "流动人口一件事"
    assert [code for code, _ in application.matters] == [
        "residence-permit", "birth-registration-proof", "vocational-training-signup", "employment-registration"]
    by_code = {m.code: m for m in application.materials}
    assert by_code["landlord-id-copy"].deferrable
    assert not by_code["id-card"].deferrable
    assert len(by_code) == len(application.materials)  # each material once, however many matters ask for it


def test_the_page_says_why_a_material_cannot_be_deferred():
    by_code = {m.code: m for m in migrant().materials}
    assert by_code["id-card"].why_not_deferrable == "这是主要材料，须当场提供，不能容缺。"
    # the rental contract may come later for the birth proof, but is a main material of the residence permit
    assert by_code["rental-contract"].why_not_deferrable == "「居住证办理」把它列为主要材料，须当场提供，不能容缺。"
    assert by_code["landlord-id-copy"].why_not_deferrable is None


def test_a_single_matter_and_unknown_choices():
    application = checklist.application_for(CATALOGUE, matter="residence-permit")
    assert application.kind == "matter" and application.matters == (("residence-permit", "居住证办理"),)
    with pytest.raises(checklist.UnknownChoice):
        checklist.application_for(CATALOGUE, bundle="no-such-bundle")
    with pytest.raises(checklist.UnknownChoice):
        checklist.application_for(CATALOGUE, matter="no-such-matter")


# ── the form ──────────────────────────────────────────────────────────────────────────────────────────────

def test_a_complete_form_becomes_intakes_submission():
    application = migrant()
    result = checklist.read_form(answers(application, deferred={"landlord-id-copy"}), application,
                                 community_code="320113003021", today=TODAY)
    assert result.errors == {}
    assert result.body["bundle"] == "migrant-bundle"
    assert result.body["community_code"] == "320113003021"
    assert result.body["materials"]["deferred"] == ["landlord-id-copy"]
    assert "landlord-id-copy" not in result.body["materials"]["provided"]
    assert result.body["applicant"] == {"name": "刘金花", "id_number": VALID_ID, "phone": "13912345678"}
    assert result.body["channel"] == {"kind": "kiosk"}


def test_a_main_material_cannot_be_deferred_even_if_the_form_says_so():
    application = migrant()
    result = checklist.read_form(answers(application, deferred={"id-card"}), application,
                                 community_code="320113003021", today=TODAY)
    assert result.body is None
    assert result.errors["material-id-card"].startswith("居民身份证不能容缺")


def test_every_material_needs_an_answer_and_a_deferral_needs_the_commitment():
    application = migrant()
    form = answers(application, deferred={"landlord-id-copy"})
    del form["material-photo"]
    form["commitment"] = ""
    result = checklist.read_form(form, application, community_code="320113003021", today=TODAY)
    assert set(result.errors) == {"material-photo", "commitment"}
    assert "近期免冠照片" in result.errors["material-photo"]
    assert "承诺书" in result.errors["commitment"]


@pytest.mark.parametrize(("value", "message"), [
    ("", "请输入身份证号码。"),
    ("1101051949", checklist.ID_NUMBER_MESSAGES["wrong_length"]),
    ("11010519491231002Y", checklist.ID_NUMBER_MESSAGES["bad_characters"]),
    ("110105194913310021", checklist.ID_NUMBER_MESSAGES["bad_birth_date"]),
    (VALID_ID[:-1] + ("0" if VALID_ID[-1] != "0" else "1"), checklist.ID_NUMBER_MESSAGES["bad_checksum"]),
])
def test_a_wrong_id_number_gets_its_message_and_is_not_shown_again(value, message):
    application = migrant()
    result = checklist.read_form(answers(application, id_number=value), application,
                                 community_code="320113003021", today=TODAY)
    assert result.errors == {"id_number": message}
    assert "id_number" not in result.values


def test_the_id_number_check_follows_gb_11643():
    assert checklist.id_number_problem("11010519491231002X", today=TODAY) is None
    assert checklist.id_number_problem("11010519491231002x", today=TODAY) is None
    assert checklist.id_number_problem("110105194912310021", today=TODAY) == checklist.ID_NUMBER_MESSAGES[
        "bad_checksum"]


@pytest.mark.parametrize(("name", "phone", "fields"), [
    ("", "13912345678", {"name"}),
    ("刘" * 51, "13912345678", {"name"}),
    ("刘金花", "1391234567", {"phone"}),
    ("刘金花", "", {"phone"}),
])
def test_name_and_phone_are_checked(name, phone, fields):
    application = migrant()
    result = checklist.read_form(answers(application, name=name, phone=phone), application,
                                 community_code="320113003021", today=TODAY)
    assert set(result.errors) == fields
    assert result.body is None


def test_a_landline_is_a_phone_too():
    application = migrant()
    result = checklist.read_form(answers(application, phone="025-12345678"), application,
                                 community_code="320113003021", today=TODAY)
    assert result.errors == {}


@pytest.mark.parametrize(("problem", "field"), [
    ({"reason": "invalid_id_number", "problem": "bad_checksum"}, "id_number"),
    ({"reason": "material_not_deferrable", "material": "photo"}, "material-photo"),
    ({"reason": "missing_material", "material": "photo"}, "material-photo"),
    ({"reason": "deferral_refused_bad_credit"}, "commitment"),
    ({"reason": "validation_failed", "errors": [{"field": "applicant.phone"}]}, "phone"),
    ({"reason": "community_forbidden"}, "_form"),
    ({"reason": "something_new"}, "_form"),
])
def test_intakes_refusals_become_messages_next_to_the_field(problem, field):
    errors = checklist.errors_from_problem(problem, migrant())
    assert list(errors) == [field]
    assert re.search(r"[\u4e00-\u9fff]", errors[field])  # in Chinese


def test_submission_keys_are_fresh():
    assert checklist.new_submission_key() != checklist.new_submission_key()
    assert re.fullmatch(r"kiosk-[0-9a-f]{32}", checklist.new_submission_key())


# ── throttle and signed values ────────────────────────────────────────────────────────────────────────────

def test_the_throttle_allows_so_many_per_window_per_key():
    now = [0.0]
    limiter = SlidingWindowLimiter(3, 60, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")
    assert 0 < limiter.retry_after("a") <= 61
    now[0] = 60.0
    assert limiter.allow("a")
    assert limiter.retry_after("b") == 0


def test_the_throttle_forgets_the_oldest_keys_beyond_its_size():
    limiter = SlidingWindowLimiter(1, 60, clock=lambda: 0.0, max_keys=2)
    for key in ("a", "b", "c"):
        assert limiter.allow(key)
    assert limiter.allow("a")  # forgotten, so allowed again
    assert not limiter.allow("c")


def test_a_signed_receipt_cookie_holds_for_its_age_and_cannot_be_forged():
    signer = Signer(derive_key("secret", "receipt"))
    signed = signer.sign("case-1:bundle:migrant-bundle", now=1000)
    assert signer.unsign(signed, now=1100, max_age_seconds=900) == "case-1:bundle:migrant-bundle"
    assert signer.unsign(signed, now=2000, max_age_seconds=900) is None
    assert signer.unsign(signed.replace("case-1", "case-2"), now=1100, max_age_seconds=900) is None
    assert Signer(derive_key("other", "receipt")).unsign(signed, now=1100, max_age_seconds=900) is None
    assert signer.unsign(None, now=0, max_age_seconds=1) is None
    assert signer.unsign("garbage", now=0, max_age_seconds=1) is None


# ── the receipt and its PDFs ──────────────────────────────────────────────────────────────────────────────

CASE = {
    "case_id": "0a1b2c3d-0000-4000-8000-000000000001", "case_number": "SJ20261130-0A1B2C3D0000",
    "applicant_name": "刘**", "submitted_at": "2026-11-30T01:00:00+00:00",
    "items": [
        {"matter_code": "residence-permit", "matter_name": "居住证办理", "status": "queued", "level": "street",
         "unit_code": "320113003000", "unit_name": "迈皋桥街道", "department_name": "公安",
         "promised_deadline": "2026-12-14T09:00:00+00:00", "deadline_provisional": False},
        {"matter_code": "birth-registration-proof", "matter_name": "生育登记（生育证明）", "status": "submitted"},
    ],
    "deferred_materials": [{"material_code": "landlord-id-copy", "material_name": "房东身份证复印件",
                            "matter_codes": ["residence-permit"], "due_date": "2026-12-07",
                            "due_date_provisional": False,
                            "consequence": "逾期未补齐的，相关事项将终止办理，需重新申请。"}],
}


def receipt():
    return receipt_from_case(CASE, migrant(), community_name="馨合家园社区",
                             lookup_url="http://console.test/lookup?case=SJ20261130-0A1B2C3D0000")


def test_the_receipt_names_each_items_unit_level_and_deadline_and_the_deferral_notice():
    r = receipt()
    first, second = r.items
    assert (first.unit_name, first.level_name, first.promised_deadline) == ("迈皋桥街道", "街道", "2026年12月14日")
    assert (second.unit_name, second.promised_deadline, second.routed) == ("分派中", "分派后确定", False)
    assert not r.routed
    assert r.deferred[0].material_name == "房东身份证复印件"
    assert r.deferred[0].due_date == "2026年12月7日"
    assert r.deferred[0].matter_names == ("居住证办理",)
    assert "房东身份证复印件" not in r.provided and "居民身份证" in r.provided
    assert r.commitment == checklist.COMMITMENT_TEXT
    assert r.submitted_at == "2026年11月30日 09:00"  # Shanghai time


@pytest.mark.parametrize("document", ["receipt", "notice"])
@pytest.mark.parametrize("paper", ["a4", "80mm"])
def test_each_pdf_is_a_valid_pdf_with_the_case_number(document, paper):
    pdf = render_pdf(receipt(), document, paper)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = pdf_text(pdf)
    assert "SJ20261130-0A1B2C3D0000" in text
    assert ("受理回执" if document == "receipt" else "一次性告知书") in text
    assert "房东身份证复印件" in text
    assert "/STSong-Light" in pdf.decode("latin-1")


def test_the_receipt_paper_is_80_mm_wide_and_as_long_as_its_content():
    match = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", render_pdf(receipt(), "receipt", "80mm"))
    width, height = float(match.group(1)), float(match.group(2))
    assert abs(width - 80 / 25.4 * 72) < 0.5
    assert 200 < height < 1400
    a4 = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", render_pdf(receipt(), "notice", "a4"))
    assert (round(float(a4.group(1))), round(float(a4.group(2)))) == (595, 842)


def test_an_unknown_document_or_paper_is_refused():
    with pytest.raises(ValueError):
        render_pdf(receipt(), "invoice", "a4")
    with pytest.raises(ValueError):
        render_pdf(receipt(), "receipt", "letter")
