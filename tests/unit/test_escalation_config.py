"""What the escalation service is configured by: its settings, the cause taxonomy, the catalogue's 吹哨 list, and
the event contract it adds (routing keys, no field for personal data)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from services.escalation.settings import (
    DEFAULT_CAUSES_FILE,
    EscalationConfigError,
    EscalationSettings,
    load_causes,
    settings_from_config,
)
from shared.catalogue import CatalogueError, load_catalogue
from shared.config import REPO_ROOT
from shared.events import (
    PAYLOAD_TYPES,
    ItemDeadlineWarningV1,
    ReportEvent,
    ReportFiledV1,
    WhistleCalledV1,
    WhistleEvent,
)
from shared.topology import ESCALATION_EVENTS

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


# ── Settings ────────────────────────────────────────────────────────────────────────────────────────


def test_the_defaults_are_the_local_rules_of_the_brief():
    settings = settings_from_config({})
    assert settings == EscalationSettings()
    assert (settings.warning_share, settings.whistle_ack_minutes, settings.opinion_days) == (0.8, 30, 5)


def test_settings_are_read_and_checked():
    settings = settings_from_config({"SANJI_ESCALATION_WARNING_SHARE": "0.75", "SANJI_ESCALATION_STREET_LOOP_DAYS": "5",
                                     "SANJI_ESCALATION_WHISTLE_ACK_MINUTES": "45", "SANJI_ESCALATION_SWEEP_SECONDS": 2})
    assert (settings.warning_share, settings.street_loop_days, settings.whistle_ack_limit.total_seconds(),
            settings.sweep_seconds) == (0.75, 5, 45 * 60, 2.0)
    for name, value in (("SANJI_ESCALATION_WARNING_SHARE", "80%"), ("SANJI_ESCALATION_WARNING_SHARE", "1.2"),
                        ("SANJI_ESCALATION_STREET_LOOP_DAYS", "0"), ("SANJI_ESCALATION_OPINION_DAYS", "five")):
        with pytest.raises(EscalationConfigError, match=name):
            settings_from_config({name: value})


# ── The cause taxonomy ──────────────────────────────────────────────────────────────────────────────


def test_the_shipped_taxonomy_has_the_causes_the_issue_names():
    causes = load_causes(DEFAULT_CAUSES_FILE)
    assert {"policy-gap", "missing-material", "system-problem", "attitude", "out-of-scope"} <= set(causes)
    assert all(cause.name for cause in causes.values())


@pytest.mark.parametrize(("content", "problem"), [
    ("causes: []", "non-empty 'causes' list"),
    ("causes:\n  - {code: Policy Gap, name: x}", "lower-case kebab code"),
    ("causes:\n  - {code: a, name: x}\n  - {code: a, name: y}", "listed twice"),
    ("causes:\n  - {code: a}", "name is missing"),
    ("causes:\n  - {code: a, name: x, colour: red}", "expected code, name"),
    ("causes: [", "not valid YAML"),
])
def test_a_broken_taxonomy_is_refused_with_its_problem(tmp_path, content, problem):
    path = tmp_path / "causes.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EscalationConfigError, match=problem):
        load_causes(path)


# ── The catalogue's call-in list ────────────────────────────────────────────────────────────────────


@pytest.fixture
def catalogue_copy(tmp_path) -> Path:
    target = tmp_path / "catalogue"
    shutil.copytree(REPO_ROOT / "catalogue" / "nanjing", target)
    return target


def with_call_in(directory: Path, departments) -> Path:
    path = directory / "matters.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    next(m for m in document["matters"] if m["code"] == "property-management-complaint")[
        "call_in_departments"] = departments
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return directory


def test_the_shipped_complaint_calls_in_housing_and_civil():
    catalogue = load_catalogue(REPO_ROOT / "catalogue" / "nanjing")
    assert catalogue.matter("property-management-complaint").call_in_departments == ("housing", "civil")
    assert catalogue.matter("residence-permit").call_in_departments == ()


@pytest.mark.parametrize(("departments", "problem"), [
    (["no-such-department"], "call_in_departments: unknown department 'no-such-department'"),
    (["housing", "housing"], "call_in_departments lists 'housing' more than once"),
    (["grid"], "call_in_departments names the matter's own department 'grid'"),
])
def test_a_broken_call_in_list_is_refused(catalogue_copy, departments, problem):
    with pytest.raises(CatalogueError) as refused:
        load_catalogue(with_call_in(catalogue_copy, departments))
    assert problem in str(refused.value)
    assert "property-management-complaint" in str(refused.value)


def test_a_department_called_in_needs_a_desk_at_the_street_or_the_district(catalogue_copy):
    path = catalogue_copy / "departments.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["departments"].append({"code": "committee", "name": "居委会", "levels": ["community"]})
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogueError, match="has no desk at the street or the district"):
        load_catalogue(with_call_in(catalogue_copy, ["committee"]))


# ── The event contract ──────────────────────────────────────────────────────────────────────────────


def test_every_escalation_event_is_registered_with_a_routing_key_a_department_can_bind():
    call = WhistleCalledV1(call_id="c", item_id="i", case_id="k", matter_code="property-management-complaint",
                           department_code="housing", level="street", unit_code="320113003000",
                           district_code="320113000000", caller_level="street", caller_unit_code="320113003000",
                           occurred_at=NOW, ack_due_at=NOW)
    assert call.routing_key() == "whistle.called.320113000000.street.320113003000.housing"
    filed = ReportFiledV1(report_id="r", report_number="BCS20261130-1", district_code="320113000000",
                          unit_code="320113003021", occurred_at=NOW, channel="kiosk", owner="kiosk-xinhe-jiayuan")
    assert filed.routing_key() == "report.filed.320113000000.320113003021"
    assert ItemDeadlineWarningV1.routing_key_template.startswith("item.deadline-warning.{district_code}")
    for payload in PAYLOAD_TYPES.values():
        if issubclass(payload, WhistleEvent | ReportEvent):
            assert payload.routing_key_template.startswith(("whistle.", "report."))
            assert payload.event_type in PAYLOAD_TYPES


def test_report_events_have_no_field_for_personal_data():
    with pytest.raises(ValidationError):
        ReportFiledV1(report_id="r", report_number="n", district_code="320113000000", unit_code="320113003021",
                      occurred_at=NOW, channel="kiosk", owner="kiosk", reporter_phone="13912345678")
    fields = {name for payload in PAYLOAD_TYPES.values() for name in payload.model_fields}
    assert not fields & {"name", "phone", "id_number", "reporter_name", "reporter_phone", "description"}


def test_the_consumer_queue_takes_routings_item_changes_and_kiosk_reports_not_its_own_notices():
    keys = set(ESCALATION_EVENTS.binding_keys)
    assert {"item.routed.#", "item.escalated.#", "item.resolved.#", "report.filed.#"} <= keys
    assert not any(key.startswith(("item.deadline-warning", "item.supervision-escalated", "item.#", "whistle."))
                   for key in keys)


def test_the_taxonomy_is_found_beside_the_other_local_rule_files():
    from services.escalation.settings import causes_file

    assert causes_file({"SANJI_ESCALATION_CAUSES_FILE": "/etc/sanji/causes.yaml"}) == Path("/etc/sanji/causes.yaml")
    assert causes_file({"SANJI_CALENDAR_OVERRIDES": "/app/config/calendar-overrides.yaml"}) == Path(
        "/app/config/failure-causes.yaml")
    assert causes_file({}) == DEFAULT_CAUSES_FILE
