"""The escalation API's OpenAPI document comes from the models that validate its traffic: the committed copy,
the served one and the entrypoints must agree."""

from __future__ import annotations

import pytest
import requests
from nameko.testing.utils import find_free_port

from services.escalation import api
from services.escalation.service import EscalationService
from shared.openapi import HEALTH_OPERATIONS
from shared.service_base import SanjiService
from tests.support.api_routes import served_routes
from tests.support.escalation_harness import HOOKED

# The committed document and the route set in general are checked for every service in test_api_documents.py;
# here, what only escalation has: one generic route serving each report action, and its served document.


def test_every_report_action_is_documented_under_the_generic_route():
    own = served_routes(EscalationService) - served_routes(SanjiService) - {("GET", "/openapi.json")}
    generic = ("POST", "/v1/failure-reports/{report_id}/{action_path}")
    assert generic in own
    documented = {(op.method, op.path) for op in api.OPERATIONS} - {(op.method, op.path) for op in HEALTH_OPERATIONS}
    actions = {route for route in documented if route[1].startswith("/v1/failure-reports/{report_id}/")}
    assert {path.rsplit("/", 1)[1] for _, path in actions} == set(api.REPORT_ACTION_PATHS.values())
    assert documented - actions == own - {generic}


@pytest.mark.integration
def test_the_served_document_is_the_generated_one(container_factory, make_service_config):
    port = find_free_port()
    container_factory(EscalationService, make_service_config("escalation", web_port=port, **HOOKED)).start()
    served = requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
    assert served == api.escalation_openapi()
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["service"] == "escalation"
