"""The bus as production has it, in a test's throwaway vhost: one broker user per service and per
department system, with exactly the permissions and topic permissions of deploy/rabbitmq/definitions.json
(shared/bus.py generates both), and the topology declared by the administrator beforehand, as the
broker's definitions would. User names carry a per-test prefix (users are broker-wide) and are deleted
afterwards.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, urlparse

import pytest
from kombu import Connection

from shared import bus
from shared.config import REPO_ROOT
from shared.topology import declare_topology


@dataclass
class ScopedBus:
    base_uri: str                       # the test vhost's administrator URI (guest)
    users: dict[str, str]               # service -> broker user
    desks: dict[str, bus.DepartmentDesk]  # principal name (dept-qixia-police) -> its desk, user prefixed
    passwords: dict[str, str] = field(default_factory=dict)

    def uri(self, user: str) -> str:
        parsed = urlparse(self.base_uri)
        credentials = f"{quote(user, safe='')}:{quote(self.passwords[user], safe='')}"
        netloc = f"{credentials}@{parsed.hostname}:{parsed.port or 5672}"
        return parsed._replace(netloc=netloc).geturl()

    def service_uri(self, service: str) -> str:
        return self.uri(self.users[service])

    def department_uri(self, principal: str) -> str:
        return self.uri(self.desks[principal].user)

    def service_config(self, make_service_config, service: str, **overrides) -> dict:
        return make_service_config(service, AMQP_URI=self.service_uri(service), SANJI_BUS_USERS=dict(self.users),
                                   **overrides)


@pytest.fixture
def scoped_bus(rabbit_config, rabbit_manager):
    prefix = "t" + uuid.uuid4().hex[:8] + "-"
    users = {service: prefix + bus.default_user(service) for service in bus.SERVICES}
    desks = {desk.user: bus.DepartmentDesk(user=prefix + desk.user, department=desk.department,
                                           unit_code=desk.unit_code)
             for desk in bus.department_desks(REPO_ROOT / "config" / "dev-tokens.yaml")}
    names = list(users.values()) + [desk.user for desk in desks.values()]
    passwords = {name: uuid.uuid4().hex for name in names}
    vhost = rabbit_config["vhost"]
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        declare_topology(connection)
    try:
        rabbit_manager._post("definitions", json=bus.bus_definitions(
            vhost, users=users, desks=desks.values(), passwords=passwords))
        yield ScopedBus(base_uri=rabbit_config["AMQP_URI"], users=users, desks=desks, passwords=passwords)
    finally:
        for name in names:
            try:
                rabbit_manager._delete("users", name)
            except Exception:  # noqa: BLE001 - already gone
                pass
