"""The OpenAPI and AsyncAPI documents come from the models that validate the traffic; these tests fail when
the committed documents, the served document or the entrypoints drift from them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from services.escalation import api as escalation_api
from services.escalation.service import EscalationService
from services.evaluation import api as evaluation_api
from services.evaluation.service import EvaluationService
from services.intake import api as intake_api
from services.intake.service import IntakeService
from services.notification import api as notification_api
from services.notification.service import NotificationService
from services.routing import api as routing_api
from services.routing.service import RoutingService
from services.subscriptions import api as subscriptions_api
from services.subscriptions.service import SubscriptionsService
from shared.asyncapi import asyncapi_document
from shared.config import REPO_ROOT
from shared.event_catalogue import event_types
from shared.events import PAYLOAD_TYPES, CaseSubmittedV1, ItemRoutedV1
from tests.support.api_routes import served_routes

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


HTTP_APIS = {
    "intake": (IntakeService, intake_api.OPERATIONS, intake_api.intake_openapi),
    "routing": (RoutingService, routing_api.OPERATIONS, routing_api.routing_openapi),
    "escalation": (EscalationService, escalation_api.OPERATIONS, escalation_api.escalation_openapi),
    "notification": (NotificationService, notification_api.OPERATIONS, notification_api.notification_openapi),
    "evaluation": (EvaluationService, evaluation_api.OPERATIONS, evaluation_api.evaluation_openapi),
    "subscriptions": (SubscriptionsService, subscriptions_api.OPERATIONS, subscriptions_api.subscriptions_openapi),
}


@pytest.mark.parametrize("service", sorted(HTTP_APIS))
def test_committed_openapi_matches_the_models(service):
    generate = HTTP_APIS[service][2]
    assert committed(f"openapi/{service}.json") == generate(), "run `.venv/bin/sanji write-docs`"


def test_committed_asyncapi_matches_the_models():
    assert committed("asyncapi.json") == asyncapi_document(), "run `.venv/bin/sanji write-docs`"


def test_committed_event_catalogue_matches_the_models():
    assert committed("event-types.json") == event_types(), "run `.venv/bin/sanji write-docs`"


def test_every_event_type_is_documented_with_the_routing_key_it_is_published_with():
    channels = asyncapi_document()["channels"]
    documented = {channel["messages"][name]["$ref"].rsplit("/", 1)[1]: channel["address"]
                  for name_, channel in channels.items() for name in channel["messages"]}
    assert len(documented) == len(PAYLOAD_TYPES)
    for model in PAYLOAD_TYPES.values():
        assert documented[model.event_type.removeprefix("cn.sanji.").replace(".", "_")] == model.routing_key_template
    assert SAMPLES[CaseSubmittedV1].routing_key() == "case.submitted.320113003021"
    assert SAMPLES[ItemRoutedV1].routing_key() == "item.routed.320113000000.street.320113003000.police"


@pytest.mark.parametrize("service", sorted(HTTP_APIS))
def test_the_documented_operations_are_exactly_the_served_ones(service):
    service_class, operations, _ = HTTP_APIS[service]
    served = served_routes(service_class)
    documented = {(operation.method, operation.path) for operation in operations}
    # A route with a variable action (routing's {action_name}, escalation's {action_path}) serves every
    # documented action path under it.
    generic = {route for route in served if re.search(r"/\{action_(?:name|path)\}$", route[1])}
    concrete = {(method, path) for method, path in documented
                if not any(path.rsplit("/", 1)[0] == g[1].rsplit("/", 1)[0] and method == g[0] for g in generic)}
    assert concrete <= served
    # /openapi.json and /metrics (Prometheus text) describe the API and the process; they are not API operations.
    assert served - documented - generic == {("GET", "/openapi.json"), ("GET", "/metrics")}
    assert len(documented) == len(operations)


@pytest.mark.parametrize("service", sorted(HTTP_APIS))
def test_the_openapi_document_is_valid_openapi_3_1(service):
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    document = committed(f"openapi/{service}.json")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    broken = dict(document, paths={"/v1/x": {"get": {"responses": {"200": {"description": "ok"}}, "bad": 1}}})
    with pytest.raises(OpenAPIValidationError):  # the validator is not a formality
        validate(broken)


@pytest.mark.parametrize("service", sorted(HTTP_APIS))
def test_every_operation_has_an_id_errors_and_its_security(service):
    document = committed(f"openapi/{service}.json")
    assert document["servers"] and all(server["url"].startswith("http") for server in document["servers"])
    assert document["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    ids = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            ids.append(operation["operationId"])
            errors = [status for status in operation["responses"] if int(status) >= 400]
            # Liveness has no error answer: a process that is not alive does not answer at all.
            assert errors or path == "/health/live", f"{method.upper()} {path} documents no error response"
            for status in errors:
                assert "application/problem+json" in operation["responses"][status]["content"], (path, status)
            if operation["security"]:
                assert "401" in operation["responses"], f"{method.upper()} {path}: authenticated, no 401"
            else:
                assert path.startswith("/health") or path.startswith("/v1/rating-links"), \
                    f"{method.upper()} {path} is documented as open to anyone"
    assert len(ids) == len(set(ids)), "operationId must be unique"


@pytest.mark.parametrize("service", sorted(HTTP_APIS))
def test_every_reference_in_the_openapi_document_resolves(service):
    document = HTTP_APIS[service][2]()
    references = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(document))
    assert references
    assert set(references) <= set(document["components"]["schemas"])


@pytest.mark.integration
def test_the_served_openapi_document_is_the_generated_one(container_factory, make_service_config, web_config_port,
                                                          web_session):
    container_factory(IntakeService, make_service_config("intake", web_port=web_config_port)).start()
    assert web_session.get("/openapi.json").json() == intake_api.intake_openapi()


ASYNCAPI_SCHEMA = REPO_ROOT / "tests" / "deploy" / "schemas" / "asyncapi-3.0.0.json"


def test_the_asyncapi_document_is_valid_asyncapi_3():
    """Against the official AsyncAPI 3.0.0 JSON Schema (vendored from @asyncapi/specs, tests/deploy/schemas)."""
    import jsonschema

    validator = jsonschema.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8")))
    document = committed("asyncapi.json")
    assert [error.message for error in validator.iter_errors(document)] == []
    # The validator is not a formality: AsyncAPI 2's `publish` is no AsyncAPI 3 action.
    broken = dict(document, operations={"x": {"action": "publish", "channel": {"$ref": "#/channels/x"}}})
    assert list(validator.iter_errors(broken))


def test_each_event_is_sent_by_its_owners_and_received_by_its_queues():
    from shared.asyncapi import consumer_queues_of
    from shared.bus import EVENT_OWNERS

    document = committed("asyncapi.json")
    sends, receives = {}, {}
    for operation in document["operations"].values():
        channel = operation["channel"]["$ref"].rsplit("/", 1)[1]
        assert operation["messages"] == [{"$ref": f"#/channels/{channel}/messages/{channel}"}]
        kind = sends if operation["action"] == "send" else receives
        kind.setdefault(channel, set()).add(operation["title"].split(" ", 1)[0])
    for model in PAYLOAD_TYPES.values():
        channel = model.event_type.removeprefix("cn.sanji.").replace(".", "_")
        assert sends[channel] == set(EVENT_OWNERS[model.event_type]), model.event_type
        assert receives.get(channel, set()) == set(consumer_queues_of(model.routing_key_template))
