"""Database access shared by every service: engine, declarative base, unit of work.

Eventlet safety: PostgreSQL goes through psycopg2 made cooperative by psycogreen, so a slow query
yields to other greenthreads instead of blocking the hub. SQLite (the embedded default) is a C library
that blocks the hub while it works, so each process keeps a single connection and greenthreads queue
for it cooperatively in the pool; that is fine for one kiosk-sized process and is why production runs
on PostgreSQL.

Every engine hides statement parameters (``hide_parameters``): a failed statement's exception, and so
its log line, shows the SQL but not the values, which may be personal data.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import DateTime, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes on both backends (SQLite has no timezone type): stored and returned in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Each process's PostgreSQL pool: SANJI_DB_POOL_SIZE connections kept open, SANJI_DB_MAX_OVERFLOW more under load.
# deploy/k8s sizes PgBouncer and max_connections for the scalers' maximum replicas times their sum
# (tests/deploy/test_k8s_manifests.py).
DEFAULT_POOL_SIZE = 10
DEFAULT_MAX_OVERFLOW = 10


def postgres_pool_limits(environ=os.environ) -> tuple[int, int]:
    """(pool_size, max_overflow) of a PostgreSQL engine: SANJI_DB_POOL_SIZE, SANJI_DB_MAX_OVERFLOW or the defaults."""
    size = int(environ.get("SANJI_DB_POOL_SIZE", "").strip() or DEFAULT_POOL_SIZE)
    overflow = int(environ.get("SANJI_DB_MAX_OVERFLOW", "").strip() or DEFAULT_MAX_OVERFLOW)
    if size < 1 or overflow < 0:
        raise ValueError("SANJI_DB_POOL_SIZE must be at least 1 and SANJI_DB_MAX_OVERFLOW at least 0")
    return size, overflow


# A session idle inside a transaction for this long is ended by the server, its transaction rolled back and
# its locks released (SANJI_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS; 0 leaves it to the server's own setting).
# No Sanji transaction waits that long between two statements: the longest, the outbox relay's, waits at most
# its broker confirm timeout (10 s). A client that vanished mid-transaction (a process frozen or killed by
# a network fault the server never saw) otherwise holds its row locks until the server's TCP keepalive
# gives up, hours later, and every writer of those rows waits behind it.
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = 60


def postgres_session_guards(environ=os.environ) -> dict:
    """libpq connection parameters of every PostgreSQL connection: the server ends a session left idle in a
    transaction (above), and TCP keepalives let the client find a dead link to the server in about a minute
    instead of waiting on it for ever. The timeout is a startup option, which a transaction-pooling PgBouncer
    refuses: behind one, set it to 0 and configure the server (deploy/k8s/base/postgres/cluster.yaml)."""
    raw = environ.get("SANJI_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", "").strip()
    seconds = float(raw) if raw else DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS
    if seconds < 0:
        raise ValueError("SANJI_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS must be 0 (the server's setting) or more")
    guards: dict = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
    if seconds:
        guards["options"] = f"-c idle_in_transaction_session_timeout={round(seconds * 1000)}"
    return guards


_psycopg_patched = False
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _make_postgres_cooperative() -> None:
    global _psycopg_patched
    if not _psycopg_patched:
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
        _psycopg_patched = True


def normalise_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=60,
                               connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        _make_postgres_cooperative()
        pool_size, max_overflow = postgres_pool_limits()
        # Last in, first out: under load the same few connections are reused (and need no ping), and the
        # others idle, to be pinged when they are wanted again.
        # executemany_mode: an executemany that insertmanyvalues does not take (INSERT ... ON CONFLICT DO NOTHING,
        # UPDATE ... WHERE key = :key) goes out as pages of statements, one round trip per page, instead of one
        # round trip per row (a webhook fan-out's deliveries of an event were ten). Its rowcount is then not per
        # row, which nothing here reads (no versioned ORM rows; conditional updates are single executes).
        engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_use_lifo=True,
                               hide_parameters=True, executemany_mode="values_plus_batch",
                               connect_args=postgres_session_guards())
        _ping_connections_that_idled(engine)
        return engine
    raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use postgresql:// or sqlite://")


# A connection back from the pool after this long is pinged before use (SQLAlchemy's pool_pre_ping pinged
# on every checkout: a round trip per transaction, a tenth of a busy service's CPU). One that was in use a
# moment ago is not: if the server went away since, the statement fails, SQLAlchemy invalidates the whole
# pool on that disconnect error, and the callers' outage handling retries (consumers in place, the relay's
# loop, a kiosk's retry with its Idempotency-Key).
PING_AFTER_IDLE_SECONDS = 2.0


def _ping_connections_that_idled(engine: Engine) -> None:
    from sqlalchemy.exc import DisconnectionError

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record):
        if record is not None:
            record.info["sanji_returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        returned = record.info.get("sanji_returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return  # fresh from connect, or in use a moment ago
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
        except Exception as exc:  # noqa: BLE001 - any failure: the pool drops it and connects again
            raise DisconnectionError(f"pooled connection failed its ping: {type(exc).__name__}") from exc


def shared_engine(url: str) -> Engine:
    """One engine per URL per process, so a service's handlers and its relay share one pool."""
    key = normalise_url(url)
    with _engines_lock:
        if key not in _engines:
            _engines[key] = create_db_engine(key)
        return _engines[key]


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"



def locked_batches(unit_of_work_factory, query, key_columns, key_of, *, batch_size: int, lock_of=None):
    """Walk the rows of ``query`` in batches of ``batch_size``, ordered by ``key_columns`` (keyset paging:
    ``key_of(row)`` gives a row's values of them), each batch in a unit of work of its own that commits once the
    caller has handled it. Yields ``(uow, rows)``, rows as result tuples. On PostgreSQL a batch is taken
    ``FOR UPDATE SKIP LOCKED`` (``lock_of``: the entity to lock when the query joins), so replicas running the
    same pass share the rows instead of waiting on each other."""
    from sqlalchemy import tuple_

    key = tuple_(*key_columns)
    after = None
    while True:
        with unit_of_work_factory() as uow:
            batch = (query if after is None else query.where(key > tuple_(*after))).order_by(*key_columns)
            batch = batch.limit(batch_size)
            if is_postgres(uow.session.get_bind()):
                batch = batch.with_for_update(skip_locked=True, of=lock_of)
            rows = uow.session.execute(batch).all()
            if not rows:
                return
            yield uow, rows
            after = key_of(rows[-1])
            uow.commit()
        if len(rows) < batch_size:
            return


def insert_rows(session, objects) -> None:
    """INSERT new mapped objects with Core statements, in the order given (parents first), one executemany
    per run of objects of the same table: what ``session.add`` and a flush would write, without the unit of
    work's bookkeeping (most of a small transaction's CPU). The objects stay transient: set foreign keys
    yourself, and do not expect the session to know them. Only the attributes that were set are written, so
    column defaults apply to the others."""
    from sqlalchemy import insert, inspect

    batch_table, batch_rows = None, []

    def flush_batch():
        if batch_rows:
            session.execute(insert(batch_table), batch_rows)

    for obj in objects:
        mapper = inspect(obj).mapper
        values = {prop.columns[0].key: obj.__dict__[prop.key] for prop in mapper.column_attrs
                  if prop.key in obj.__dict__}
        if mapper.local_table is not batch_table or set(values) != set(batch_rows[0] if batch_rows else values):
            flush_batch()
            batch_table, batch_rows = mapper.local_table, []
        batch_rows.append(values)
    flush_batch()


def insert_new_objects(session) -> None:
    """Write the objects added to the session (and not yet flushed) with Core inserts, parents first, and take
    them out of the session: ``insert_rows`` for a handler that builds its rows with ``session.add``. Changes
    to loaded objects are left to the flush. For rows that are not read back in the same transaction, and
    whose keys and foreign keys are set on the objects (no relationship fills them in)."""
    from sqlalchemy import inspect

    pending = list(session.new)
    if not pending:
        return
    rank = {table: position for position, table in enumerate(Base.metadata.sorted_tables)}
    pending.sort(key=lambda obj: rank.get(inspect(obj).mapper.local_table, -1))
    for obj in pending:
        session.expunge(obj)
    insert_rows(session, pending)
