"""Every service's migrations build exactly the tables its models describe, on SQLite and PostgreSQL.

Each service's branch is run on a fresh database of its own (the kernel comes with it), and alembic's
``compare_metadata`` compares the result with the service's ORM tables and the kernel's: a column, type,
nullability, index, unique constraint or foreign key the models have and the migrations lack (or the other way
round) is a difference, and the test names it. This is the guard that a migration written out by hand stays
equal to the models, and that a model change comes with its revision.
"""

from __future__ import annotations

import importlib
import uuid

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared.bus import SERVICES
from shared.db import Base, normalise_url
from shared.migrate import migrate
from tests.conftest import POSTGRES_ADMIN_URL, TEST_DATABASES

pytestmark = pytest.mark.integration

KERNEL_TABLES = ("outbox_messages", "processed_messages")


def models_of(service: str) -> sa.MetaData:
    """The service's ORM tables (named ``<service>_…``) and the kernel's, in a metadata of their own."""
    importlib.import_module(f"services.{service}.service")  # and so every module that declares its tables
    importlib.import_module("shared.outbox")
    metadata = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        if table.name.startswith(f"{service}_") or table.name in KERNEL_TABLES:
            table.to_metadata(metadata)
    assert any(name.startswith(f"{service}_") for name in metadata.tables), f"no models found for {service}"
    return metadata


@pytest.fixture(params=TEST_DATABASES)
def fresh_database(request, tmp_path):
    """An empty database, not migrated: a new SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"sanji_migrations_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def differences(database_url: str, metadata: sa.MetaData, service: str) -> list:
    def ours(name, type_, _parent) -> bool:
        # The service's and the kernel's tables, also those no model names: alembic's version table is its own.
        return type_ != "table" or name.startswith(f"{service}_") or name in KERNEL_TABLES

    engine = sa.create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "compare_type": True, "compare_server_default": False, "include_name": ours})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_the_migrations_build_exactly_the_models(service, fresh_database):
    migrate(service, fresh_database)
    assert differences(fresh_database, models_of(service), service) == []


def test_a_model_change_without_a_revision_is_caught(fresh_database):
    """The comparison itself: a column the models have and no migration adds is reported."""
    migrate("evaluation", fresh_database)
    metadata = models_of("evaluation")
    metadata.tables["evaluation_rectifications"].append_column(sa.Column("not_migrated", sa.String(8)))
    found = differences(fresh_database, metadata, "evaluation")
    assert [(diff[0], diff[2], diff[3].name) for diff in found] == [
        ("add_column", "evaluation_rectifications", "not_migrated")]
