"""docker-compose.yml: valid Compose Specification, and wired the way the Sanji stack needs.

No Docker engine is needed: the file is parsed with PyYAML (which resolves anchors and `<<` merge keys
as Compose does) and validated with jsonschema against the vendored Compose Specification schema.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
COMPOSE_SCHEMA = SCHEMAS / "compose-spec.json"
RABBITMQ_CONF = REPO / "deploy" / "rabbitmq" / "rabbitmq.conf"

# ${VAR}, ${VAR:-default}, ${VAR?err}, … and bare $VAR; `$$` is Compose's escape for a literal `$`.
_BRACED_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_BARE_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# Variable names whose value is a secret (SANJI_TOKENS_FILE is a path, hence the _FILE/_DIR exemption).
_SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|_KEY$|TOKEN")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def app_services(services) -> dict:
    """The services built from this repository (the Sanji services, as opposed to the broker and DB)."""
    built = {name: service for name, service in services.items() if "build" in service}
    assert built, "no service in docker-compose.yml is built from the repository"
    return built


@pytest.fixture(scope="module")
def env_example() -> dict[str, tuple[str, list[str]]]:
    """.env.example as {name: (value, comment lines directly above it)}."""
    entries: dict[str, tuple[str, list[str]]] = {}
    comments: list[str] = []
    for lineno, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            comments = []
        elif stripped.startswith("#"):
            comments.append(stripped)
        else:
            match = _ENV_LINE.match(stripped)
            assert match, f".env.example line {lineno} is not NAME=value: {line!r}"
            name, value = match.groups()
            assert name not in entries, f".env.example defines {name} twice"
            entries[name] = (value, comments)
            comments = []
    return entries


def _strings(node):
    """Every string (keys included) in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _referenced_variables(document) -> set[str]:
    names: set[str] = set()
    for text in _strings(document):
        text = text.replace("$$", "")
        names.update(_BRACED_VAR.findall(text))
        names.update(_BARE_VAR.findall(text))
    return names


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=value list form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _schema_errors(document) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]


def test_vendored_schema_matches_the_recorded_checksum():
    readme = (SCHEMAS / "README.md").read_text(encoding="utf-8")
    recorded = re.search(r"sha256\s+([0-9a-f]{64})\s+compose-spec\.json", readme)
    assert recorded, "tests/deploy/schemas/README.md must record the schema's sha256"
    actual = hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest()
    assert actual == recorded.group(1), "compose-spec.json changed: record where the new copy came from"


def test_compose_file_is_valid_compose_specification(compose):
    errors = _schema_errors(compose)
    assert not errors, "docker-compose.yml does not match the Compose Specification:\n" + "\n".join(errors)


def test_schema_rejects_a_broken_compose_file(compose):
    # A control: proves the validator really applies the schema (an emptied schema would accept anything).
    broken = copy.deepcopy(compose)
    first = next(iter(broken["services"].values()))
    first["healthcheck_typo"] = {"test": ["CMD", "true"]}
    first["depends_on"] = {"rabbitmq": {"condition": "service_ready"}}
    errors = _schema_errors(broken)
    assert any("healthcheck_typo" in error for error in errors), errors
    assert any("service_ready" in error for error in errors), errors


def test_no_obsolete_version_key(compose):
    assert "version" not in compose, "the Compose Specification has no `version:`; Compose warns on it"


def test_every_service_has_a_healthcheck(services):
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"service {name!r} has no healthcheck"
        assert not check.get("disable"), f"service {name!r} disables its healthcheck"
        test = check.get("test")
        assert test and test not in (["NONE"], "NONE"), f"service {name!r} has an empty healthcheck test"


def test_depends_on_waits_for_healthy_dependencies(services, app_services):
    for name, service in services.items():
        depends_on = service.get("depends_on")
        if depends_on is None:
            continue
        assert isinstance(depends_on, dict), (
            f"service {name!r}: the list form of depends_on only waits for the container to start"
        )
        for dependency, options in depends_on.items():
            assert dependency in services, f"service {name!r} depends on unknown service {dependency!r}"
            assert options.get("condition") == "service_healthy", (
                f"service {name!r} must wait for {dependency!r} with condition: service_healthy"
            )
    for name, service in app_services.items():
        assert {"rabbitmq", "postgres"} <= set(service.get("depends_on") or {}), (
            f"service {name!r} must depend on rabbitmq and postgres"
        )


def test_every_build_dockerfile_exists(app_services):
    for name, service in app_services.items():
        build = service["build"]
        if isinstance(build, str):
            build = {"context": build}
        context = (REPO / build.get("context", ".")).resolve()
        assert context.is_dir(), f"service {name!r}: build context {context} does not exist"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"service {name!r}: {dockerfile} does not exist"


def test_every_bind_mount_source_exists(services):
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"service {name!r} mounts missing {source}"


def test_every_variable_is_documented_in_env_example(compose, env_example):
    referenced = _referenced_variables(compose)
    assert referenced, "docker-compose.yml references no variable at all: the check below would be vacuous"
    missing = sorted(referenced - set(env_example))
    assert not missing, f"variables used in docker-compose.yml but missing from .env.example: {missing}"
    stale = sorted(set(env_example) - referenced)
    assert not stale, f".env.example documents variables docker-compose.yml never uses: {stale}"


def test_every_env_example_variable_has_a_comment(env_example):
    undocumented = sorted(name for name, (_value, comments) in env_example.items() if not comments)
    assert not undocumented, f".env.example variables without a comment line above them: {undocumented}"


def test_env_example_holds_only_placeholder_secrets(env_example):
    secrets = {
        name: value for name, (value, _comments) in env_example.items()
        if _SECRET_NAME.search(name) and not name.endswith(("_FILE", "_DIR"))
    }
    assert {"POSTGRES_PASSWORD", "SANJI_PII_KEY"} <= set(secrets), secrets
    real = sorted(name for name, value in secrets.items() if value != "change-me")
    assert not real, f".env.example must hold the placeholder change-me for secrets, not values: {real}"


def test_secrets_come_from_variables_not_from_the_compose_file(services):
    for name, service in services.items():
        for key, value in _environment(service).items():
            if _SECRET_NAME.search(key) and not key.endswith(("_FILE", "_DIR")):
                assert "${" in value, f"service {name!r}: {key} is hard-coded in docker-compose.yml"
            # user:password@host in a URL: the password part must be a variable too.
            for password in re.findall(r"://[^:/@\s]+:([^@\s]*)@", value):
                assert password.startswith("${"), f"service {name!r}: {key} has a hard-coded password"


def test_app_services_share_one_image_and_configuration(compose, app_services):
    shared = _environment(compose["x-sanji-service"])
    (first_name, first), *others = app_services.items()
    for name, service in others:
        for key in ("image", "build", "healthcheck", "depends_on"):
            assert service.get(key) == first.get(key), (
                f"{name!r} and {first_name!r} differ in {key}: derive both from x-sanji-service"
            )
    for name, service in app_services.items():
        # Every service gets the shared environment unchanged; a service may add settings of its own
        # (SANJI_<SERVICE>_...), which no other service then receives.
        env = _environment(service)
        assert {key: env.get(key) for key in shared} == shared, (
            f"{name!r} changes the shared environment: merge *sanji-env into its own")
        extra = sorted(set(env) - set(shared) - {"SANJI_AMQP_URI"})  # its own broker user
        assert all(key.startswith(f"SANJI_{name.upper()}_") for key in extra), (
            f"{name!r} adds settings that are not its own: {extra}")


def test_the_console_is_in_the_stack_and_calls_the_apis_by_service_name(app_services):
    # Reachable by people (a published port, behind the host's TLS reverse proxy), and it reaches the
    # other services' APIs over the project network, on the port every container listens on.
    console = app_services["console"]
    env = _environment(console)
    assert console.get("ports"), "the console must publish its HTTP port"
    for api in ("intake", "routing", "escalation", "notification"):
        assert env[f"SANJI_CONSOLE_{api.upper()}_URL"] == f"http://{api}:{env['SANJI_HTTP_PORT']}", api
        assert api in app_services
    assert env["SANJI_CONSOLE_SERVICE_TOKEN"].startswith("${SANJI_CONSOLE_SERVICE_TOKEN:?"), (
        "compose must refuse to start without the console's own token")
    assert _environment(app_services["intake"])["SANJI_ASSERTION_KEY"].startswith("${SANJI_ASSERTION_KEY:?")


def test_every_service_of_the_system_is_in_the_stack(app_services):
    from shared.config import SERVICES

    assert set(app_services) == set(SERVICES)


def test_each_app_service_connects_as_its_own_broker_user(app_services):
    from shared.bus import SERVICES, default_user, parse_users

    for name, service in app_services.items():
        env = _environment(service)
        user = f"sanji-{name}"
        assert env["SANJI_AMQP_URI"].startswith(f"amqp://{user}:${{SANJI_BUS_PASSWORD_{name.upper()}:"), (
            f"{name!r} must connect as {user}, not as the broker's administrator")
        assert parse_users(env["SANJI_BUS_USERS"]) == {s: default_user(s) for s in SERVICES}


def test_each_app_service_serves_itself(app_services):
    for name, service in app_services.items():
        assert service.get("command") == ["serve", name], (
            f"service {name!r} should run `serve {name}`, got {service.get('command')!r}"
        )


def test_app_services_can_scale(app_services):
    for name, service in app_services.items():
        assert "container_name" not in service, f"{name!r} sets container_name, so it cannot be scaled"
    assert "ports" not in app_services["routing"], "routing publishes a port: --scale routing=3 would clash"


def test_http_settings_agree_with_ports_and_healthcheck(app_services):
    for name, service in app_services.items():
        env = _environment(service)
        assert env.get("SANJI_HTTP_HOST") == "0.0.0.0", f"{name!r} must listen on all interfaces"
        port = env.get("SANJI_HTTP_PORT")
        assert port and port.isdigit(), f"{name!r}: SANJI_HTTP_PORT must be a fixed number, got {port!r}"
        probe = " ".join(service["healthcheck"]["test"])
        assert f":{port}/health" in probe, f"{name!r}: the healthcheck does not probe port {port}"
        for mapping in service.get("ports") or []:
            if isinstance(mapping, dict):
                target = str(mapping.get("target"))
            else:
                target = str(mapping).rsplit(":", 1)[-1]
            assert target == port, f"{name!r} publishes container port {target}, but listens on {port}"
    assert any(str(p).endswith(":8000") for p in app_services["intake"].get("ports", [])), (
        "intake must publish its HTTP port 8000"
    )


def test_rabbitmq_mounts_agree_with_rabbitmq_conf(services):
    settings = {}
    for line in RABBITMQ_CONF.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    assert settings.get("definitions.import_backend") == "local_filesystem"
    definitions_dir = PurePosixPath(settings["definitions.local.path"])

    rabbitmq = services["rabbitmq"]
    mounts = {}
    for volume in rabbitmq.get("volumes") or []:
        source, target = volume.split(":")[:2]
        mounts[source.removeprefix("./")] = PurePosixPath(target)
    conf_target = mounts.get("deploy/rabbitmq/rabbitmq.conf")
    assert conf_target is not None, "rabbitmq does not mount deploy/rabbitmq/rabbitmq.conf"
    assert conf_target.parent == PurePosixPath("/etc/rabbitmq/conf.d") and conf_target.suffix == ".conf", (
        f"the official image reads extra configuration from /etc/rabbitmq/conf.d/*.conf, not {conf_target}"
    )
    definitions_target = mounts.get("deploy/rabbitmq/definitions.json")
    assert definitions_target is not None, "rabbitmq does not mount deploy/rabbitmq/definitions.json"
    assert definitions_target.parent == definitions_dir, (
        f"definitions.json is mounted at {definitions_target}, but rabbitmq.conf imports {definitions_dir}"
    )
    # A node that imports definitions at boot creates no default user: the entrypoint must write one
    # into the directory rabbitmq.conf imports, under another name than the mounted topology file.
    script = " ".join(rabbitmq.get("entrypoint") or [])
    user_files = re.findall(re.escape(str(definitions_dir)) + r"/([\w.-]+\.json)", script)
    assert user_files, "the rabbitmq entrypoint does not write the broker user into the definitions directory"
    assert definitions_target.name not in user_files, "the broker user file would overwrite the topology"
    assert '"users"' in script and "RABBITMQ_DEFAULT_PASS" in script, "the broker user file has no user"


# --- deploy/rabbitmq/definitions.json against shared/topology.py (the source of truth) -------------

DEFINITIONS_FILE = REPO / "deploy" / "rabbitmq" / "definitions.json"


@pytest.fixture(scope="module")
def definitions() -> dict:
    return json.loads(DEFINITIONS_FILE.read_text(encoding="utf-8"))


class _RecordingChannel:
    """Stands in for an AMQP channel and records what kombu would declare on it."""

    def __init__(self):
        self.exchanges: dict[str, dict] = {}
        self.queues: dict[str, dict] = {}
        self.bindings: list[tuple[str, str, str]] = []
        self.binding_arguments: dict[tuple[str, str, str], dict] = {}

    def prepare_queue_arguments(self, arguments, **_kwargs):
        return arguments

    def exchange_declare(self, exchange, type, durable, auto_delete, arguments=None, **_kwargs):  # noqa: A002
        self.exchanges[exchange] = {"type": type, "durable": durable, "auto_delete": auto_delete,
                                    "arguments": arguments or {}}

    def queue_declare(self, queue, durable, exclusive, auto_delete, arguments=None, **_kwargs):
        self.queues[queue] = {"durable": durable, "exclusive": exclusive, "auto_delete": auto_delete,
                              "arguments": dict(arguments or {})}
        return queue, 0, 0

    def queue_bind(self, queue, exchange, routing_key, arguments=None, **_kwargs):
        self.bindings.append((exchange, queue, routing_key))
        self.binding_arguments[(exchange, queue, routing_key)] = dict(arguments or {})


@pytest.fixture(scope="module")
def declared():
    """What shared.topology.declare_topology declares on start: the same call the services make."""
    from amqp.exceptions import NotFound

    from shared import topology

    channel = _RecordingChannel()

    class _EmptyBroker:
        """Where every passive declare finds nothing: a first start."""

        def queue_declare(self, queue, passive=False, **_kwargs):
            raise NotFound(f"no queue {queue}")

        def close(self):
            pass

    topology.declare_topology(type("Connection", (), {"default_channel": channel,
                                                      "channel": lambda self: _EmptyBroker()})())
    assert channel.exchanges and channel.queues and channel.bindings, "declare_topology declared nothing"
    return channel


def test_definitions_declare_exactly_the_topology_exchanges(definitions, declared):
    actual = {
        e["name"]: {"type": e["type"], "durable": e["durable"], "auto_delete": e.get("auto_delete", False),
                    "arguments": e.get("arguments", {})}
        for e in definitions.get("exchanges", [])
    }
    assert actual == declared.exchanges
    assert not any(e.get("internal") for e in definitions["exchanges"])


def test_definitions_declare_exactly_the_topology_queues(definitions, declared):
    # Same names, same durability and the same x-arguments (queue type, delivery limit, dead-lettering):
    # RabbitMQ refuses a redeclaration whose arguments differ (PRECONDITION_FAILED), so a drift here
    # would stop the services at start.
    actual = {
        q["name"]: {"durable": q["durable"], "exclusive": False, "auto_delete": q.get("auto_delete", False),
                    "arguments": q.get("arguments", {})}
        for q in definitions.get("queues", [])
    }
    assert actual == declared.queues


def test_definitions_declare_exactly_the_topology_bindings(definitions, declared):
    actual = [(b["source"], b["destination"], b["routing_key"]) for b in definitions.get("bindings", [])]
    assert len(actual) == len(set(actual)), "duplicate bindings in definitions.json"
    assert set(actual) == set(declared.bindings)
    assert all(b["destination_type"] == "queue" for b in definitions["bindings"])
    # Binding arguments too (the event log's x-stream-partition-order): the same as declared, and none elsewhere.
    assert {(b["source"], b["destination"], b["routing_key"]): b.get("arguments", {})
            for b in definitions["bindings"]} == declared.binding_arguments


def test_definitions_are_what_write_docs_generates(definitions):
    from shared.bus import full_definitions

    assert definitions == full_definitions(), "run `.venv/bin/sanji write-docs` (then `make k8s-definitions`)"


def test_definitions_are_self_contained_and_hold_no_credentials(definitions):
    # A node importing definitions at boot creates no default vhost: every vhost used must be declared.
    declared = {v["name"] for v in definitions.get("vhosts", [])}
    used = {item["vhost"] for key in ("exchanges", "queues", "bindings") for item in definitions.get(key, [])}
    assert used and used <= declared, f"vhosts used but not declared: {sorted(used - declared)}"
    # It declares the bus users (shared/bus.py) but holds no credential: every password comes from the
    # environment (a blank password_hash cannot log in), and no bus user is an administrator.
    users = definitions.get("users", [])
    assert users, "definitions.json declares no bus users"
    for user in users:
        assert "password" not in user and user.get("password_hash") == "", f"{user['name']} carries a credential"
        assert user.get("tags") == [], f"{user['name']} has tags {user.get('tags')}"
    text = DEFINITIONS_FILE.read_text(encoding="utf-8")
    assert '"password"' not in text and "dev-bus-" not in text


BUS_PASSWORDS = {f"SANJI_BUS_PASSWORD_{service.upper()}": f"bus-{service}-Pw_1"
                 for service in ("intake", "routing", "escalation", "notification", "evaluation",
                                                                          "console", "subscriptions")}


def _run_rabbitmq_entrypoint(services, tmp_path, user: str, password: str):
    """Runs the rabbitmq service's entrypoint script with its paths moved under tmp_path and stubs for
    chown and the image's docker-entrypoint.sh. Returns (exit code, written files, stub calls)."""
    entrypoint = services["rabbitmq"]["entrypoint"]
    assert entrypoint[:3] == ["/bin/sh", "-eu", "-c"], entrypoint
    script = entrypoint[3].replace("$$", "$").replace("/etc/rabbitmq/", f"{tmp_path}/etc/rabbitmq/")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    calls = tmp_path / "calls.log"
    for name in ("chown", "docker-entrypoint.sh"):
        (stubs / name).write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\n')
        (stubs / name).chmod(0o755)
    result = subprocess.run(
        ["/bin/sh", "-eu", "-c", script],
        env={"PATH": f"{stubs}:/usr/bin:/bin",
             "RABBITMQ_DEFAULT_USER": user, "RABBITMQ_DEFAULT_PASS": password, **BUS_PASSWORDS},
        capture_output=True, text=True, timeout=30,
    )
    written = {p.name: p for p in (tmp_path / "etc" / "rabbitmq" / "definitions.d").glob("*")}
    return result.returncode, written, calls.read_text().splitlines() if calls.exists() else []


def test_rabbitmq_entrypoint_writes_the_broker_user_then_starts_the_server(services, tmp_path):
    code, written, calls = _run_rabbitmq_entrypoint(services, tmp_path, "sanji", "s3cret-Pw_1")
    assert code == 0
    assert sorted(written) == ["10-broker-user.json", "30-bus-passwords.json"]
    # Each service's password, for its user the topology file (20-…) declares without one.
    bus_file = written["30-bus-passwords.json"]
    assert bus_file.stat().st_mode & 0o077 == 0, "the file holding the bus passwords is readable by others"
    assert {u["name"]: u["password"] for u in json.loads(bus_file.read_text())["users"]} == {
        f"sanji-{name.rsplit('_', 1)[1].lower()}": value for name, value in BUS_PASSWORDS.items()}
    user_file = written["10-broker-user.json"]
    assert user_file.stat().st_mode & 0o077 == 0, "the file holding the broker password is readable by others"
    definitions = json.loads(user_file.read_text())
    assert definitions["users"] == [{"name": "sanji", "password": "s3cret-Pw_1", "tags": ["administrator"]}]
    assert {"name": "/"} in definitions["vhosts"]
    assert definitions["permissions"] == [
        {"user": "sanji", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
    ]
    assert calls[-1] == "docker-entrypoint.sh rabbitmq-server", calls
    assert any(call.startswith("chown rabbitmq:rabbitmq") for call in calls), calls


def test_rabbitmq_entrypoint_refuses_a_password_that_would_break_the_json(services, tmp_path):
    code, written, calls = _run_rabbitmq_entrypoint(services, tmp_path, "sanji", 'pa"ss')
    assert code != 0 and not written and not calls


def test_rabbitmq_speaks_the_stream_protocol_for_the_event_logs_replay(services):
    """docs/replay.md: department systems replay their subscription streams with the stream protocol (5552)."""
    rabbitmq = services["rabbitmq"]
    mounts = dict(volume.split(":")[:2] for volume in rabbitmq.get("volumes") or [])
    assert mounts.get("./deploy/rabbitmq/enabled_plugins") == "/etc/rabbitmq/enabled_plugins"
    text = (REPO / "deploy" / "rabbitmq" / "enabled_plugins").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"\[[a-z_,]+\]\.", text), "enabled_plugins is an Erlang list of atoms ending in a dot"
    plugins = set(text[1:-2].split(","))
    # The image's own plugins stay enabled (a mounted file replaces its list), and the stream protocol is added.
    assert {"rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_stream"} <= plugins
    assert any(str(port).endswith(":5552") and str(port).startswith("127.0.0.1:") for port in rabbitmq["ports"])
