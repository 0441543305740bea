"""Every series the alerting rules and the Grafana dashboard query is one the services export, with the
labels they match on: a routing container handles an event and answers a request, and its /metrics (parsed
by prometheus_client) must name each. A renamed metric or label fails here, not on a dark dashboard.

Routing's scrape has every kernel series (HTTP, consumers, relay, outbox, broker queues) and routing's own
gauges; no other service exports series of its own.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
import yaml
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import find_free_port
from prometheus_client.parser import text_string_to_metric_families

from services.routing.service import RoutingService
from shared.config import REPO_ROOT
from tests.integration.test_metrics import case_event
from tests.support.bus import publish_raw

pytestmark = pytest.mark.integration

MONITORING = REPO_ROOT / "deploy" / "k8s" / "monitoring"
# Labels Prometheus adds to every series from the target (the PodMonitor's jobLabel gives `job`).
TARGET_LABELS = {"namespace", "job", "pod", "instance", "container", "endpoint"}
SELECTOR = re.compile(r"\b(sanji_[a-z0-9_]+)\b(?:\{([^}]*)\})?")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def queries() -> dict[str, str]:
    """{where: PromQL} for every alert and recording rule, dashboard panel target and template query."""
    found = {}
    for document in yaml.safe_load_all((MONITORING / "prometheusrules.yaml").read_text(encoding="utf-8")):
        for group in document["spec"]["groups"]:
            for rule in group["rules"]:
                found[f"rule {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    dashboard = json.loads((MONITORING / "dashboard" / "sanji.json").read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found[f"variable {variable['name']}"] = variable["query"]["query"]
    return found


def test_the_queries_are_found():
    """A control on the extraction: the rules and panels are read, and each names a series."""
    found = queries()
    assert sum(where.startswith("rule ") for where in found) >= 10
    assert sum(where.startswith("panel ") for where in found) >= 15
    for where, expression in found.items():
        assert SELECTOR.search(expression), f"{where}: no sanji series in {expression!r}"


def test_every_queried_series_and_label_is_exported(container_factory, make_service_config, rabbit_config):
    port = find_free_port()
    container = container_factory(RoutingService, make_service_config("routing", web_port=port))
    container.start()
    event, routing_key = case_event("residence-permit")
    with entrypoint_waiter(container, "on_case_submitted"):
        publish_raw(rabbit_config["AMQP_URI"], event.model_dump_json(), routing_key)
    requests.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    exported: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)

    missing = []
    for where, expression in queries().items():
        unquoted = re.sub(r'"[^"]*"', '""', expression)
        named = set()
        for name, matchers in SELECTOR.findall(unquoted):
            named.add(name)
            if name not in exported:
                missing.append(f"{where}: {name} is not exported")
                continue
            for label in MATCHER.findall(matchers or ""):
                if label not in exported[name] | TARGET_LABELS:
                    missing.append(f"{where}: {name} has no label {label!r}")
        # Grouping labels must exist on at least one of the expression's series (or come from the target).
        available = set().union(*(exported.get(name, set()) for name in named)) | TARGET_LABELS | {"le"}
        for grouping in GROUPING.findall(unquoted):
            for label in filter(None, (part.strip() for part in grouping.split(","))):
                if label not in available:
                    missing.append(f"{where}: grouped by {label!r}, which none of {sorted(named)} has")
    assert missing == [], "\n".join(missing)
