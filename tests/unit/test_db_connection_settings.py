"""The pool each process opens (which deploy/k8s sizes PgBouncer for) and where `sanji migrate` connects."""

from __future__ import annotations

import pytest

from sanji.cli import migration_database_url
from shared.config import Settings
from shared.db import postgres_pool_limits


def test_the_pool_limits_default_to_ten_plus_ten_and_follow_the_environment():
    assert postgres_pool_limits({}) == (10, 10)
    assert postgres_pool_limits({"SANJI_DB_POOL_SIZE": "4", "SANJI_DB_MAX_OVERFLOW": "0"}) == (4, 0)
    with pytest.raises(ValueError):
        postgres_pool_limits({"SANJI_DB_POOL_SIZE": "0"})


def test_migrations_connect_past_the_pooler_when_told(monkeypatch):
    monkeypatch.setenv("SANJI_DATABASE_URL", "postgresql://u:p@sanji-db-pooler-rw:5432/sanji")
    monkeypatch.delenv("SANJI_ROUTING_DATABASE_URL", raising=False)
    monkeypatch.delenv("SANJI_MIGRATION_DATABASE_URL", raising=False)
    settings = Settings.from_env("routing")
    assert migration_database_url(settings) == "postgresql://u:p@sanji-db-pooler-rw:5432/sanji"
    monkeypatch.setenv("SANJI_MIGRATION_DATABASE_URL", "postgresql://u:p@sanji-db-rw.sanji:5432/sanji")
    settings = Settings.from_env("routing")  # read at start, as every command does
    assert migration_database_url(settings) == "postgresql://u:p@sanji-db-rw.sanji:5432/sanji"
    assert settings.database_url == "postgresql://u:p@sanji-db-pooler-rw:5432/sanji"  # the services still pool
