"""Intake rules (docs/domain.md, mechanisms 1, 5 and 8, and "Bad input"): what a submission must hold to
be taken in, the machine-readable reason when it is refused, and the 容缺 notice for deferred materials.

Pure unit tests against the shipped catalogue and calendar file; "today" is always passed in.
"""

from __future__ import annotations

import re
import shutil
import warnings
from datetime import date
from pathlib import Path

import pytest
import yaml

from services.intake.domain import (
    DEFERRAL_CONSEQUENCE,
    AcceptedSubmission,
    SubmissionRefused,
    assess_submission,
    case_number,
)
from shared.catalogue import SHIPPED_CATALOGUE_DIR, Catalogue, load_catalogue
from shared.workdays import CalendarCoverageWarning, WorkdayCalendar

REPO_ROOT = Path(__file__).resolve().parents[2]
CALENDAR_FILE = REPO_ROOT / "config" / "calendar-overrides.yaml"

XINHE_JIAYUAN = "320113003021"  # 馨合家园社区
MAIGAOQIAO = "320113003000"  # 迈皋桥街道
QIXIA = "320113000000"  # 栖霞区

ORDINARY_MONDAY = date(2026, 11, 2)  # no holiday within three weeks
BEFORE_NATIONAL_DAY = date(2026, 9, 30)  # Wednesday; 10-01 .. 10-07 off, Saturday 10-10 worked

MIGRANT_BUNDLE = "migrant-bundle"
MIGRANT_MATTERS = ("residence-permit", "birth-registration-proof", "vocational-training-signup",
                   "employment-registration")
# Every main (non-deferrable) material of the migrant bundle, taking a material that is main for one matter
# and deferrable for another as main: rental-contract (main for the residence permit, deferrable for the
# birth registration) and photo (main for the residence permit, deferrable for the training sign-up).
MIGRANT_MAIN = ("id-card", "photo", "rental-contract", "labour-contract")
MIGRANT_DEFERRABLE = ("landlord-property-certificate-copy", "landlord-id-copy", "job-or-school-proof",
                      "spouse-id-card", "education-certificate")


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(SHIPPED_CATALOGUE_DIR)


@pytest.fixture(scope="module")
def calendar() -> WorkdayCalendar:
    return WorkdayCalendar.from_file(CALENDAR_FILE)


@pytest.fixture(autouse=True)
def no_coverage_warning():
    """Every date in this module lies in a covered year: a guessed calendar would be a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalendarCoverageWarning)
        yield


def assess(catalogue: Catalogue, calendar: WorkdayCalendar, *, community: str = XINHE_JIAYUAN,
           bundle: str | None = MIGRANT_BUNDLE, matters=(), provided=MIGRANT_MAIN, deferred=(),
           channel: str = "kiosk", today: date = ORDINARY_MONDAY, deferral_days: int = 5,
           applicant_kind: str = "person") -> AcceptedSubmission:
    return assess_submission(catalogue, calendar, community_code=community, bundle_code=bundle,
                             matter_codes=matters, provided=provided, deferred=deferred, channel=channel,
                             today=today, deferral_working_days=deferral_days, applicant_kind=applicant_kind)


def refused(catalogue: Catalogue, calendar: WorkdayCalendar, **submission) -> SubmissionRefused:
    with pytest.raises(SubmissionRefused) as caught:
        assess(catalogue, calendar, **submission)
    assert caught.value.status == 422
    assert caught.value.message  # a human-readable explanation next to the machine-readable reason
    return caught.value


# ── Accepted ──────────────────────────────────────────────────────────────────────────────────────


def test_migrant_bundle_with_main_materials_is_accepted_and_secondary_ones_deferred(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    accepted = assess(catalogue, calendar,
                      provided=(*MIGRANT_MAIN, "landlord-property-certificate-copy", "job-or-school-proof",
                                "education-certificate"),
                      deferred=("spouse-id-card", "landlord-id-copy"))

    assert accepted.community_code == XINHE_JIAYUAN
    assert accepted.bundle is not None and accepted.bundle.code == MIGRANT_BUNDLE
    assert tuple(matter.code for matter in accepted.matters) == MIGRANT_MATTERS

    notices = {notice.material_code: notice for notice in accepted.deferred}
    assert set(notices) == {"spouse-id-card", "landlord-id-copy"}
    # The residence permit promises 10 working days: the configured 5 apply (Mon 11-02 + 5 = Mon 11-09).
    assert notices["landlord-id-copy"].matter_codes == ("residence-permit",)
    assert notices["landlord-id-copy"].due_date == date(2026, 11, 9)
    assert notices["landlord-id-copy"].material_name == "房东身份证复印件"
    # The birth registration is an immediate matter promising 1 working day: the due date cannot be later.
    assert notices["spouse-id-card"].matter_codes == ("birth-registration-proof",)
    assert notices["spouse-id-card"].due_date == date(2026, 11, 3)
    for notice in accepted.deferred:
        assert notice.due_date_provisional is False
        assert notice.consequence == DEFERRAL_CONSEQUENCE


def test_migrant_bundle_with_every_secondary_material_deferred_is_accepted(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    accepted = assess(catalogue, calendar, deferred=MIGRANT_DEFERRABLE)
    assert sorted(notice.material_code for notice in accepted.deferred) == sorted(MIGRANT_DEFERRABLE)


def test_optional_flexible_insurance_is_added_after_its_prerequisite(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    accepted = assess(catalogue, calendar, matters=("flexible-employment-insurance",),
                      provided=(*MIGRANT_MAIN, *MIGRANT_DEFERRABLE, "bank-account"))
    codes = [matter.code for matter in accepted.matters]
    assert codes[:4] == list(MIGRANT_MATTERS)
    assert codes[4] == "flexible-employment-insurance"
    assert accepted.deferred == ()


def test_a_material_shared_by_two_matters_gets_one_notice_naming_both(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    accepted = assess(catalogue, calendar, bundle="enterprise-change",
                      provided=("change-application", "shareholder-resolution", "amended-articles",
                                "capital-contribution-proof", "new-shareholder-identity"),
                      deferred=("business-licence",), applicant_kind="enterprise")
    (notice,) = accepted.deferred
    assert notice.matter_codes == ("enterprise-capital-increase", "enterprise-new-shareholder")
    assert notice.due_date == date(2026, 11, 3)  # both promise 1 working day


# ── Refused, with a machine-readable reason ───────────────────────────────────────────────────────


def test_a_resident_cannot_apply_for_an_enterprise_matter_nor_an_enterprise_for_a_residents(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    as_person = refused(catalogue, calendar, bundle="enterprise-change",
                        provided=("change-application", "shareholder-resolution", "amended-articles",
                                  "capital-contribution-proof", "new-shareholder-identity", "business-licence"))
    assert as_person.reason == "applicant_kind_mismatch"
    assert as_person.details["matters"] == ["enterprise-capital-increase", "enterprise-new-shareholder"]
    assert "企业" in as_person.message
    as_enterprise = refused(catalogue, calendar, applicant_kind="enterprise")  # the migrant bundle
    assert as_enterprise.reason == "applicant_kind_mismatch"
    assert "residence-permit" in as_enterprise.details["matters"]


def test_unknown_community_is_refused(catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    error = refused(catalogue, calendar, community="320113003999")
    assert error.reason == "unknown_community"
    assert error.details == {"community_code": "320113003999"}


@pytest.mark.parametrize("not_a_community", [MAIGAOQIAO, QIXIA])
def test_a_street_or_district_code_given_as_community_is_refused(
        catalogue: Catalogue, calendar: WorkdayCalendar, not_a_community: str) -> None:
    error = refused(catalogue, calendar, community=not_a_community)
    assert error.reason == "unknown_community"
    assert error.details["community_code"] == not_a_community


def test_unknown_bundle_is_refused(catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    error = refused(catalogue, calendar, bundle="no-such-bundle")
    assert error.reason == "unknown_bundle"
    assert error.details == {"bundle": "no-such-bundle"}


def test_unknown_matter_is_refused(catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    error = refused(catalogue, calendar, bundle=None, matters=("employment-registration", "no-such-matter"),
                    provided=("id-card", "labour-contract"))
    assert error.reason == "unknown_matter"
    assert error.details == {"matter": "no-such-matter"}


@pytest.mark.parametrize("material", [
    "passport",        # in no matter of the catalogue
    "bank-account",    # a real material, but of flexible insurance, which this case does not include
])
def test_a_material_the_submitted_matters_do_not_ask_for_is_refused(
        catalogue: Catalogue, calendar: WorkdayCalendar, material: str) -> None:
    error = refused(catalogue, calendar, provided=(*MIGRANT_MAIN, material), deferred=MIGRANT_DEFERRABLE)
    assert error.reason == "unknown_material"
    assert error.details == {"materials": [material]}


def test_an_unknown_material_listed_as_deferred_is_refused(catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    error = refused(catalogue, calendar, deferred=(*MIGRANT_DEFERRABLE, "passport"))
    assert error.reason == "unknown_material"


@pytest.mark.parametrize(("missing", "matter"), [
    ("rental-contract", "residence-permit"),
    ("labour-contract", "employment-registration"),
])
def test_a_missing_main_material_is_refused(catalogue: Catalogue, calendar: WorkdayCalendar,
                                            missing: str, matter: str) -> None:
    error = refused(catalogue, calendar, provided=tuple(m for m in MIGRANT_MAIN if m != missing),
                    deferred=MIGRANT_DEFERRABLE)
    assert error.reason == "missing_material"
    assert error.details == {"matter": matter, "material": missing}


def test_a_secondary_material_neither_provided_nor_deferred_is_refused(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    # Deferring needs the applicant's commitment: silence about a material is not a deferral.
    error = refused(catalogue, calendar, deferred=tuple(m for m in MIGRANT_DEFERRABLE if m != "landlord-id-copy"))
    assert error.reason == "missing_material"
    assert error.details["material"] == "landlord-id-copy"


@pytest.mark.parametrize(("main_material", "matter"), [
    ("id-card", "residence-permit"),
    # Deferrable for the birth registration, but a main material of the residence permit in the same case.
    ("rental-contract", "residence-permit"),
])
def test_deferring_a_main_material_is_refused(catalogue: Catalogue, calendar: WorkdayCalendar,
                                              main_material: str, matter: str) -> None:
    error = refused(catalogue, calendar, provided=tuple(m for m in MIGRANT_MAIN if m != main_material),
                    deferred=(*MIGRANT_DEFERRABLE, main_material))
    assert error.reason == "material_not_deferrable"
    assert error.details == {"matter": matter, "material": main_material}


def test_a_material_both_provided_and_deferred_is_refused(catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    error = refused(catalogue, calendar, provided=(*MIGRANT_MAIN, "spouse-id-card"),
                    deferred=MIGRANT_DEFERRABLE)
    assert error.reason == "material_both_provided_and_deferred"
    assert error.details == {"materials": ["spouse-id-card"]}


@pytest.fixture(scope="module")
def no_proxy_catalogue(tmp_path_factory) -> Catalogue:
    """The shipped catalogue, except that the residence permit may not be handled by a proxy agent."""
    directory = tmp_path_factory.mktemp("catalogue") / "nanjing"
    shutil.copytree(SHIPPED_CATALOGUE_DIR, directory)
    path = directory / "matters.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    next(m for m in document["matters"] if m["code"] == "residence-permit")["proxy_allowed"] = False
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_catalogue(directory)


def test_a_proxy_agent_is_refused_a_matter_that_does_not_allow_proxies(
        no_proxy_catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    error = refused(no_proxy_catalogue, calendar, channel="proxy", deferred=MIGRANT_DEFERRABLE)
    assert error.reason == "proxy_not_allowed"
    assert error.details == {"matters": ["residence-permit"]}


def test_the_same_matters_are_accepted_without_a_proxy_or_where_proxies_are_allowed(
        catalogue: Catalogue, no_proxy_catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    assess(no_proxy_catalogue, calendar, channel="kiosk", deferred=MIGRANT_DEFERRABLE)
    assess(no_proxy_catalogue, calendar, channel="window", deferred=MIGRANT_DEFERRABLE)
    assess(catalogue, calendar, channel="proxy", deferred=MIGRANT_DEFERRABLE)


# ── The deferral notice's due date ────────────────────────────────────────────────────────────────

SHIPPED = load_catalogue(SHIPPED_CATALOGUE_DIR)
DEFERRABLE_PER_MATTER = [
    (matter.code, material.code)
    for matter in SHIPPED.matters.values()
    for material in matter.deferrable_materials
]


def test_every_matter_with_a_deferrable_material_is_covered() -> None:
    matters = {matter for matter, _ in DEFERRABLE_PER_MATTER}
    assert {"residence-permit", "birth-registration-proof", "property-management-complaint"} <= matters


@pytest.mark.parametrize("deferral_days", [1, 2, 5, 30])
@pytest.mark.parametrize("today", [ORDINARY_MONDAY, BEFORE_NATIONAL_DAY])
@pytest.mark.parametrize(("matter_code", "material_code"), DEFERRABLE_PER_MATTER)
def test_deferral_due_date_is_the_configured_period_but_never_past_the_promised_limit(
        catalogue: Catalogue, calendar: WorkdayCalendar, matter_code: str, material_code: str,
        today: date, deferral_days: int) -> None:
    matter = catalogue.matter(matter_code)
    accepted = assess(catalogue, calendar, bundle=None, matters=(matter_code,),
                      provided=tuple(m.code for m in matter.materials if m.code != material_code),
                      deferred=(material_code,), today=today, deferral_days=deferral_days,
                      applicant_kind=str(matter.applicant_kind))
    (notice,) = accepted.deferred

    granted = calendar.workdays_between(today, notice.due_date)
    assert granted <= matter.promised_days
    assert granted == min(deferral_days, matter.promised_days)
    assert calendar.is_workday(notice.due_date)


def test_deferral_due_date_never_passes_any_concerned_matters_limit(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    # labour-contract is deferrable for starting insurance (3 days) and asked for by no other matter here;
    # the stop needs the ID card alone (the report). Configured 30 days: capped at 3.
    accepted = assess(catalogue, calendar, bundle="social-insurance-transfer",
                      provided=("id-card", "employer-addition-form"),
                      deferred=("labour-contract",), deferral_days=30)
    for notice in accepted.deferred:
        for code in notice.matter_codes:
            assert calendar.workdays_between(ORDINARY_MONDAY, notice.due_date) <= catalogue.matter(code).promised_days
    assert {notice.due_date for notice in accepted.deferred} == {date(2026, 11, 5)}


def test_deferral_due_date_skips_the_national_day_holiday(catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    accepted = assess(catalogue, calendar, provided=(*MIGRANT_MAIN, "spouse-id-card", "education-certificate",
                                                     "job-or-school-proof", "landlord-id-copy"),
                      deferred=("landlord-property-certificate-copy",), today=BEFORE_NATIONAL_DAY)
    (notice,) = accepted.deferred
    # Wed 09-30 + 5 working days: Thu 10-08, Fri 10-09, Sat 10-10 (make-up day), Mon 10-12, Tue 10-13.
    assert notice.due_date == date(2026, 10, 13)


# ── Case number ───────────────────────────────────────────────────────────────────────────────────


def test_case_number_is_sj_date_and_the_first_twelve_hex_digits_of_the_case_id() -> None:
    number = case_number(date(2026, 9, 30), "3f2a9c1e-7b44-4d1a-9e0f-5c6d7e8f9a0b")
    assert number == "SJ20260930-3F2A9C1E7B44"
    assert re.fullmatch(r"SJ\d{8}-[0-9A-F]{12}", number)


def test_case_number_uses_the_day_it_is_given_and_ignores_the_id_dashes() -> None:
    assert case_number(date(2027, 1, 4), "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d") == "SJ20270104-0A1B2C3D4E5F"
    # Dashes are removed before taking 12 characters, so an id written without dashes gives the same number.
    assert case_number(date(2027, 1, 4), "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d") == "SJ20270104-0A1B2C3D4E5F"
