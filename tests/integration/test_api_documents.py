"""The OpenAPI and AsyncAPI documents come from the models that validate the traffic; these tests fail when
the committed documents, the served document or the entrypoints drift from them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from nameko.web.handlers import HttpRequestHandler

from services.intake.api import OPERATIONS, intake_openapi
from services.intake.service import IntakeService
from shared.asyncapi import asyncapi_document
from shared.config import REPO_ROOT
from shared.events import PAYLOAD_TYPES, CaseSubmittedV1, ItemRoutedV1

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
SAMPLES = {
    CaseSubmittedV1: CaseSubmittedV1(case_id="c", case_number="n", community_code="320113003021",
                                     catalogue_version="v", bundle_code=None, matter_codes=("residence-permit",),
                                     channel="kiosk", applicant_masked_name="刘**", submitted_at=NOW),
    ItemRoutedV1: ItemRoutedV1(item_id="i", case_id="c", case_number="n", matter_code="residence-permit",
                               department_code="police", level="street", unit_code="320113003000",
                               district_code="320113000000", community_code="320113003021", status="queued",
                               legal_deadline=NOW, promised_deadline=NOW, deadline_provisional=False,
                               catalogue_version="v", occurred_at=NOW),
}


def committed(name: str) -> dict:
    return json.loads((REPO_ROOT / "docs" / name).read_text(encoding="utf-8"))


def test_committed_openapi_matches_the_models():
    assert committed("openapi.json") == intake_openapi(), "run `.venv/bin/sanji write-docs`"


def test_committed_asyncapi_matches_the_models():
    assert committed("asyncapi.json") == asyncapi_document(), "run `.venv/bin/sanji write-docs`"


def test_every_event_type_is_documented_with_the_routing_key_it_is_published_with():
    channels = asyncapi_document()["channels"]
    documented = {channel["messages"][name]["$ref"].rsplit("/", 1)[1]: channel["address"]
                  for name_, channel in channels.items() for name in channel["messages"]}
    assert len(documented) == len(PAYLOAD_TYPES)
    for model in PAYLOAD_TYPES.values():
        assert documented[model.event_type.removeprefix("cn.sanji.").replace(".", "_")] == model.routing_key_template
    assert SAMPLES[CaseSubmittedV1].routing_key() == "case.submitted.320113003021"
    assert SAMPLES[ItemRoutedV1].routing_key() == "item.routed.320113000000.street.320113003000.police"


def test_the_documented_operations_are_exactly_the_served_ones():
    served = set()
    for attribute in vars(IntakeService).values():
        for entrypoint in getattr(attribute, "nameko_entrypoints", ()):
            if isinstance(entrypoint, HttpRequestHandler) or entrypoint.__class__.__name__ == "HttpRequestHandler":
                path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", entrypoint.url)
                served.add((entrypoint.method, path))
    documented = {(operation.method, operation.path) for operation in OPERATIONS}
    assert documented <= served
    assert served - documented == {("GET", "/openapi.json")}


def test_every_reference_in_the_openapi_document_resolves():
    document = intake_openapi()
    references = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(document))
    assert references
    assert set(references) <= set(document["components"]["schemas"])


@pytest.mark.integration
def test_the_served_openapi_document_is_the_generated_one(container_factory, make_service_config, web_config_port,
                                                          web_session):
    container_factory(IntakeService, make_service_config("intake", web_port=web_config_port)).start()
    assert web_session.get("/openapi.json").json() == intake_openapi()
