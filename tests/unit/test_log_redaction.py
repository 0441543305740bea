"""Log lines never carry personal data: shapes, personal fields, remembered names, tracebacks, stdlib records."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from shared.logging import (
    configure_logging,
    forget_personal_values,
    redact_personal_data,
    redact_text,
    remember_personal_values,
)

ID_NUMBER = "11010519491231002X"
MOBILE = "13812345678"
LANDLINE = "025-12345678"
LANDLINE_RUN = "02512345678"
EMAIL = "liu.jinhua@example.cn"
NAME = "刘金花"


@pytest.fixture(autouse=True)
def _fresh_memory():
    forget_personal_values()
    yield
    forget_personal_values()


@pytest.mark.parametrize("secret", [ID_NUMBER, ID_NUMBER.lower(), MOBILE, "+8613812345678", LANDLINE,
                                    LANDLINE_RUN, "0512-6543210", EMAIL])
def test_shapes_are_masked_inside_text(secret):
    assert secret not in redact_text(f"failed for {secret}, retrying")


@pytest.mark.parametrize("harmless", ["case 320113003021", "took 0.0123456789 s", "SJ20261206-AB12CD34",
                                      "2026-12-06T20:10:00Z", "port 5672", "item 7f1c2d4e-0000-4000-8000-0123456789ab"])
def test_ids_codes_and_numbers_that_are_not_personal_stay(harmless):
    assert redact_text(harmless) == harmless


def test_personal_fields_are_replaced_whatever_their_value_and_nested_values_are_scrubbed():
    event = redact_personal_data(None, "info", {
        "event": f"contact {MOBILE}", "phone": "12345", "applicant_name": NAME,
        "detail": {"reporter": {"name": NAME}, "notes": [f"call {LANDLINE}", (ID_NUMBER,)]},
        "error": ValueError(f"bad id {ID_NUMBER}"), "count": 3})
    text = json.dumps(event, ensure_ascii=False)
    for secret in (MOBILE, NAME, LANDLINE, ID_NUMBER, "12345"):
        assert secret not in text
    assert event["count"] == 3


def test_remembered_names_are_masked_anywhere():
    remember_personal_values(NAME, None, "x")
    assert NAME not in redact_text(f"INSERT failed: Failing row contains ({NAME}, ...)")
    assert NAME not in redact_text(f"联系人{NAME}女士")  # Chinese has no word boundaries
    assert redact_text("x marks the spot") == "x marks the spot"  # one character is never remembered


def test_a_remembered_number_inside_a_longer_code_is_left_alone():
    remember_personal_values("13912345678", "Anna Lee")
    case = "case 3f2a9c1e-7b44-4d1a-9e0f-139123456780"
    assert redact_text(case) == case
    assert "Anna Lee" not in redact_text("for Anna Lee, today")
    assert redact_text("Hanna Leed") == "Hanna Leed"


def _capture(level="DEBUG"):
    configure_logging("json", level)
    stream = io.StringIO()
    root = logging.getLogger()
    root.handlers[0].stream = stream
    return stream


def test_structlog_and_stdlib_lines_and_their_tracebacks_are_scrubbed(caplog):
    remember_personal_values(NAME)
    stream = _capture()
    caplog.set_level(logging.DEBUG)
    try:
        try:
            raise RuntimeError(f"insert failed for {NAME} {LANDLINE} {ID_NUMBER}")
        except RuntimeError as inner:
            raise KeyError(f"wrapped {MOBILE} {EMAIL}") from inner
    except KeyError:
        structlog.get_logger("test").exception("handler failed", phone=MOBILE)
        logging.getLogger("somelib").exception("stdlib failure for %s at %s", NAME, LANDLINE_RUN)
    logging.getLogger("somelib").debug("debug %s", {"phone": MOBILE})
    text = stream.getvalue() + caplog.text + "".join(record.getMessage() for record in caplog.records)
    assert "Traceback" in stream.getvalue() and "handler failed" in text and "stdlib failure" in text
    for secret in (NAME, LANDLINE, LANDLINE_RUN, ID_NUMBER, MOBILE, EMAIL):
        assert secret not in text, secret
    configure_logging("console", "INFO")
