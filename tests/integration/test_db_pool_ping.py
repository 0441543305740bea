"""The PostgreSQL pool pings a connection only when it idled (shared/db.py): one in use a moment ago costs no
round trip (if its server side went away, its first statement fails and the pool is renewed, as after any
disconnect), and one whose server side went away while it idled is replaced before anyone uses it."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from shared import db
from shared.db import create_db_engine, normalise_url
from tests.conftest import POSTGRES_ADMIN_URL


@pytest.fixture
def engine(postgres_database):
    made = create_db_engine(postgres_database)
    yield made
    made.dispose()


def _backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar()


def _terminate(pid: int) -> None:
    admin = create_engine(normalise_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    finally:
        admin.dispose()


def test_a_connection_in_use_a_moment_ago_is_not_pinged_and_is_replaced_after_its_first_failure(engine, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    pids = {_backend_pid(engine) for _ in range(5)}
    assert len(pids) == 1  # last in, first out: the same connection each time
    _terminate(pids.pop())
    with pytest.raises(DBAPIError) as failed:  # not pinged: its first statement finds the server side gone
        _backend_pid(engine)
    assert failed.value.connection_invalidated
    assert _backend_pid(engine)  # the pool was renewed on that disconnect


def test_a_connection_that_idled_and_lost_its_server_side_is_replaced_before_use(engine, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    first = _backend_pid(engine)
    _terminate(first)
    second = _backend_pid(engine)  # no error: the ping failed, the pool connected again
    assert second != first
