"""deploy/k8s/monitoring: the PodMonitors scrape every service where it serves /metrics, the alerting rules
cover what an operator must act on, and the Grafana dashboard ships as the sidecar's ConfigMap.

Whether the rules and panels name series the services really export is checked against a real scrape by
tests/integration/test_monitoring_queries.py.
"""

from __future__ import annotations

import copy
import json
import re

import pytest

from tests.deploy.test_k8s_manifests import K8S, objects_of, schema_errors, service_deployments, service_names

MONITORING = K8S / "monitoring"
DASHBOARD = MONITORING / "dashboard" / "sanji.json"


def _selects(selector: dict, labels: dict) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for requirement in selector.get("matchExpressions", []):
        present, value = requirement["key"] in labels, labels.get(requirement["key"])
        operator = requirement["operator"]
        if ((operator == "In" and value not in requirement["values"])
                or (operator == "NotIn" and present and value in requirement["values"])
                or (operator == "Exists" and not present) or (operator == "DoesNotExist" and present)):
            return False
    return True


def test_every_service_is_scraped_once_where_it_serves_metrics():
    monitors = objects_of("prod", "PodMonitor")
    assert monitors
    for name in service_names():
        pod = service_deployments("prod")[name]["spec"]["template"]
        scraping = [monitor for monitor in monitors.values() if _selects(monitor["spec"]["selector"],
                                                                         pod["metadata"]["labels"])]
        assert len(scraping) == 1, f"{name} is scraped by {[m['metadata']['name'] for m in scraping]}"
        (monitor,) = scraping
        # `job` is the service: the rules and the dashboard group by it.
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"
        assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == name
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        assert endpoint["path"] == pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
        ports = {port["name"]: port["containerPort"] for port in pod["spec"]["containers"][0]["ports"]}
        scraped = ports[endpoint["port"]] if "port" in endpoint else endpoint["targetPort"]
        assert str(scraped) == pod["metadata"]["annotations"]["prometheus.io/port"], name
    assert objects_of("dev", "PodMonitor") == {}, "dev clusters need not run the Prometheus Operator"


def test_the_monitoring_schemas_reject_broken_objects():
    """A control: the vendored PodMonitor and PrometheusRule schemas are really applied."""
    monitor = copy.deepcopy(objects_of("prod", "PodMonitor")["sanji-services"])
    monitor["spec"]["podMetricsEndpoints"][0]["portName"] = "http"
    assert any("portName" in error for error in schema_errors(monitor))
    rule = copy.deepcopy(objects_of("prod", "PrometheusRule")["sanji"])
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    assert any("for" in error for error in schema_errors(rule))


def _rules() -> list[dict]:
    (rule,) = objects_of("prod", "PrometheusRule").values()
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_alerts_cover_what_an_operator_must_act_on():
    alerts = {rule["alert"]: rule for rule in _rules()}
    expressions = " ".join(rule["expr"] for rule in alerts.values())
    for series in ("sanji_outbox_oldest_unpublished_age_seconds", "sanji_outbox_lag_seconds_bucket",
                   "sanji_relay_failures_total", "sanji_queue_consumers", "sanji_routing_items_overdue",
                   "sanji_messages_failed_total", "sanji_http_requests_total"):
        assert series in expressions, f"no alert on {series}"
    assert 'sanji_queue_messages{queue="sanji.dead-letters"}' in alerts["SanjiDeadLetters"]["expr"]
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        assert rule["expr"].count("(") == rule["expr"].count(")"), name
        # Gauges read from the shared database or broker are the same on every replica: never summed.
        for gauge in ("sanji_outbox_oldest_unpublished_age_seconds", "sanji_queue_messages", "sanji_queue_consumers",
                      "sanji_routing_items_overdue"):
            assert not re.search(rf"sum\b[^(]*\(\s*{gauge}", rule["expr"]), (name, gauge)


def test_the_dashboard_ships_as_the_grafana_sidecars_config_map():
    config_map = objects_of("prod", "ConfigMap")["sanji-grafana-dashboard"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "sanji"
    dashboard = json.loads(config_map["data"]["sanji.json"])
    assert dashboard == json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert panels and all(panel["targets"] and all(t["expr"] for t in panel["targets"]) for panel in panels)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


@pytest.mark.parametrize("name", ["PodMonitor", "PrometheusRule"])
def test_the_monitoring_objects_live_with_the_services(name):
    for obj in objects_of("prod", name).values():
        assert obj["metadata"]["namespace"] == "sanji"
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "sanji"
