"""Routing rules (docs/domain.md, mechanism 2 and 4): each item of a case goes to the lowest level entitled
to handle its matter, in the submitting community's own line, to the matter's department; prerequisites
inside the case make an item wait; deadlines are counted in Chinese working days.

Pure unit tests: the shipped catalogue, the shipped calendar file, no broker and no database.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import warnings
from datetime import UTC, date, datetime, time
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml

from services.routing.domain import RoutingDecision, RoutingImpossible, entitled_desk, route_case
from shared.catalogue import (
    SHIPPED_CATALOGUE_DIR,
    Catalogue,
    CatalogueError,
    Department,
    Level,
    UnknownCode,
    load_catalogue,
)
from shared.events import ItemReturnedV1, ItemRoutedV1
from shared.workdays import SHANGHAI, CalendarCoverageWarning, WorkdayCalendar

REPO_ROOT = Path(__file__).resolve().parents[2]
CALENDAR_FILE = REPO_ROOT / "config" / "calendar-overrides.yaml"

XINHE_JIAYUAN = "320113003021"  # 馨合家园社区
MAIGAOQIAO = "320113003000"  # 迈皋桥街道
QIXIA = "320113000000"  # 栖霞区
YINXIANG = "320115011001"  # 江宁区 秣陵街道 殷巷社区

MIGRANT_BUNDLE = "migrant-bundle"
FLEXIBLE_INSURANCE = "flexible-employment-insurance"
RESIDENCE_PERMIT = "residence-permit"

# A Wednesday: the last working day before the 2026 National Day holiday (10-01 .. 10-07 off,
# Saturday 10-10 worked as a make-up day), 10:00 in Shanghai.
BEFORE_NATIONAL_DAY = datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI)
# An ordinary Monday with no holiday within three weeks.
ORDINARY_MONDAY = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI)
CLOSING = time(17, 30)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(SHIPPED_CATALOGUE_DIR)


@pytest.fixture(scope="module")
def calendar() -> WorkdayCalendar:
    return WorkdayCalendar.from_file(CALENDAR_FILE)


@pytest.fixture
def no_coverage_warning():
    """Dates inside the covered years must be computed from the official calendar, without a guess."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalendarCoverageWarning)
        yield


def route_one(catalogue: Catalogue, calendar: WorkdayCalendar, community: str, matter: str,
              submitted_at: datetime = ORDINARY_MONDAY) -> RoutingDecision:
    (decision,) = route_case(catalogue, calendar, community_code=community, matter_codes=(matter,),
                             submitted_at=submitted_at)
    return decision


def by_matter(decisions: list[RoutingDecision]) -> dict[str, RoutingDecision]:
    return {decision.matter_code: decision for decision in decisions}


# ── Where an item goes ─────────────────────────────────────────────────────────────────────────────

SHIPPED = load_catalogue(SHIPPED_CATALOGUE_DIR)
ALL_MATTERS = sorted(SHIPPED.matters)
# One community per district: the first one listed, so every district of the sample data is exercised.
ONE_COMMUNITY_PER_DISTRICT = sorted(
    next(unit.code for unit in SHIPPED.units.values()
         if unit.level is Level.COMMUNITY and unit.code.startswith(district.code[:6]))
    for district in SHIPPED.units.values() if district.level is Level.DISTRICT
)


def expected_level(catalogue: Catalogue, matter_code: str) -> Level:
    """The rule, stated independently: the matter's lowest level, or the first level above it where the
    matter's department has a desk."""
    matter = catalogue.matters[matter_code]
    desks = set(catalogue.departments[matter.department].levels)
    order = [Level.COMMUNITY, Level.STREET, Level.DISTRICT]
    return next(level for level in order[order.index(matter.lowest_level):] if level in desks)


def own_line_unit(community_code: str, level: Level) -> str:
    """The unit at ``level`` in a community's own line, from the shape of division codes alone."""
    return {
        Level.COMMUNITY: community_code,
        Level.STREET: community_code[:9] + "000",
        Level.DISTRICT: community_code[:6] + "000000",
    }[level]


def test_every_district_of_the_sample_data_is_exercised() -> None:
    assert len(ONE_COMMUNITY_PER_DISTRICT) == 4
    assert {code[:6] for code in ONE_COMMUNITY_PER_DISTRICT} == {"320113", "320102", "320115", "320111"}


@pytest.mark.parametrize("community", ONE_COMMUNITY_PER_DISTRICT)
@pytest.mark.parametrize("matter_code", ALL_MATTERS)
def test_item_goes_to_lowest_entitled_level_in_the_communitys_own_line(
        catalogue: Catalogue, calendar: WorkdayCalendar, community: str, matter_code: str) -> None:
    decision = route_one(catalogue, calendar, community, matter_code)

    level = expected_level(catalogue, matter_code)
    assert decision.matter_code == matter_code
    assert decision.level is level
    assert decision.unit_code == own_line_unit(community, level)
    assert catalogue.unit(decision.unit_code).level is level
    assert catalogue.is_within(community, decision.unit_code), "routed outside the community's own line"
    assert decision.department_code == catalogue.matters[matter_code].department
    assert decision.district_code == community[:6] + "000000"


@pytest.mark.parametrize(("matter_code", "level", "unit"), [
    ("employment-registration", Level.COMMUNITY, XINHE_JIAYUAN),    # hrss, lowest level community
    ("birth-registration-proof", Level.COMMUNITY, XINHE_JIAYUAN),   # health, lowest level community
    ("property-management-complaint", Level.COMMUNITY, XINHE_JIAYUAN),
    ("residence-permit", Level.STREET, MAIGAOQIAO),                 # police, lowest level street
    ("vocational-training-signup", Level.STREET, MAIGAOQIAO),
    ("social-insurance-stop", Level.COMMUNITY, XINHE_JIAYUAN),      # hrss; the report: ID card alone, at the community
    ("social-insurance-start", Level.DISTRICT, QIXIA),              # hrss, lowest level district
    ("enterprise-capital-increase", Level.DISTRICT, QIXIA),
])
def test_xinhe_jiayuan_items_reach_the_exact_unit(catalogue: Catalogue, calendar: WorkdayCalendar,
                                                 matter_code: str, level: Level, unit: str) -> None:
    decision = route_one(catalogue, calendar, XINHE_JIAYUAN, matter_code)
    assert (decision.level, decision.unit_code, decision.district_code) == (level, unit, QIXIA)


def test_a_street_level_matter_goes_to_the_submitting_communitys_own_street(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    assert route_one(catalogue, calendar, YINXIANG, RESIDENCE_PERMIT).unit_code == "320115011000"  # 秣陵街道
    assert route_one(catalogue, calendar, "320113002001", RESIDENCE_PERMIT).unit_code == "320113002000"  # 马群


def test_routing_refuses_a_street_code_as_the_submitting_community(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    with pytest.raises(UnknownCode) as caught:
        route_one(catalogue, calendar, MAIGAOQIAO, RESIDENCE_PERMIT)
    assert caught.value.kind == "community"


# ── Routing follows the catalogue, not code ────────────────────────────────────────────────────────


@pytest.fixture
def catalogue_copy(tmp_path: Path):
    """A fresh copy of the shipped catalogue; ``edit(file, change)`` rewrites one of its YAML files."""
    target = tmp_path / "nanjing"
    shutil.copytree(SHIPPED_CATALOGUE_DIR, target)

    def edit(file: str, change) -> Path:
        path = target / file
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(document)
        path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return target

    return edit


def _entry(document: dict, list_key: str, code: str) -> dict:
    return next(item for item in document[list_key] if item["code"] == code)


def test_moving_a_matter_down_to_the_community_is_a_catalogue_edit(
        catalogue_copy, calendar: WorkdayCalendar) -> None:
    directory = catalogue_copy(
        "matters.yaml", lambda doc: _entry(doc, "matters", "social-insurance-start").update(lowest_level="community"))
    decision = route_one(load_catalogue(directory), calendar, XINHE_JIAYUAN, "social-insurance-start")
    assert (decision.level, decision.unit_code) == (Level.COMMUNITY, XINHE_JIAYUAN)


def test_moving_a_matter_up_to_the_district_is_a_catalogue_edit(catalogue_copy, calendar: WorkdayCalendar) -> None:
    directory = catalogue_copy(
        "matters.yaml", lambda doc: _entry(doc, "matters", RESIDENCE_PERMIT).update(lowest_level="district"))
    decision = route_one(load_catalogue(directory), calendar, XINHE_JIAYUAN, RESIDENCE_PERMIT)
    assert (decision.level, decision.unit_code) == (Level.DISTRICT, QIXIA)


def test_loader_refuses_a_department_without_a_desk_at_the_matters_lowest_level(catalogue_copy) -> None:
    # 公安 loses its street desks (派出所) while the residence permit still starts at the street. The loader
    # refuses such a catalogue outright (a matter needs a desk at its lowest level and every level above),
    # so a loaded catalogue never relies on the fallback upwards.
    directory = catalogue_copy(
        "departments.yaml", lambda doc: _entry(doc, "departments", "police").update(levels=["district"]))
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(directory)
    message = str(caught.value)
    assert "matters.yaml" in message
    assert "residence-permit" in message
    assert "police" in message and "street" in message


def _with_department_levels(catalogue: Catalogue, department: str, levels: tuple[Level, ...]) -> Catalogue:
    """An in-memory variant the loader would refuse, to exercise the routing fallback on its own."""
    departments = dict(catalogue.departments)
    departments[department] = Department(code=department, name=departments[department].name, levels=levels)
    return dataclasses.replace(catalogue, departments=MappingProxyType(departments))


def test_without_a_desk_at_the_lowest_level_the_item_goes_one_level_up(catalogue: Catalogue) -> None:
    variant = _with_department_levels(catalogue, "police", (Level.DISTRICT,))
    assert entitled_desk(variant, XINHE_JIAYUAN, variant.matter(RESIDENCE_PERMIT)) == (Level.DISTRICT, QIXIA)

    # 卫健 without a community desk: a community-level matter climbs to the community's own street.
    variant = _with_department_levels(catalogue, "health", (Level.STREET, Level.DISTRICT))
    assert entitled_desk(variant, XINHE_JIAYUAN, variant.matter("birth-registration-proof")) == (
        Level.STREET, MAIGAOQIAO)


def test_no_desk_at_or_above_the_lowest_level_makes_routing_impossible(catalogue: Catalogue) -> None:
    variant = _with_department_levels(catalogue, "police", (Level.COMMUNITY,))
    with pytest.raises(RoutingImpossible, match="police"):
        entitled_desk(variant, XINHE_JIAYUAN, variant.matter(RESIDENCE_PERMIT))


# ── Prerequisites inside one case ─────────────────────────────────────────────────────────────────


def test_flexible_insurance_in_the_migrant_bundle_waits_for_the_residence_permit(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    matters = catalogue.expand(bundle_code=MIGRANT_BUNDLE, matter_codes=(FLEXIBLE_INSURANCE,))
    decisions = by_matter(route_case(catalogue, calendar, community_code=XINHE_JIAYUAN,
                                     matter_codes=tuple(m.code for m in matters), submitted_at=ORDINARY_MONDAY))

    assert set(decisions) == {RESIDENCE_PERMIT, "birth-registration-proof", "vocational-training-signup",
                              "employment-registration", FLEXIBLE_INSURANCE}
    assert decisions[FLEXIBLE_INSURANCE].status == "waiting"
    assert decisions[FLEXIBLE_INSURANCE].waiting_for == (RESIDENCE_PERMIT,)
    for code, decision in decisions.items():
        if code != FLEXIBLE_INSURANCE:
            assert (decision.status, decision.waiting_for) == ("queued", ()), code


def test_waiting_does_not_depend_on_the_order_the_matters_are_listed(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    decisions = by_matter(route_case(catalogue, calendar, community_code=XINHE_JIAYUAN,
                                     matter_codes=(FLEXIBLE_INSURANCE, RESIDENCE_PERMIT),
                                     submitted_at=ORDINARY_MONDAY))
    assert decisions[FLEXIBLE_INSURANCE].status == "waiting"
    assert decisions[RESIDENCE_PERMIT].status == "queued"


def test_flexible_insurance_without_the_residence_permit_in_the_case_is_queued(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    # The applicant may already hold a residence permit: a prerequisite outside the case does not block.
    decision = route_one(catalogue, calendar, XINHE_JIAYUAN, FLEXIBLE_INSURANCE)
    assert (decision.status, decision.waiting_for) == ("queued", ())


def test_starting_insurance_at_the_new_employer_waits_for_the_stop(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    matters = catalogue.expand(bundle_code="social-insurance-transfer")
    decisions = by_matter(route_case(catalogue, calendar, community_code=YINXIANG,
                                     matter_codes=tuple(m.code for m in matters), submitted_at=ORDINARY_MONDAY))
    assert decisions["social-insurance-stop"].status == "queued"
    assert decisions["social-insurance-start"].status == "waiting"
    assert decisions["social-insurance-start"].waiting_for == ("social-insurance-stop",)


def test_the_enterprise_startup_bundle_is_routed_like_the_rest(catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    """企业开办一件事 from 梅园新村社区 (玄武区): each item to the 玄武区 desk of its department; seal, tax and
    social-insurance registration wait for the business licence."""
    matters = catalogue.expand(bundle_code="enterprise-startup")
    decisions = by_matter(route_case(catalogue, calendar, community_code="320102002001",
                                     matter_codes=tuple(m.code for m in matters), submitted_at=ORDINARY_MONDAY))
    assert {code: (d.level, d.unit_code, d.department_code) for code, d in decisions.items()} == {
        "enterprise-establishment": (Level.DISTRICT, "320102000000", "amr"),
        "company-seal-engraving": (Level.DISTRICT, "320102000000", "police"),
        "new-taxpayer-registration": (Level.DISTRICT, "320102000000", "tax"),
        "employer-social-insurance-registration": (Level.DISTRICT, "320102000000", "hrss"),
    }
    assert decisions["enterprise-establishment"].status == "queued"
    for code in ("company-seal-engraving", "new-taxpayer-registration", "employer-social-insurance-registration"):
        assert (decisions[code].status, decisions[code].waiting_for) == ("waiting", ("enterprise-establishment",))


# ── Deadlines ─────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("matter_code", ALL_MATTERS)
def test_promised_deadline_is_never_after_the_legal_one(
        catalogue: Catalogue, calendar: WorkdayCalendar, matter_code: str, no_coverage_warning) -> None:
    for submitted_at in (ORDINARY_MONDAY, BEFORE_NATIONAL_DAY):
        decision = route_one(catalogue, calendar, XINHE_JIAYUAN, matter_code, submitted_at)
        assert submitted_at < decision.promised_deadline <= decision.legal_deadline
        matter = catalogue.matter(matter_code)
        start = submitted_at.date()
        assert calendar.workdays_between(start, decision.promised_deadline.date()) == matter.promised_days
        assert calendar.workdays_between(start, decision.legal_deadline.date()) == matter.legal_days
        assert decision.deadline_provisional is False


@pytest.mark.parametrize(("matter_code", "promised_day", "legal_day"), [
    # 1 working day after Wed 09-30 is Thu 10-08: the seven holiday days 10-01 .. 10-07 do not count.
    ("employment-registration", date(2026, 10, 8), date(2026, 10, 13)),      # 1 / 5 days
    ("vocational-training-signup", date(2026, 10, 10), date(2026, 10, 13)),  # 3 / 5 days; Sat 10-10 is worked
    ("residence-permit", date(2026, 10, 20), date(2026, 10, 27)),            # 10 / 15 days
])
def test_deadlines_skip_the_national_day_holiday(catalogue: Catalogue, calendar: WorkdayCalendar, matter_code: str,
                                                 promised_day: date, legal_day: date, no_coverage_warning) -> None:
    decision = route_one(catalogue, calendar, XINHE_JIAYUAN, matter_code, BEFORE_NATIONAL_DAY)
    assert decision.promised_deadline == datetime.combine(promised_day, CLOSING, tzinfo=SHANGHAI)
    assert decision.legal_deadline == datetime.combine(legal_day, CLOSING, tzinfo=SHANGHAI)
    assert decision.deadline_provisional is False


def test_deadline_counts_from_the_shanghai_date_of_a_utc_submission(
        catalogue: Catalogue, calendar: WorkdayCalendar, no_coverage_warning) -> None:
    # 2026-09-29 16:30 UTC is already 2026-09-30 00:30 in Shanghai: one working day later is 10-08, not 09-30.
    submitted_at = datetime(2026, 9, 29, 16, 30, tzinfo=UTC)
    decision = route_one(catalogue, calendar, XINHE_JIAYUAN, "employment-registration", submitted_at)
    assert decision.promised_deadline == datetime(2026, 10, 8, 17, 30, tzinfo=SHANGHAI)


def test_deadline_in_a_year_the_calendar_does_not_cover_is_provisional(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    submitted_at = datetime(2030, 6, 3, 10, 0, tzinfo=SHANGHAI)  # a Monday
    assert not calendar.covers(2030)
    with pytest.warns(CalendarCoverageWarning, match="2030"):
        decision = route_one(catalogue, calendar, XINHE_JIAYUAN, RESIDENCE_PERMIT, submitted_at)
    assert decision.deadline_provisional is True
    # Days off derived from the law, no 调休 known: 端午 2030 (Wed 06-05) is off, so 10 working days after
    # Mon 06-03 is Tue 06-18 (the former bare Monday-Friday guess said Mon 06-17, counting 端午 as worked).
    assert decision.promised_deadline == datetime(2030, 6, 18, 17, 30, tzinfo=SHANGHAI)


# ── Routing keys and topic bindings ───────────────────────────────────────────────────────────────


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: words are separated by '.', '*' is exactly one word, '#' zero or more."""

    def match(pattern_words: list[str], key_words: list[str]) -> bool:
        if not pattern_words:
            return not key_words
        head, rest = pattern_words[0], pattern_words[1:]
        if head == "#":
            return any(match(rest, key_words[skip:]) for skip in range(len(key_words) + 1))
        if not key_words:
            return False
        return (head == "*" or head == key_words[0]) and match(rest, key_words[1:])

    return match(pattern.split("."), routing_key.split("."))


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    ("a.*.c", "a.b.c", True),
    ("a.*.c", "a.c", False),
    ("a.*.c", "a.b.b.c", False),
    ("a.#", "a", True),
    ("a.#", "a.b.c", True),
    ("a.#.c", "a.c", True),
    ("a.#.c", "a.b.d", False),
    ("#", "anything.at.all", True),
])
def test_the_topic_matcher_follows_amqp_rules(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def routed_event(decision: RoutingDecision, community: str) -> ItemRoutedV1:
    return ItemRoutedV1(
        item_id="7d0c8f7e-4f0e-4c57-9a43-2f0f1f6f3b11", case_id="0b7f6a52-93a4-4d7e-8f55-1f0e1d2c3b4a",
        case_number="SJ20261102-0B7F6A52", matter_code=decision.matter_code,
        department_code=decision.department_code, level=decision.level.value, unit_code=decision.unit_code,
        district_code=decision.district_code, community_code=community, status=decision.status,
        waiting_for=decision.waiting_for, legal_deadline=decision.legal_deadline,
        promised_deadline=decision.promised_deadline, deadline_provisional=decision.deadline_provisional,
        catalogue_version="2026.11.1+000000000000", occurred_at=ORDINARY_MONDAY)


def test_routed_item_key_names_district_level_unit_and_department(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    police_item = routed_event(route_one(catalogue, calendar, XINHE_JIAYUAN, RESIDENCE_PERMIT), XINHE_JIAYUAN)
    assert police_item.routing_key() == f"item.routed.{QIXIA}.street.{MAIGAOQIAO}.police"
    assert re.fullmatch(r"item\.routed\.\d{12}\.(community|street|district)\.\d{12}\.[a-z][a-z0-9-]*",
                        police_item.routing_key())
    assert ItemReturnedV1.routing_key_template.format(
        district_code=QIXIA, level="district", unit_code=QIXIA, department_code="hrss") == (
        f"item.returned.{QIXIA}.district.{QIXIA}.hrss")


def test_district_police_binding_gets_maigaoqiao_police_items_but_not_health_items(
        catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    binding = f"item.*.{QIXIA}.*.*.police"
    police_item = routed_event(route_one(catalogue, calendar, XINHE_JIAYUAN, RESIDENCE_PERMIT), XINHE_JIAYUAN)
    health_item = routed_event(route_one(catalogue, calendar, XINHE_JIAYUAN, "birth-registration-proof"),
                               XINHE_JIAYUAN)
    other_district_police = routed_event(route_one(catalogue, calendar, YINXIANG, RESIDENCE_PERMIT), YINXIANG)

    assert topic_matches(binding, police_item.routing_key())
    assert not topic_matches(binding, health_item.routing_key())
    assert not topic_matches(binding, other_district_police.routing_key())


def test_street_binding_gets_every_item_at_its_own_desks(catalogue: Catalogue, calendar: WorkdayCalendar) -> None:
    binding = f"item.*.*.street.{MAIGAOQIAO}.*"
    keys = {code: routed_event(route_one(catalogue, calendar, XINHE_JIAYUAN, code), XINHE_JIAYUAN).routing_key()
            for code in (RESIDENCE_PERMIT, "vocational-training-signup", "employment-registration")}
    assert topic_matches(binding, keys[RESIDENCE_PERMIT])
    assert topic_matches(binding, keys["vocational-training-signup"])
    assert not topic_matches(binding, keys["employment-registration"])  # handled at the community
