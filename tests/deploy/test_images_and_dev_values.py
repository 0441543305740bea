"""Every image the stack runs is pinned by digest, and no development credential reaches a non-development deployment.

Images: the Dockerfile's base, docker-compose.yml's services and every image in the rendered Kubernetes manifests
(containers, init containers, the RabbitmqCluster's and the CloudNativePG Cluster's images). A tag moves; a digest
names exactly what was tested. The one exemption is Sanji's own image, built from this repository and pinned per
release by the deployment (`kustomize edit set image sanji=...@sha256:...`, `SANJI_IMAGE_TAG`).

Development values: every token, key and broker password of config/dev-tokens.yaml, config/dev-keys.yaml and
config/dev-bus-users.yaml (and those files' paths) is absent from the rendered prod overlay, the migration Job and
docker-compose.yml (which runs with the production profile by default).
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.test_image_context import parse_dockerfile
from tests.deploy.test_k8s_manifests import REPO, render

DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
# Images built from this repository: pinned per release by whoever deploys, not here.
OWN_IMAGES = re.compile(r"^(sanji|registry\.example\.invalid/sanji/sanji)(:[^@]+)?$|^sanji:\$\{SANJI_IMAGE_TAG")
NON_DEV = ("prod", "migrate")


def _k8s_images(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("image", "imageName") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_k8s_images(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_k8s_images(item))
    return found


def kubernetes_images(name: str) -> set[str]:
    return {image for obj in render(name) for image in _k8s_images(obj)}


def compose_images() -> set[str]:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    return {service["image"] for service in compose["services"].values()}


def dockerfile_images() -> set[str]:
    _, stages = parse_dockerfile((REPO / "deploy" / "docker" / "Dockerfile").read_text(encoding="utf-8"))
    return {stage.image for stage in stages if stage.image not in {s.name for s in stages}}


def unpinned(images: set[str]) -> list[str]:
    return sorted(image for image in images if not DIGEST.match(image) and not OWN_IMAGES.match(image))


@pytest.mark.parametrize("overlay", ["dev", "prod", "migrate"])
def test_every_kubernetes_image_is_pinned_by_digest(overlay):
    images = kubernetes_images(overlay)
    assert any("rabbitmq" in image for image in images) or overlay == "migrate"
    assert unpinned(images) == []


def test_every_compose_and_dockerfile_image_is_pinned_by_digest():
    assert unpinned(compose_images()) == []
    base = dockerfile_images()
    assert base and unpinned(base) == []


def test_the_digest_check_catches_a_tag():
    """A control: a bare tag, or a digest that is not one, fails."""
    assert unpinned({"rabbitmq:4.1-management", "postgres:16@sha256:abc", "sanji:dev"}) == [
        "postgres:16@sha256:abc", "rabbitmq:4.1-management"]


def test_the_broker_is_rabbitmq_4():
    """RabbitMQ 4.x, the same image in compose and Kubernetes."""
    (broker,) = {image for image in compose_images() if image.startswith("rabbitmq:")}
    assert re.match(r"rabbitmq:4\.\d+-management@", broker), broker
    assert {image for image in kubernetes_images("prod") if image.startswith("rabbitmq:")} == {broker}


# --- development values --------------------------------------------------------------------------------------

def _strings(node) -> set[str]:
    if isinstance(node, dict):
        return set().union(*(_strings(value) for value in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_strings(item) for item in node)) if node else set()
    return {node} if isinstance(node, str) else set()


def development_values() -> set[str]:
    """Every secret value of the development files: tokens, keys, broker passwords."""
    config = REPO / "config"
    tokens = yaml.safe_load((config / "dev-tokens.yaml").read_text(encoding="utf-8"))["tokens"]
    keys = yaml.safe_load((config / "dev-keys.yaml").read_text(encoding="utf-8"))
    users = yaml.safe_load((config / "dev-bus-users.yaml").read_text(encoding="utf-8"))["users"]
    values = {entry["token"] for entry in tokens if "token" in entry}
    values |= {keys["pii_key"], keys["assertion_key"]} | {entry["key"] for entry in keys["data_keys"]}
    values |= set(users.values())
    values |= _strings({name: value for name, value in keys.items() if name.endswith("key")})
    assert len(values) > 10 and all(len(value) >= 8 for value in values), values
    return values


def leaked(text: str) -> list[str]:
    found = sorted(value for value in development_values() if value in text)
    found += [path for path in ("dev-tokens.yaml", "dev-keys.yaml", "dev-bus-users.yaml") if path in text]
    return found


@pytest.mark.parametrize("name", NON_DEV)
def test_no_development_value_in_a_non_development_overlay(name):
    assert leaked(yaml.safe_dump_all(list(render(name)), allow_unicode=True)) == []


def test_no_development_value_in_docker_compose():
    assert leaked((REPO / "docker-compose.yml").read_text(encoding="utf-8")) == []


def test_the_development_scan_finds_what_it_looks_for():
    """A control: the dev overlay does name the development tokens file, and a leaked token is caught."""
    assert leaked(yaml.safe_dump_all(list(render("dev")))) == ["dev-tokens.yaml"]
    assert leaked("SANJI_CONSOLE_SERVICE_TOKEN: dev-kiosk-xinhe") == ["dev-kiosk-xinhe"]
