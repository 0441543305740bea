"""The escalation API's OpenAPI document comes from the models that validate its traffic: the committed copy,
the served one and the entrypoints must agree."""

from __future__ import annotations

import inspect
import json
import re

import pytest
import requests
from nameko.testing.utils import find_free_port
from nameko.web.handlers import HttpRequestHandler

from services.escalation import api
from services.escalation.service import EscalationService
from shared.config import REPO_ROOT
from shared.service_base import SanjiService
from tests.support.escalation_harness import HOOKED


def served_routes(service_class) -> set[tuple[str, str]]:
    served = set()
    for _, attribute in inspect.getmembers(service_class):
        for entrypoint in getattr(attribute, "nameko_entrypoints", ()):
            if isinstance(entrypoint, HttpRequestHandler):
                served.add((entrypoint.method, re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", entrypoint.url)))
    return served


def test_the_committed_document_is_the_generated_one():
    committed = json.loads((REPO_ROOT / "docs" / "openapi" / "escalation.json").read_text(encoding="utf-8"))
    assert committed == api.escalation_openapi(), "run `.venv/bin/sanji write-docs`"


def test_the_documented_operations_are_exactly_the_served_ones():
    own = served_routes(EscalationService) - served_routes(SanjiService) - {("GET", "/openapi.json")}
    generic = ("POST", "/v1/failure-reports/{report_id}/{action_path}")
    assert generic in own
    documented = {(op.method, op.path) for op in api.OPERATIONS} - {("GET", "/health")}
    actions = {route for route in documented if route[1].startswith("/v1/failure-reports/{report_id}/")}
    assert {path.rsplit("/", 1)[1] for _, path in actions} == set(api.REPORT_ACTION_PATHS.values())
    assert documented - actions == own - {generic}
    references = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(api.escalation_openapi()))
    assert set(references) <= set(api.escalation_openapi()["components"]["schemas"])


@pytest.mark.integration
def test_the_served_document_is_the_generated_one(container_factory, make_service_config):
    port = find_free_port()
    container_factory(EscalationService, make_service_config("escalation", web_port=port, **HOOKED)).start()
    served = requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
    assert served == api.escalation_openapi()
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["service"] == "escalation"
