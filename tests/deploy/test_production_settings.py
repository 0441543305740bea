"""The deploy files would start: the settings docker-compose.yml and the Kubernetes prod overlay give each
service pass the production profile's checks, once their secrets hold real values."""

from __future__ import annotations

import base64
import hashlib
import os
import re

import pytest
import yaml

from services.console.kiosk.backend import DEV_CONSOLE_TOKEN
from services.console.settings import ConsoleSettings
from shared.config import REPO_ROOT, SERVICES, Settings, nameko_config
from shared.production import production_problems
from tests.deploy.test_k8s_manifests import kubectl_kustomize

SECRET_VALUES = {  # what the secret store would hold
    "SANJI_PII_KEY": "a-real-secret-from-the-vault-0123456789",
    "SANJI_DATA_KEYS": "k2026-12:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "SANJI_EVALUATION_LINK_KEY": "a-real-link-key-from-the-vault-0123456789",
    "SANJI_ASSERTION_KEY": "a-real-assertion-key-from-the-vault-0123456789abcdef",
    "SANJI_CONSOLE_SERVICE_TOKEN": "a-real-console-token-from-the-vault-0123456789",
}


@pytest.fixture
def tokens_file(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n  - name: kiosk-1\n    kind: kiosk\n    unit: \"320113003021\"\n"
                    f"    sha256: {hashlib.sha256(b'a-real-token').hexdigest()}\n")
    return path


def problems_with(monkeypatch, environment: dict[str, str], service: str) -> list[str]:
    for name in list(os.environ):
        if name.startswith(("SANJI_", "PGSSL")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return production_problems(service, Settings.from_env(service), extra_checks=[])


def console_settings(monkeypatch, environment: dict[str, str]) -> tuple[ConsoleSettings, dict]:
    """What the console itself checks at start (services/console/settings.py, kiosk/backend.py), beyond
    the production profile: it raises on a missing or development assertion key or service token."""
    for name in list(os.environ):
        if name.startswith(("SANJI_", "PGSSL")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    config = nameko_config("console", Settings.from_env("console"))
    settings = ConsoleSettings.from_config(config)
    assert settings.production and settings.secure_cookies
    token = config.get("SANJI_CONSOLE_SERVICE_TOKEN")
    assert token and token != DEV_CONSOLE_TOKEN, "the console needs its own SANJI_CONSOLE_SERVICE_TOKEN"
    return settings, config


def _console_reaches_the_apis(settings: ConsoleSettings, addresses: dict[str, str]) -> None:
    """Every API the console calls is a service of the deployment, at the address it serves on."""
    assert set(settings.service_urls) <= set(SERVICES)
    assert settings.service_urls == {name: addresses[name] for name in settings.service_urls}


def _env_example() -> dict[str, str]:
    values = {}
    for line in (REPO_ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name] = SECRET_VALUES.get(name, "a-real-secret" if value == "change-me" else value)
    return values


def _substitute(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{([^}]+)\}", lambda m: _expand(m.group(1), variables), text)


def _expand(expression: str, variables: dict[str, str]) -> str:
    name, operator, rest = re.match(r"([A-Z0-9_]+)(?:(:?[-?])(.*))?$", expression).groups()
    value = variables.get(name, "")
    return value if value or operator is None or "?" in operator else rest


@pytest.mark.parametrize("service", SERVICES)
def test_compose_settings_pass_the_production_checks(service, monkeypatch, tokens_file):
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    variables = _env_example()
    # The shared settings and the service's own (its broker user, docs/security.md).
    environment = {name: _substitute(str(value), variables)
                   for name, value in compose["services"][service]["environment"].items()}
    assert environment["SANJI_PROFILE"] == "production"
    assert environment["SANJI_TOKENS_FILE"] == "/run/secrets/sanji-tokens"
    environment["SANJI_TOKENS_FILE"] = str(tokens_file)  # where the Compose secret is mounted
    assert problems_with(monkeypatch, environment, service) == []
    if service == "console":
        settings, _ = console_settings(monkeypatch, environment)
        # Every container listens on SANJI_HTTP_PORT, reached by its service name on the project network.
        port = environment["SANJI_HTTP_PORT"]
        _console_reaches_the_apis(settings, {name: f"http://{name}:{port}" for name in compose["services"]})
    else:
        assert not any(name.startswith("SANJI_CONSOLE_") for name in environment), (
            f"{service} gets the console's settings (its machine token is the console's alone)")


FAKE_SECRETS = {
    ("sanji-rabbitmq-default-user", "username"): "default_user_x1y2z3",
    ("sanji-rabbitmq-default-user", "password"): "generated-password",
    ("sanji-db-app", "uri"): "postgresql://app:generated@sanji-db-rw.sanji:5432/app",
    ("sanji-db-app", "username"): "app", ("sanji-db-app", "password"): "generated",
    ("sanji-pii", "pii-key"): SECRET_VALUES["SANJI_PII_KEY"],
    ("sanji-pii", "data-keys"): SECRET_VALUES["SANJI_DATA_KEYS"],
    ("sanji-notification", "sms-api-key"): "sms-key", ("sanji-notification", "smtp-username"): "sanji",
    ("sanji-notification", "smtp-password"): "smtp-password",
    **{("sanji-bus-passwords", service): f"bus-{service}-password" for service in SERVICES},
    ("sanji-evaluation", "SANJI_EVALUATION_LINK_KEY"): SECRET_VALUES["SANJI_EVALUATION_LINK_KEY"],
    ("sanji-assertion", "assertion-key"): SECRET_VALUES["SANJI_ASSERTION_KEY"],
    ("sanji-console", "SANJI_CONSOLE_SERVICE_TOKEN"): SECRET_VALUES["SANJI_CONSOLE_SERVICE_TOKEN"],
}


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_prod_settings_pass_the_production_checks(service, monkeypatch, tokens_file):
    objects = kubectl_kustomize(REPO_ROOT / "deploy" / "k8s" / "overlays" / "prod")
    config = next(obj for obj in objects if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "sanji-config")
    deployment = next(obj for obj in objects if obj["kind"] == "Deployment" and obj["metadata"]["name"] == service)
    environment = dict(config["data"])
    for entry in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in entry:
            value = re.sub(r"\$\(([A-Z0-9_]+)\)", lambda m: environment[m.group(1)], entry["value"])
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            value = FAKE_SECRETS[(ref["name"], ref["key"])]
        environment[entry["name"]] = value
    assert environment["SANJI_PROFILE"] == "production"
    environment["SANJI_TOKENS_FILE"] = str(tokens_file)  # where the tokens secret is mounted
    assert problems_with(monkeypatch, environment, service) == []
    if service == "console":
        settings, _ = console_settings(monkeypatch, environment)
        assert settings.public_url and settings.public_url.startswith("https://"), "TLS ends at the Ingress"
        services = {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == "Service"}
        _console_reaches_the_apis(settings, {name: f"http://{name}" for name, obj in services.items()
                                             if [p["port"] for p in obj["spec"]["ports"]] == [80]})
    # And the same settings with the development tokens, over plain AMQP, are refused.
    environment.update(SANJI_TOKENS_FILE=str(REPO_ROOT / "config" / "dev-tokens.yaml"),
                       SANJI_AMQP_URI=environment["SANJI_AMQP_URI"].replace("amqps://", "amqp://"))
    assert len(problems_with(monkeypatch, environment, service)) == 2
