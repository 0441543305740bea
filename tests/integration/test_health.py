"""/health against the real broker and PostgreSQL: false (503) while a dependency is cut, true again after.

The broker is cut the way an operator or a partition would: the service's own connections are closed
through the management API (``DELETE /api/connections/{name}``) while its user has lost access to the
vhost, so its reconnects fail until access is restored. /health reads the state of the service's own
consumer connection (``shared.health``), so it sees the cut even though the broker itself stays up.
The database is cut by refusing new connections to it and terminating the open ones.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from nameko.testing.services import entrypoint_waiter
from nameko.testing.utils import find_free_port
from sqlalchemy import create_engine, text

from services.routing.service import RoutingService
from shared.config import REPO_ROOT, SERVICES, Settings, nameko_config
from shared.db import dispose_engines, normalise_url
from shared.migrate import migrate
from tests.conftest import POSTGRES_ADMIN_URL
from tests.integration.test_metrics import case_event
from tests.support.bus import publish_raw

pytestmark = pytest.mark.integration


def health(port: int) -> tuple[int, dict]:
    response = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)
    return response.status_code, response.json()


def wait_for_health(port: int, status: int, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        code, body = health(port)
        if code == status:
            return body
        assert time.monotonic() < deadline, f"/health stayed {code} {body}, expected {status}"
        time.sleep(0.2)


def vhost_connections(rabbit_manager, vhost: str, timeout: float = 15.0) -> list[str]:
    """The connections open in a vhost (the management API lists a new one after a short delay)."""
    deadline = time.monotonic() + timeout
    while True:
        names = [connection["name"] for connection in rabbit_manager._get("vhosts", vhost, "connections")]
        if names or time.monotonic() > deadline:
            return names
        time.sleep(0.25)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_health_goes_false_when_the_broker_connection_is_cut_and_recovers(
        container_factory, make_service_config, rabbit_config, rabbit_manager, database_url):
    vhost, user = rabbit_config["vhost"], rabbit_config["username"]
    port = find_free_port()
    container = container_factory(RoutingService, make_service_config("routing", web_port=port))
    container.start()
    assert health(port) == (200, {"status": "ok", "service": "routing",
                                  "checks": {"broker": True, "database": True, "migrations": True}})

    connections = vhost_connections(rabbit_manager, vhost)
    assert connections, "the service holds no connection in its vhost"
    rabbit_manager._delete("permissions", vhost, user)
    try:
        for name in connections:
            rabbit_manager.delete_connection(name)
        body = wait_for_health(port, 503)
        assert body["status"] == "degraded"
        assert body["checks"] == {"broker": False, "database": True, "migrations": True}
        time.sleep(2)  # the consumer keeps retrying and failing: it stays down while access is refused
        assert health(port)[0] == 503
    finally:
        rabbit_manager.set_vhost_permissions(vhost, user, ".*", ".*", ".*")

    assert wait_for_health(port, 200)["checks"] == {"broker": True, "database": True, "migrations": True}
    # Recovered for real: the consumer takes work again.
    event, routing_key = case_event("residence-permit")
    with entrypoint_waiter(container, "on_case_submitted", timeout=10):
        publish_raw(rabbit_config["AMQP_URI"], event.model_dump_json(), routing_key)


@pytest.fixture
def own_postgres_database():
    """A PostgreSQL database of this test's own, which the test may make unreachable."""
    name = f"sanji_health_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    for service in SERVICES:
        migrate(service, url)
    yield name, url, admin
    dispose_engines()
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_health_goes_false_when_the_database_is_unreachable_and_recovers(
        container_factory, rabbit_config, own_postgres_database):
    name, url, admin = own_postgres_database
    port = find_free_port()
    config = nameko_config("routing", Settings.from_env("routing"))
    config.update(AMQP_URI=rabbit_config["AMQP_URI"], DATABASE_URL=url,
                  SANJI_TOKENS_FILE=str(REPO_ROOT / "config" / "dev-tokens.yaml"),
                  SANJI_CATALOGUE_DIR=str(REPO_ROOT / "catalogue" / "nanjing"),
                  SANJI_CALENDAR_OVERRIDES=str(REPO_ROOT / "config" / "calendar-overrides.yaml"),
                  SANJI_RELAY_POLL_SECONDS=0.1, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    container_factory(RoutingService, config).start()
    assert health(port)[0] == 200

    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
    body = wait_for_health(port, 503)
    assert body["checks"] == {"broker": True, "database": False, "migrations": False}
    # Liveness does not follow a dependency: an outage takes pods out of service, it does not restart them.
    assert requests.get(f"http://127.0.0.1:{port}/health/live", timeout=10).status_code == 200
    assert requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=10).status_code == 503

    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
    assert wait_for_health(port, 200)["checks"] == {"broker": True, "database": True, "migrations": True}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_not_ready_while_the_services_migrations_are_pending(container_factory, make_service_config, tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    migrate("intake", url)  # the kernel and another service's tables, but none of routing's
    port = find_free_port()
    config = make_service_config("routing", web_port=port)
    config["DATABASE_URL"] = url
    container_factory(RoutingService, config).start()
    ready = requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"broker": True, "database": True, "migrations": False}
    assert requests.get(f"http://127.0.0.1:{port}/health/live", timeout=10).json() == {
        "status": "alive", "service": "routing"}
