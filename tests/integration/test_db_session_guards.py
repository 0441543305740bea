"""A client that vanishes in the middle of a transaction does not hold its row locks for ever (shared/db.py).

The fault suite found it: after a network fault the database kept sessions "idle in transaction" whose
clients were gone, and every other writer of those rows (both routing replicas, intake, escalation) queued
behind their locks until the run ended. The server only learns that a client is gone when it next reads
or writes the socket, and a session waiting for its client's next statement does neither. Sanji's
connections therefore ask the server to end a session idle in a transaction for longer than
SANJI_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS; the transaction rolls back and its locks go.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from shared.db import create_db_engine, postgres_session_guards


@pytest.fixture
def guarded_engine(postgres_database, monkeypatch):
    monkeypatch.setenv("SANJI_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", "1")
    made = create_db_engine(postgres_database)
    with made.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS guard_probe (id int PRIMARY KEY, n int)"))
        connection.execute(text("INSERT INTO guard_probe VALUES (1, 0) ON CONFLICT DO NOTHING"))
    yield made
    with made.begin() as connection:
        connection.execute(text("DROP TABLE guard_probe"))
    made.dispose()


def test_a_session_left_idle_in_a_transaction_is_ended_and_its_row_lock_released(guarded_engine):
    stuck = guarded_engine.connect()
    stuck.begin()
    stuck.execute(text("UPDATE guard_probe SET n = n + 1 WHERE id = 1"))  # holds the row lock, then goes quiet
    time.sleep(2.5)  # its client "vanished": no next statement, no commit
    other = guarded_engine.connect()
    try:
        other.execute(text("SET lock_timeout = '3s'"))
        other.execute(text("UPDATE guard_probe SET n = n + 10 WHERE id = 1"))  # waited for ever before the fix
        other.commit()
    finally:
        other.close()
    with pytest.raises((OperationalError, DBAPIError)):  # the server ended the idle session; nothing committed
        stuck.execute(text("SELECT 1"))
    stuck.invalidate()
    stuck.close()
    with guarded_engine.connect() as check:
        assert check.execute(text("SELECT n FROM guard_probe WHERE id = 1")).scalar() == 10


def test_the_guards_default_to_a_minute_and_zero_leaves_the_timeout_to_the_server():
    assert postgres_session_guards({})["options"] == "-c idle_in_transaction_session_timeout=60000"
    # through a transaction-pooling PgBouncer, which refuses the startup option, the server's own setting applies
    assert "options" not in postgres_session_guards({"SANJI_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS": "0"})
    guards = postgres_session_guards({})
    assert guards["keepalives"] == 1 and guards["keepalives_idle"] == 30  # a dead server link found by the client
    with pytest.raises(ValueError):
        postgres_session_guards({"SANJI_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS": "-1"})
