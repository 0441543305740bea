"""deploy/rabbitmq/definitions.json against the real broker: what the broker loads at start is what the
services declare.

The definitions file is imported into one throwaway vhost through the management API
(``POST /api/definitions/{vhost}``, as a node does at boot), the services' ``declare_topology`` runs in
a second one, and the exchanges, queues (with their arguments and types) and bindings the broker then
reports are compared. The services also declare on top of the imported definitions: any difference in
a queue argument would make that declaration fail with PRECONDITION_FAILED, and no service would start.
(That the committed file is the one ``sanji write-docs`` generates is checked in tests/deploy/test_compose.py.)
"""

from __future__ import annotations

import copy
import json
import random
import string
import subprocess

import pytest
import requests
from kombu import Connection

from shared.config import REPO_ROOT
from shared.event_log import configured_layout
from shared.topology import CONSUMER_QUEUES, DEAD_LETTER_QUEUE_NAME, declare_topology

pytestmark = pytest.mark.integration

DEFINITIONS = REPO_ROOT / "deploy" / "rabbitmq" / "definitions.json"


@pytest.fixture
def second_vhost(rabbit_manager, rabbit_config):
    vhost = "sanji_topology_" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    rabbit_manager.create_vhost(vhost)
    rabbit_manager.set_vhost_permissions(vhost, rabbit_config["username"], ".*", ".*", ".*")
    yield vhost
    rabbit_manager.delete_vhost(vhost)


def amqp_uri(rabbit_config, vhost: str) -> str:
    return rabbit_config["AMQP_URI"].rsplit("/", 1)[0] + "/" + vhost


def import_definitions(rabbit_manager, vhost: str) -> None:
    """Load the committed definitions into one vhost, as a broker would at start."""
    definitions = copy.deepcopy(json.loads(DEFINITIONS.read_text(encoding="utf-8")))
    # Vhost-scoped import: the objects only, each pointed at the throwaway vhost.
    body = {key: [dict(item, vhost=vhost) for item in definitions.get(key, [])]
            for key in ("exchanges", "queues", "bindings", "policies")}
    rabbit_manager._post("definitions", vhost, json=body)


def broker_topology(rabbit_manager, vhost: str) -> dict:
    """What the broker reports for one vhost, without the vhost name and the broker's own objects."""
    exchanges = {item["name"]: {key: item[key] for key in ("type", "durable", "auto_delete", "internal", "arguments")}
                 for item in rabbit_manager._get("exchanges", vhost)
                 if item["name"] and not item["name"].startswith("amq.")}
    queues = {item["name"]: {"durable": item["durable"], "auto_delete": item["auto_delete"],
                             "arguments": item["arguments"], "type": item.get("type")}
              for item in rabbit_manager._get("queues", vhost)}
    bindings = sorted((item["source"], item["destination"], item["destination_type"], item["routing_key"],
                       json.dumps(item["arguments"], sort_keys=True))
                      for item in rabbit_manager._get("bindings", vhost) if item["source"])  # not the default exchange
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


def test_imported_definitions_equal_what_the_services_declare(rabbit_manager, rabbit_config, second_vhost):
    imported_vhost, declared_vhost = rabbit_config["vhost"], second_vhost
    import_definitions(rabbit_manager, imported_vhost)
    with Connection(amqp_uri(rabbit_config, declared_vhost)) as connection:
        declare_topology(connection)

    imported = broker_topology(rabbit_manager, imported_vhost)
    declared = broker_topology(rabbit_manager, declared_vhost)
    assert imported == declared

    # And it is the topology we mean: every queue a quorum queue, consumers' queues bounded and dead-lettered,
    # and the event log's partitions streams (shared/event_log.py).
    partitions = {p.name for p in configured_layout().partitions}
    expected_queues = {q.name for q in CONSUMER_QUEUES} | {DEAD_LETTER_QUEUE_NAME}
    assert set(imported["queues"]) == expected_queues | partitions
    assert {imported["queues"][name]["type"] for name in expected_queues} == {"quorum"}
    assert {imported["queues"][name]["type"] for name in partitions} == {"stream"}
    for consumer_queue in CONSUMER_QUEUES:
        arguments = imported["queues"][consumer_queue.name]["arguments"]
        assert arguments["x-delivery-limit"] == consumer_queue.arguments["x-delivery-limit"]
        assert arguments["x-dead-letter-exchange"] == "sanji.dead-letter"
        bound = {key for source, destination, _, key, _ in imported["bindings"]
                 if source == "sanji.events" and destination == consumer_queue.name}
        assert bound == set(consumer_queue.binding_keys)


def test_services_declare_cleanly_on_a_broker_that_loaded_the_definitions(rabbit_manager, rabbit_config):
    """The order of a real start: the broker imports the definitions, then every service declares."""
    import_definitions(rabbit_manager, rabbit_config["vhost"])
    before = broker_topology(rabbit_manager, rabbit_config["vhost"])
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        declare_topology(connection)  # raises PRECONDITION_FAILED on any inequivalent argument
        declare_topology(connection)  # and declaring again is a no-op
    assert broker_topology(rabbit_manager, rabbit_config["vhost"]) == before


def test_the_rabbitmq_cluster_init_container_writes_definitions_the_broker_takes(rabbit_manager, rabbit_config,
                                                                                 tmp_path):
    """deploy/k8s's RabbitmqCluster boots from a definitions directory its init container writes: the
    operator's user (a blank node importing definitions creates no default user) and the topology. The
    very script from the rendered manifest runs here, and the broker must accept what it writes."""
    from tests.deploy.test_k8s_manifests import K8S, rabbitmq_init_script

    script, env = rabbitmq_init_script()
    user = "sanji_k8s_" + "".join(random.choice(string.ascii_lowercase) for _ in range(8))
    password = "".join(random.choice(string.ascii_letters + string.digits + "-_") for _ in range(32))
    bus_passwords = {f"SANJI_BUS_PASSWORD_{service.upper()}": f"pw-{service}-{password[:8]}"
                     for service in ("intake", "routing", "escalation", "notification", "evaluation",
                                                                          "console", "subscriptions")}
    assert set(bus_passwords) <= set(env), "the init container gets every service's bus password"
    out = tmp_path / "definitions.d"
    out.mkdir()
    subprocess.run(["/bin/sh", "-eu", "-c", script], check=True, timeout=10, env={
        "RABBITMQ_USERNAME": user, "RABBITMQ_PASSWORD": password, "PATH": "/usr/bin:/bin",
        "TOPOLOGY_FILE": str(K8S / "base" / "rabbitmq" / "definitions.json"), "DEFINITIONS_DIR": str(out),
        **bus_passwords})
    assert sorted(path.name for path in out.iterdir()) == ["10-broker-user.json", "20-topology.json",
                                                           "30-bus-passwords.json"]
    assert (out / "20-topology.json").read_bytes() == DEFINITIONS.read_bytes()
    # The services' passwords, for the users the topology file declares without one.
    passwords = json.loads((out / "30-bus-passwords.json").read_text(encoding="utf-8"))
    declared = {u["name"] for u in json.loads(DEFINITIONS.read_text(encoding="utf-8"))["users"]}
    assert {u["name"] for u in passwords["users"]} <= declared
    assert {u["name"]: u["password"] for u in passwords["users"]} == {
        f"sanji-{name.rsplit('_', 1)[1].lower()}": value for name, value in bus_passwords.items()}

    users = json.loads((out / "10-broker-user.json").read_text(encoding="utf-8"))
    vhost = rabbit_config["vhost"]  # "/" in the cluster; the throwaway vhost here
    for permission in users["permissions"]:
        permission["vhost"] = vhost
    users["vhosts"] = [{"name": vhost}]
    try:
        rabbit_manager._post("definitions", json=users)
        base = rabbit_manager._base_url
        whoami = requests.get(f"{base}/whoami", auth=(user, password), timeout=10)
        assert whoami.status_code == 200 and whoami.json()["name"] == user
        assert "administrator" in str(whoami.json()["tags"])
        permissions = rabbit_manager._get("permissions", vhost, user)
        assert (permissions["configure"], permissions["write"], permissions["read"]) == (".*", ".*", ".*")
        # The user can use the broker: connect to the vhost and declare the topology.
        with Connection(f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}") as connection:
            declare_topology(connection)
    finally:
        rabbit_manager._delete("users", user)
