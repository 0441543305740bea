"""The run-wide check of published events (tests/support/asyncapi_check.py) can fail."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shared.events import CaseSubmittedV1, CloudEvent
from tests.support.asyncapi_check import PublishedEvents

AT = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


def envelope() -> CloudEvent:
    return CloudEvent.wrap(CaseSubmittedV1(case_id="c", case_number="n", community_code="320113003021",
                                           catalogue_version="v", bundle_code=None, matter_codes=("residence-permit",),
                                           channel="kiosk", applicant_masked_name="刘**", submitted_at=AT),
                           source="/sanji/intake", time=AT)


def test_a_described_event_passes_and_is_counted():
    published = PublishedEvents()
    published.check("case.submitted.320113003021", envelope().model_dump_json())
    assert published.take_problems() == []
    assert published.counts == {"cn.sanji.case.submitted.v1": 1}


def test_an_event_the_document_does_not_describe_is_a_problem():
    published = PublishedEvents()
    document = json.loads(envelope().model_dump_json())
    document["data"]["matter_codes"] = "residence-permit"  # a string where the schema wants a list
    published.check("case.submitted.320113003021", json.dumps(document))
    published.check("case.elsewhere", envelope().model_dump_json())  # the wrong routing key
    published.check("x", "not json")
    found = published.take_problems()
    assert len(found) == 3 and "matter_codes" in found[0] and "routing key" in found[1] and "not JSON" in found[2]
    assert published.take_problems() == []  # reported once
