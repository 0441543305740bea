"""Fixtures shared by the integration and end-to-end tests.

Integration tests run against the real RabbitMQ (a throwaway vhost per test, from nameko's
``rabbit_config``) and a real database. Every database test runs twice: on SQLite (the embedded
default) and on PostgreSQL (production). ``SANJI_TEST_DATABASES=sqlite`` narrows that for a quick run.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from shared.config import REPO_ROOT, SERVICES, Settings, nameko_config
from shared.db import dispose_engines, normalise_url
from shared.logging import configure_logging
from shared.migrate import migrate
from tests.support.asyncapi_check import PUBLISHED, watch_the_relay
from tests.support.scoped_bus import scoped_bus  # noqa: F401 - the bus with its production users, per test

TEST_DATABASES = [name.strip() for name in os.environ.get("SANJI_TEST_DATABASES", "sqlite,postgresql").split(",")
                  if name.strip()]
POSTGRES_ADMIN_URL = os.environ.get("SANJI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MIGRATED_SERVICES = SERVICES  # every service has its own migration branch

warnings.filterwarnings("ignore", message="\nEventlet is deprecated")


def pytest_configure(config):
    configure_logging("console", "INFO")


@pytest.fixture(scope="session", autouse=True)
def events_checked_against_asyncapi():
    """Every event a relay publishes during the run is validated against docs/asyncapi.json."""
    patch = pytest.MonkeyPatch()
    watch_the_relay(patch)
    yield PUBLISHED
    patch.undo()


@pytest.fixture(autouse=True)
def published_events_match_asyncapi(events_checked_against_asyncapi):
    events_checked_against_asyncapi.take_problems()  # what an earlier test's late relay published is not ours
    yield
    found = events_checked_against_asyncapi.take_problems()
    assert not found, "events published that docs/asyncapi.json does not describe:\n" + "\n".join(found)


def pytest_terminal_summary(terminalreporter):
    if PUBLISHED.counts:
        terminalreporter.write_line(
            f"AsyncAPI: {sum(PUBLISHED.counts.values())} published events of {len(PUBLISHED.counts)} types "
            "validated against docs/asyncapi.json")


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for the session, migrated once, dropped at the end."""
    name = f"sanji_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    for service in MIGRATED_SERVICES:
        migrate(service, url)
    yield url
    dispose_engines()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(url: str) -> None:
    engine = create_engine(normalise_url(url))
    with engine.begin() as connection:
        tables = [t for t in inspect(connection).get_table_names() if t != "alembic_version"]
        if tables:
            connection.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """One SQLite file with every service's migrations applied, made once: each test gets a copy (running some
    fifty migrations per test cost about a second of every SQLite test's set-up)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "sanji.db"
    url = f"sqlite:///{path}"
    for service in MIGRATED_SERVICES:
        migrate(service, url)
    dispose_engines()  # closed, so that the file alone is the whole database
    return path


@pytest.fixture(params=TEST_DATABASES)
def database_url(request, tmp_path):
    """A migrated, empty database: a fresh copy of the migrated SQLite file per test, or the session's
    PostgreSQL emptied."""
    if request.param == "sqlite":
        target = tmp_path / "sanji.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite:///{target}"
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_database")
        _truncate_all(url)
    else:
        raise pytest.UsageError(f"unknown test database {request.param!r}")
    yield url
    dispose_engines()


@pytest.fixture
def make_service_config(rabbit_config, database_url, tmp_path):
    """The nameko config of one service under test: the test's vhost and database, free HTTP ports."""

    def make(service: str, web_port: int | None = None, **overrides) -> dict:
        settings = Settings.from_env(service)
        config = nameko_config(service, settings)
        config.update(
            AMQP_URI=rabbit_config["AMQP_URI"],
            DATABASE_URL=database_url,
            SANJI_TOKENS_FILE=str(REPO_ROOT / "config" / "dev-tokens.yaml"),
            SANJI_CATALOGUE_DIR=str(REPO_ROOT / "catalogue" / "nanjing"),
            SANJI_CALENDAR_OVERRIDES=str(REPO_ROOT / "config" / "calendar-overrides.yaml"),
            SANJI_RETRY_BASE_SECONDS=0.01,
            SANJI_RELAY_POLL_SECONDS=0.1,
            WEB_SERVER_ADDRESS=f"127.0.0.1:{web_port or 0}",
        )
        config.update(overrides)
        return config

    return make


@pytest.fixture
def shipped_catalogue_dir() -> Path:
    return REPO_ROOT / "catalogue" / "nanjing"
