"""Three routing replicas, as three processes, against the real broker and PostgreSQL.

A burst of 1,000 cases (one item each) is published while the replicas compete for
``routing.case-submitted``. Every item must be routed exactly once (one row per case, one
``item.routed`` event per item, no handler run twice), and each replica must have done a share of the
work. The split, read from each replica's own /metrics, is printed (run with ``-s`` to see it).
"""

from __future__ import annotations

import importlib.util
import sys
import uuid

import pytest
from sqlalchemy import create_engine, text

from shared.config import REPO_ROOT, SERVICES
from shared.db import normalise_url
from shared.migrate import migrate
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.integration

REPLICAS = 3
BURST = 1000


def _load_script():
    spec = importlib.util.spec_from_file_location("routing_replicas", REPO_ROOT / "scripts" / "routing_replicas.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def replica_database():
    name = f"sanji_replicas_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    for service in SERVICES:
        migrate(service, url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.timeout(180)
def test_three_replicas_route_each_item_of_a_burst_once_and_share_the_work(rabbit_config, replica_database):
    result = _load_script().run(rabbit_config["AMQP_URI"], replica_database, replicas=REPLICAS, burst=BURST)
    print("\n" + result.report())

    assert result.items == result.distinct_cases == BURST                  # one item per case, none missing
    assert result.routed_events == result.distinct_routed_items == BURST   # one item.routed per item
    assert sum(result.handled.values()) == BURST                           # no case handled twice
    assert sum(result.relayed.values()) == BURST                           # no event relayed twice
    assert len(result.handled) == REPLICAS
    assert all(count > 0 for count in result.handled.values()), result.handled   # every replica took a share
    assert result.burst_seconds < 60
