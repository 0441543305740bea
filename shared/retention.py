"""Retention: rows that only serve delivery and deduplication are deleted once they are old enough to be useless.

What goes (docs/reliability.md, "Retention", says why each bound is safe):

- the outbox's **published** rows, ``SANJI_RETENTION_OUTBOX_DAYS`` after they were published (an unpublished row
  is never touched, however old: the relay still owes it to the broker);
- the consumers' **processed-message** records, ``SANJI_RETENTION_PROCESSED_DAYS`` after the event was handled;
- whatever a service adds with ``retention_targets(config)`` on its class (notification: its finished
  deliveries and their attempts, and its inbox).

How, so that no lock and no transaction is long, and replicas may run it at once: each table is pruned in
batches of at most ``SANJI_RETENTION_BATCH_SIZE`` rows, oldest first. One batch is one short transaction: select
the keys of up to that many expired rows (on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so two pruners take disjoint
batches and neither waits for the other, and with a ``lock_timeout`` so a batch gives up rather than queue behind
anything), delete them by primary key (dependent rows first), commit. Each "older than" is an index range scan
(the indexes of ``kernel_0002`` and ``notification_0004``). SQLite has one writer at a time: a batch there is a
short write transaction, and two pruners simply take turns.

Deleted rows leave dead space. SQLite reuses its free pages for new rows by itself. On PostgreSQL only a vacuum
makes the space reusable, and autovacuum waits for 20 % of a table to be dead by default (or may be off): after
a pass that deleted rows, each table it touched is vacuumed (``SANJI_RETENTION_VACUUM``, on by default), with
``SKIP_LOCKED`` so that a table another vacuum holds is skipped rather than waited for. A plain ``VACUUM`` takes a
lock that blocks no reads and no writes, only schema changes and other vacuums.

A pass runs on a nameko timer in every service (``SANJI_RETENTION_INTERVAL_SECONDS``, first one interval after the
start, so that a consumer takes in its queue's backlog before its records are judged), and on demand with
``sanji prune [SERVICE]``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from nameko.extensions import DependencyProvider
from nameko.timer import Timer
from sqlalchemy import Column, Table, delete, select, text, tuple_
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from shared.db import is_postgres

log = structlog.get_logger(__name__)

DEFAULT_OUTBOX_DAYS = 7.0
DEFAULT_PROCESSED_DAYS = 14.0
DEFAULT_INTERVAL_SECONDS = 3600.0
DEFAULT_BATCH_SIZE = 1000
MAX_BATCH_SIZE = 10_000
# A batch waits at most this long for a row lock (PostgreSQL) before it gives up until the next pass.
LOCK_TIMEOUT_MS = 2000


def retention_of(days: float | None) -> timedelta | None:
    """A retention setting in days as a duration; ``0`` (or None) means "kept for ever": nothing is pruned."""
    if days is None or days == 0:
        return None
    if days < 0:
        raise ValueError("a retention is 0 (kept for ever) or a positive number of days")
    return timedelta(days=days)


def cutoff(now: datetime, retention: timedelta | None) -> datetime | None:
    """Rows whose age column is strictly before this instant may go; None: none may."""
    if now.tzinfo is None:
        raise ValueError("a naive 'now'")
    return None if retention is None else now - retention


@dataclass(frozen=True)
class Prunable:
    """One table the retention job prunes.

    ``key``: the primary key columns (batches are deleted by key); ``age``: the time compared with the cut-off
    (indexed); ``condition``: which rows may go at all (published, finished), whatever their age; ``dependents``:
    the foreign-key columns of child rows that go with a row (single-column keys only), deleted first."""

    table: Table
    key: tuple[Column, ...]
    age: Column
    retention: timedelta | None
    condition: ColumnElement | None = None
    dependents: tuple[Column, ...] = ()
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.table.name

    def expired(self, cut: datetime) -> ColumnElement:
        clause = self.age < cut
        return clause if self.condition is None else clause & self.condition


@dataclass(frozen=True)
class RetentionPolicy:
    """The kernel's retention settings (``shared.config.Settings``, passed to the container config)."""

    outbox: timedelta | None = timedelta(days=DEFAULT_OUTBOX_DAYS)
    processed: timedelta | None = timedelta(days=DEFAULT_PROCESSED_DAYS)
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    batch_size: int = DEFAULT_BATCH_SIZE
    vacuum: bool = True

    @classmethod
    def from_config(cls, config: Mapping) -> RetentionPolicy:
        """From a nameko container config (``nameko_config`` writes the kernel's validated settings into it)."""
        def number(name: str, default: float) -> float:
            raw = config.get(name)
            return default if raw in (None, "") else float(raw)

        return cls(outbox=retention_of(number("SANJI_RETENTION_OUTBOX_DAYS", DEFAULT_OUTBOX_DAYS)),
                   processed=retention_of(number("SANJI_RETENTION_PROCESSED_DAYS", DEFAULT_PROCESSED_DAYS)),
                   interval_seconds=number("SANJI_RETENTION_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS),
                   batch_size=int(number("SANJI_RETENTION_BATCH_SIZE", DEFAULT_BATCH_SIZE)),
                   vacuum=str(config.get("SANJI_RETENTION_VACUUM", True)).strip().lower() not in ("false", "0", "no"))


def kernel_targets(policy: RetentionPolicy) -> list[Prunable]:
    """The kernel's tables, which every service's database has."""
    from shared.outbox import OutboxMessage, ProcessedMessage

    outbox, processed = OutboxMessage.__table__, ProcessedMessage.__table__
    return [
        Prunable(outbox, (outbox.c.seq,), outbox.c.published_at, policy.outbox,
                 condition=outbox.c.published_at.is_not(None)),
        Prunable(processed, (processed.c.consumer, processed.c.event_key), processed.c.processed_at,
                 policy.processed),
    ]


def targets_for(service_cls, config: Mapping) -> list[Prunable]:
    """The kernel's tables and the service's own (its class's ``retention_targets(config)``, if any)."""
    own = getattr(service_cls, "retention_targets", None)
    return kernel_targets(RetentionPolicy.from_config(config)) + (list(own(config)) if own else [])


def _key_clause(target: Prunable, keys: Sequence[tuple]) -> ColumnElement:
    if len(target.key) == 1:
        return target.key[0].in_([key[0] for key in keys])
    return tuple_(*target.key).in_([tuple(key) for key in keys])


def prune_batch(engine: Engine, target: Prunable, cut: datetime, batch_size: int) -> int:
    """Delete up to ``batch_size`` expired rows of one table in one short transaction; returns how many went."""
    postgres = is_postgres(engine)
    with engine.connect() as connection, connection.begin():
        if postgres:
            connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))
        query = select(*target.key).where(target.expired(cut)).order_by(target.age).limit(batch_size)
        if postgres:
            query = query.with_for_update(skip_locked=True)
        keys = connection.execute(query).all()
        if not keys:
            return 0
        for child in target.dependents:
            connection.execute(delete(child.table).where(child.in_([key[0] for key in keys])))
        # The key alone: a row another pruner deleted meanwhile is simply not counted.
        return connection.execute(delete(target.table).where(_key_clause(target, keys))).rowcount


def prune_table(engine: Engine, target: Prunable, *, now: datetime, batch_size: int = DEFAULT_BATCH_SIZE,
                pause_seconds: float = 0.0, max_seconds: float | None = None) -> int:
    """Prune one table batch by batch until a batch comes back short; returns the rows deleted.

    Between batches the greenthread yields (``pause_seconds``), so handlers sharing the pool go first. A pass
    stops after ``max_seconds`` (the next pass goes on where this one stopped)."""
    cut = cutoff(now, target.retention)
    if cut is None:
        return 0
    started, removed = time.monotonic(), 0
    while True:
        deleted = prune_batch(engine, target, cut, batch_size)
        removed += deleted
        # Short on PostgreSQL may also mean "the rest is locked by another pruner": it will take them.
        if deleted < batch_size or (max_seconds is not None and time.monotonic() - started > max_seconds):
            return removed
        time.sleep(pause_seconds)


def prune(engine: Engine, targets: Sequence[Prunable], *, now: datetime, batch_size: int = DEFAULT_BATCH_SIZE,
          pause_seconds: float = 0.0, max_seconds: float | None = None, vacuum: bool = False) -> dict[str, int]:
    """One pass over every table: ``{table: rows deleted}``, in the order given (a table kept for ever: 0); with
    ``vacuum`` on PostgreSQL, the tables it deleted from are vacuumed afterwards."""
    removed = {target.name: prune_table(engine, target, now=now, batch_size=batch_size, pause_seconds=pause_seconds,
                                        max_seconds=max_seconds)
               for target in targets}
    if vacuum and is_postgres(engine):
        touched = [target for target in targets if removed[target.name]]
        vacuum_tables(engine, list(dict.fromkeys(table for target in touched
                                                 for table in (target.table, *(c.table for c in target.dependents)))))
    return removed


def vacuum_tables(engine: Engine, tables: Sequence[Table]) -> None:
    """``VACUUM (SKIP_LOCKED)`` the tables (PostgreSQL): their dead rows' space becomes reusable. Outside any
    transaction block, as VACUUM must be; a table without the right to vacuum it is skipped with a server warning."""
    if not tables:
        return
    names = ", ".join(engine.dialect.identifier_preparer.format_table(table) for table in tables)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM (SKIP_LOCKED) {names}"))


# ── in the service: a nameko timer and what it calls ─────────────────────────────────────────────────────────


class RetentionTimer(Timer):
    """Fires every ``SANJI_RETENTION_INTERVAL_SECONDS`` in every replica (0: never; ``sanji prune`` still works).

    Not eager: the first pass waits one interval, so a consumer that was down first takes in the backlog that
    queued up meanwhile, while the records that deduplicate it are still there."""

    def __init__(self, **kwargs):
        super().__init__(interval=None, eager=False, **kwargs)

    def setup(self):
        self.interval = RetentionPolicy.from_config(self.container.config).interval_seconds

    def start(self):
        if self.interval:
            super().start()

    def stop(self):
        if self.gt is not None:
            super().stop()

    def kill(self):
        if self.gt is not None:
            super().kill()


retention_timer = RetentionTimer.decorator


@dataclass
class Pruner:
    """What the timer's worker runs: one pass over the service's tables, logged and counted, never raising."""

    engine: Engine
    targets: list[Prunable]
    batch_size: int
    vacuum: bool = True
    metrics: object | None = None
    pause_seconds: float = 0.01
    last: dict[str, int] = field(default_factory=dict)

    def run(self, clock) -> dict[str, int]:
        try:
            removed = prune(self.engine, self.targets, now=clock.now(), batch_size=self.batch_size,
                            pause_seconds=self.pause_seconds, max_seconds=300, vacuum=self.vacuum)
        except Exception as exc:  # noqa: BLE001 - a database outage or a lock timeout: the next pass goes on
            log.warning("retention pass failed; the next one goes on", error=type(exc).__name__,
                        detail=str(exc).splitlines()[0][:200] if str(exc) else "")
            return {}
        self.last = removed
        if self.metrics is not None:
            for table, count in removed.items():
                if count:
                    self.metrics.retention_deleted.labels(table).inc(count)
        if any(removed.values()):
            log.info("retention pass", **{table: count for table, count in removed.items()})
        return removed


class Retention(DependencyProvider):
    """``self.retention.run(clock)``: the service's pruner over its database (the storage's engine and pool)."""

    def setup(self):
        from shared.db import shared_engine
        from shared.metrics import for_container

        config = self.container.config
        policy = RetentionPolicy.from_config(config)
        self.pruner = Pruner(engine=shared_engine(config["DATABASE_URL"]),
                             targets=targets_for(self.container.service_cls, config),
                             batch_size=policy.batch_size, vacuum=policy.vacuum,
                             metrics=for_container(self.container))

    def get_dependency(self, worker_ctx):
        return self.pruner
