"""Readiness asks whether the service's migrations are applied (shared.migrate.schema_current)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, text

from shared.migrate import _alembic_config, migrate, schema_current


def _engine(tmp_path, name="schema.db"):
    return f"sqlite:///{tmp_path / name}", create_engine(f"sqlite:///{tmp_path / name}")


def test_current_after_migrating(tmp_path):
    url, engine = _engine(tmp_path)
    migrate("routing", url)
    assert schema_current(engine, "routing")


def test_pending_when_the_branch_is_behind_its_head(tmp_path):
    url, engine = _engine(tmp_path)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "routing_0001")
    assert not schema_current(engine, "routing")


def test_pending_when_nothing_of_the_branch_is_applied(tmp_path):
    url, engine = _engine(tmp_path)
    migrate("intake", url)
    assert not schema_current(engine, "routing")
    assert schema_current(engine, "intake")


def test_not_ready_without_a_version_table(tmp_path):
    _, engine = _engine(tmp_path)
    assert not schema_current(engine, "routing")


def test_a_newer_release_that_migrated_further_keeps_this_one_ready(tmp_path):
    url, engine = _engine(tmp_path)
    migrate("routing", url)
    with engine.begin() as connection:  # a later release's revision replaced this code's head
        connection.execute(text("UPDATE alembic_version SET version_num = 'routing_0099_from_the_future' "
                                "WHERE version_num LIKE 'routing_%'"))
    assert schema_current(engine, "routing")


def test_a_service_without_a_branch_is_not_held_back(tmp_path):
    _, engine = _engine(tmp_path)
    assert schema_current(engine, "no-such-service")
