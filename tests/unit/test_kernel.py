"""The shared kernel: bearer tokens, the log redaction that keeps personal data out of log lines, and the
event envelope that carries codes and ids but never personal data (docs/domain.md, "Events")."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.auth import Principal, TokenFileError, TokenRegistry
from shared.events import (
    CaseSubmittedV1,
    CloudEvent,
    DeferredMaterial,
    ItemRoutedV1,
    UnknownEventType,
    source_of,
)
from shared.http import ApiError
from shared.identity import make_valid_id_number
from shared.logging import redact_personal_data, redact_text

XINHE_JIAYUAN = "320113003021"
MAIGAOQIAO = "320113003000"
QIXIA = "320113000000"

ID_NUMBER = make_valid_id_number("32011319900307123")  # a well-formed number with a correct check character
ID_NUMBER_WITH_X = next(number for number in (make_valid_id_number(f"3201131985010{n:04d}") for n in range(100))
                        if number.endswith("X"))
MOBILE = "13912345678"


# ── Bearer tokens ─────────────────────────────────────────────────────────────────────────────────

POLICE_SECRET = "s3cret-police-token"
TOKENS_YAML = f"""
tokens:
  - name: kiosk-xinhe
    kind: kiosk
    unit: "{XINHE_JIAYUAN}"
    token: dev-kiosk-xinhe
  - name: dept-qixia-police
    kind: department
    unit: "{QIXIA}"
    department: police
    sha256: {hashlib.sha256(POLICE_SECRET.encode()).hexdigest().upper()}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def registry(tmp_path: Path) -> TokenRegistry:
    return TokenRegistry.from_file(write(tmp_path, TOKENS_YAML))


def unauthenticated(registry: TokenRegistry, header: str | None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        registry.authenticate(header)
    assert (caught.value.status, caught.value.reason) == (401, "unauthenticated")
    return caught.value


def test_a_token_listed_in_clear_authenticates_its_principal(registry: TokenRegistry) -> None:
    assert registry.authenticate("Bearer dev-kiosk-xinhe") == Principal(
        name="kiosk-xinhe", kind="kiosk", unit_code=XINHE_JIAYUAN, department=None)


def test_a_token_listed_by_its_sha256_digest_authenticates_its_principal(registry: TokenRegistry) -> None:
    # The file gives the digest in upper case; it is compared case-insensitively.
    assert registry.authenticate(f"Bearer {POLICE_SECRET}") == Principal(
        name="dept-qixia-police", kind="department", unit_code=QIXIA, department="police")


def test_the_scheme_is_case_insensitive_and_surrounding_blanks_are_ignored(registry: TokenRegistry) -> None:
    assert registry.authenticate("bearer  dev-kiosk-xinhe ").name == "kiosk-xinhe"


def test_an_unknown_token_is_unauthenticated(registry: TokenRegistry) -> None:
    unauthenticated(registry, "Bearer dev-kiosk-somebody-else")


def test_the_digest_itself_is_not_a_token(registry: TokenRegistry) -> None:
    # Reading the tokens file must grant nothing.
    unauthenticated(registry, "Bearer " + hashlib.sha256(POLICE_SECRET.encode()).hexdigest())


@pytest.mark.parametrize("header", [
    None,
    "",
    "dev-kiosk-xinhe",             # no scheme
    "Basic dev-kiosk-xinhe",       # another scheme
    "Token dev-kiosk-xinhe",
    "Bearer",                      # scheme without token
    "Bearer    ",
])
def test_a_header_without_a_bearer_token_is_unauthenticated(registry: TokenRegistry, header: str | None) -> None:
    error = unauthenticated(registry, header)
    assert "Bearer" in error.message


def _entry_error(tmp_path: Path, entries: str) -> str:
    with pytest.raises(TokenFileError) as caught:
        TokenRegistry.from_file(write(tmp_path, "tokens:\n" + entries))
    return str(caught.value)


GOOD_ENTRY = f"""  - name: kiosk-xinhe
    kind: kiosk
    unit: "{XINHE_JIAYUAN}"
    token: dev-kiosk-xinhe
"""


def test_an_entry_without_token_or_digest_is_refused_by_position_and_name(tmp_path: Path) -> None:
    message = _entry_error(tmp_path, GOOD_ENTRY + """  - name: kiosk-wanshou
    kind: kiosk
    unit: "320113003002"
""")
    assert "entry 2 (kiosk-wanshou)" in message
    assert "sha256" in message


def test_an_entry_with_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    message = _entry_error(tmp_path, f"""  - name: robot
    kind: robot
    unit: "{XINHE_JIAYUAN}"
    token: beep
""")
    assert "entry 1 (robot)" in message
    assert "kind" in message


@pytest.mark.parametrize("unit", ['"3201130030"', '"32011300302A"', '""'])
def test_an_entry_without_a_12_digit_unit_is_refused(tmp_path: Path, unit: str) -> None:
    message = _entry_error(tmp_path, f"""  - name: staff-x
    kind: staff
    unit: {unit}
    token: t
""")
    assert "entry 1 (staff-x)" in message
    assert "12-digit" in message


def test_the_same_token_listed_twice_is_refused_even_in_different_forms(tmp_path: Path) -> None:
    message = _entry_error(tmp_path, GOOD_ENTRY + f"""  - name: kiosk-xinhe-again
    kind: kiosk
    unit: "{XINHE_JIAYUAN}"
    sha256: {hashlib.sha256(b"dev-kiosk-xinhe").hexdigest()}
""")
    assert "entry 2 (kiosk-xinhe-again)" in message
    assert "twice" in message


@pytest.mark.parametrize("document", ["tokens:\n", "tokens: []\n", "- name: a-list-not-a-mapping\n", "tokens: [\n"],
                         ids=["tokens-null", "tokens-empty", "top-level-list", "invalid-yaml"])
def test_a_malformed_tokens_document_is_a_token_file_error(tmp_path: Path, document: str) -> None:
    with pytest.raises(TokenFileError, match="tokens file"):
        TokenRegistry.from_file(write(tmp_path, document))


def test_a_missing_tokens_file_is_a_token_file_error(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="tokens file"):
        TokenRegistry.from_file(tmp_path / "absent.yaml")


def test_an_entry_that_is_not_a_mapping_is_refused_by_position(tmp_path: Path) -> None:
    message = _entry_error(tmp_path, GOOD_ENTRY + "  - dev-kiosk-loose-string\n")
    assert "entry 2" in message


def test_an_entry_whose_digest_is_not_a_sha256_is_refused(tmp_path: Path) -> None:
    message = _entry_error(tmp_path, f"""  - name: dept-typo
    kind: department
    unit: "{QIXIA}"
    sha256: 5e884898da28047151d0e56f8dc629
""")
    assert "entry 1 (dept-typo)" in message
    assert "sha256" in message


# ── Redaction of personal data in logs ────────────────────────────────────────────────────────────


def test_the_sample_numbers_are_what_they_claim_to_be() -> None:
    assert len(ID_NUMBER) == 18 and ID_NUMBER[:17].isdigit()
    assert ID_NUMBER_WITH_X.endswith("X")


@pytest.mark.parametrize("id_number", [ID_NUMBER, ID_NUMBER_WITH_X, ID_NUMBER_WITH_X.lower()])
def test_redact_text_masks_an_id_number(id_number: str) -> None:
    redacted = redact_text(f"applicant {id_number} refused")
    assert id_number not in redacted
    assert id_number[6:14] not in redacted  # not even the birth date survives
    assert redacted == "applicant [id-number redacted] refused"


@pytest.mark.parametrize("text", [f"tel:{MOBILE}", f"手机{MOBILE}，请回电", f"call {MOBILE}."])
def test_redact_text_masks_a_mobile_number(text: str) -> None:
    redacted = redact_text(text)
    assert MOBILE not in redacted
    assert "[phone redacted]" in redacted


def test_redact_text_masks_every_occurrence() -> None:
    redacted = redact_text(f"{ID_NUMBER} / {MOBILE} / {ID_NUMBER_WITH_X} / 18612345678")
    assert redacted == "[id-number redacted] / [phone redacted] / [id-number redacted] / [phone redacted]"


@pytest.mark.parametrize("text", [
    f"routed to {XINHE_JIAYUAN} via {MAIGAOQIAO}",                  # 12-digit division codes
    "case 3f2a9c1e-7b44-4d1a-9e0f-139123456780",                     # a UUID with a 12-digit last group
    "item 0b7f6a52-93a4-4d7e-8f55-1f0e1d2c3b4a",
    "case SJ20260930-3F2A9C1E",                                      # a case number
    "at 2026-09-30T10:00:00+08:00",
    "count 1391234567 and 139123456789",                            # 10 and 12 digits: not a mobile number
])
def test_redact_text_leaves_codes_and_ids_alone(text: str) -> None:
    assert redact_text(text) == text


def test_redact_text_leaves_a_uuid_ending_in_a_letter_and_eleven_digits_alone() -> None:
    text = "case 3f2a9c1e-7b44-4d1a-9e0f-a13912345678"
    assert redact_text(text) == text


def test_redact_personal_data_walks_nested_dicts_lists_and_tuples() -> None:
    event = {
        "event": f"refused {ID_NUMBER}",
        "case": {"community": XINHE_JIAYUAN, "applicant": {"phone": MOBILE, "ids": [ID_NUMBER, "ok"]}},
        "history": [{"note": f"called {MOBILE}"}, ("tuple", MOBILE)],
        "attempts": 3,
        "deferred": None,
    }
    redacted = redact_personal_data(None, "info", event)

    assert redacted == {
        "event": "refused [id-number redacted]",
        "case": {"community": XINHE_JIAYUAN,
                 "applicant": {"phone": "[phone redacted]", "ids": ["[id-number redacted]", "ok"]}},
        "history": [{"note": "called [phone redacted]"}, ("tuple", "[phone redacted]")],
        "attempts": 3,
        "deferred": None,
    }
    assert event["case"]["applicant"]["phone"] == MOBILE  # the caller's dict is not modified
    assert ID_NUMBER not in json.dumps(redacted, ensure_ascii=False)


# ── Events ────────────────────────────────────────────────────────────────────────────────────────

AT = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)


def case_submitted(**overrides) -> CaseSubmittedV1:
    fields = dict(
        case_id="3f2a9c1e-7b44-4d1a-9e0f-5c6d7e8f9a0b", case_number="SJ20260930-3F2A9C1E",
        community_code=XINHE_JIAYUAN, catalogue_version="2026.11.1+abcdef012345", bundle_code="migrant-bundle",
        matter_codes=("residence-permit", "employment-registration"), channel="proxy", agent_id="sw-017",
        applicant_masked_name="刘**",
        deferred_materials=(DeferredMaterial(matter_code="residence-permit", material_code="landlord-id-copy",
                                             due_date=date(2026, 10, 13)),),
        submitted_at=AT,
    )
    fields.update(overrides)
    return CaseSubmittedV1(**fields)


def item_routed(**overrides) -> ItemRoutedV1:
    fields = dict(
        item_id="7d0c8f7e-4f0e-4c57-9a43-2f0f1f6f3b11", case_id="3f2a9c1e-7b44-4d1a-9e0f-5c6d7e8f9a0b",
        case_number="SJ20260930-3F2A9C1E", matter_code="residence-permit", department_code="police",
        level="street", unit_code=MAIGAOQIAO, district_code=QIXIA, community_code=XINHE_JIAYUAN,
        status="queued", waiting_for=(), legal_deadline=datetime(2026, 10, 27, 9, 30, tzinfo=UTC),
        promised_deadline=datetime(2026, 10, 20, 9, 30, tzinfo=UTC), deadline_provisional=False,
        catalogue_version="2026.11.1+abcdef012345", occurred_at=AT,
    )
    fields.update(overrides)
    return ItemRoutedV1(**fields)


@pytest.mark.parametrize("payload", [case_submitted(), item_routed()], ids=["case-submitted", "item-routed"])
def test_a_payload_survives_the_envelope_and_json(payload) -> None:
    envelope = CloudEvent.wrap(payload, source=source_of("intake"), time=AT, event_id="evt-1")
    received = CloudEvent.model_validate_json(envelope.model_dump_json())

    assert received.type == payload.event_type
    assert received.subject == payload.subject()
    assert received.time == AT
    assert received.payload() == payload
    assert type(received.payload()) is type(payload)
    assert received.payload().routing_key() == payload.routing_key()


def test_the_envelope_names_type_subject_and_schema() -> None:
    envelope = CloudEvent.wrap(item_routed(), source="/sanji/routing", time=AT, event_id="evt-2")
    assert envelope.specversion == "1.0"
    assert envelope.type == "cn.sanji.item.routed.v1"
    assert envelope.subject == "7d0c8f7e-4f0e-4c57-9a43-2f0f1f6f3b11"
    assert envelope.dataschema == "urn:sanji:schema:cn.sanji.item.routed.v1"
    assert envelope.data["unit_code"] == MAIGAOQIAO


def test_wrap_gives_each_event_a_fresh_id() -> None:
    first = CloudEvent.wrap(case_submitted(), source="/sanji/intake", time=AT)
    second = CloudEvent.wrap(case_submitted(), source="/sanji/intake", time=AT)
    assert first.id and second.id and first.id != second.id


def test_dedupe_key_is_source_hash_id() -> None:
    envelope = CloudEvent.wrap(case_submitted(), source="/sanji/intake", time=AT, event_id="evt-42")
    assert envelope.dedupe_key() == "/sanji/intake#evt-42"
    other_source = CloudEvent.wrap(case_submitted(), source="/sanji/routing", time=AT, event_id="evt-42")
    assert other_source.dedupe_key() != envelope.dedupe_key()


@pytest.mark.parametrize("build", [case_submitted, item_routed], ids=["case-submitted", "item-routed"])
@pytest.mark.parametrize("personal_field", ["id_number", "phone", "applicant_name"])
def test_payloads_refuse_a_personal_data_field(build, personal_field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build(**{personal_field: ID_NUMBER})
    assert caught.value.errors()[0]["type"] == "extra_forbidden"
    assert caught.value.errors()[0]["loc"] == (personal_field,)


def test_an_envelope_smuggling_an_id_number_in_its_data_is_refused_on_reading() -> None:
    envelope = CloudEvent.wrap(item_routed(), source="/sanji/routing", time=AT, event_id="evt-3")
    document = json.loads(envelope.model_dump_json())
    document["data"]["id_number"] = ID_NUMBER
    received = CloudEvent.model_validate_json(json.dumps(document))
    with pytest.raises(ValidationError):
        received.payload()


def test_an_envelope_with_an_unknown_attribute_is_refused() -> None:
    document = json.loads(CloudEvent.wrap(item_routed(), source="/sanji/routing", time=AT).model_dump_json())
    document["id_number"] = ID_NUMBER
    with pytest.raises(ValidationError):
        CloudEvent.model_validate_json(json.dumps(document))


def test_an_unknown_event_type_is_refused_with_its_name() -> None:
    envelope = CloudEvent(id="evt-4", source="/sanji/elsewhere", type="cn.sanji.case.teleported.v1", time=AT,
                          data={"case_id": "x"})
    with pytest.raises(UnknownEventType) as caught:
        envelope.payload()
    assert caught.value.event_type == "cn.sanji.case.teleported.v1"


@pytest.mark.parametrize(("field", "value"), [
    ("unit_code", "3201130030"),          # not 12 digits
    ("level", "city"),                    # not a level
    ("status", "done"),                   # routing only queues or makes an item wait
])
def test_item_routed_refuses_malformed_codes(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        item_routed(**{field: value})


def test_case_submitted_needs_at_least_one_matter_and_a_known_channel() -> None:
    with pytest.raises(ValidationError):
        case_submitted(matter_codes=())
    with pytest.raises(ValidationError):
        case_submitted(channel="fax")
    assert case_submitted().routing_key() == f"case.submitted.{XINHE_JIAYUAN}"


def test_redact_text_masks_email_addresses() -> None:
    from shared.logging import redact_text

    assert redact_text("sent to liu.jinhua@example.cn ok") == "sent to [email redacted] ok"


def test_a_department_system_sees_its_own_department_only_and_one_without_a_department_sees_nothing() -> None:
    police = Principal(name="p", kind="department", unit_code="320113000000", department="police")
    nameless = Principal(name="n", kind="department", unit_code="320113000000", department=None)
    staff = Principal(name="s", kind="staff", unit_code="320113000000")
    assert police.may_see_department("police") and not police.may_see_department("hrss")
    assert not any(nameless.may_see_department(code) for code in ("police", "hrss", None))
    assert staff.may_see_department("police") and staff.may_see_department("hrss")


def test_a_department_entry_without_a_department_loads_as_one_that_names_none(tmp_path: Path) -> None:
    path = write(tmp_path, 'tokens:\n  - {name: d, kind: department, unit: "320113000000", department: "", '
                           'token: t}\n')
    principal = TokenRegistry.from_file(path).authenticate("Bearer t")
    assert principal.department is None and not principal.may_see_department("police")


def test_extension_attributes_of_other_systems_are_accepted_and_kept() -> None:
    document = json.loads(CloudEvent.wrap(item_routed(), source="/sanji/routing", time=AT).model_dump_json())
    document.update(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    tracestate="congo=t61rcWkgMzE", partitionkey="320113")
    received = CloudEvent.model_validate_json(json.dumps(document))
    assert received.traceparent == document["traceparent"]
    assert received.payload().item_id == item_routed().item_id
    again = json.loads(received.model_dump_json())
    assert (again["traceparent"], again["tracestate"], again["partitionkey"]) == (
        document["traceparent"], "congo=t61rcWkgMzE", "320113")


def test_an_envelope_without_extensions_carries_none_of_them() -> None:
    document = json.loads(CloudEvent.wrap(item_routed(), source="/sanji/routing", time=AT).model_dump_json())
    assert not {"traceparent", "tracestate", "partitionkey"} & set(document)


@pytest.mark.parametrize("traceparent", ["not-a-trace", "00-" + "0" * 31 + "-00f067aa0ba902b7-01", 42])
def test_a_malformed_trace_context_is_refused(traceparent) -> None:
    document = json.loads(CloudEvent.wrap(item_routed(), source="/sanji/routing", time=AT).model_dump_json())
    document["traceparent"] = traceparent
    with pytest.raises(ValidationError):
        CloudEvent.model_validate_json(json.dumps(document))
