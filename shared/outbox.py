"""Transactional outbox, idempotent-consumer record, and the unit of work that ties them together.

A handler changes state and records the events it causes in the same transaction (no dual write).
The relay (``shared.relay``) publishes committed events afterwards. A consumer records
``(consumer, event)`` in the same transaction as its effect, so a redelivered event changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.clock import Clock
from shared.db import Base, UTCDateTime
from shared.events import CloudEvent, EventPayload
from shared.tracing import current_trace_context

_SEQUENCE = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER keys


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    source: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(128))
    routing_key: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        # The relay's only query: unpublished rows of one source, oldest first.
        Index("ix_outbox_unpublished", "source", "seq",
              postgresql_where=published_at.is_(None), sqlite_where=published_at.is_(None)),
        # The retention job's query: published rows, oldest publication first (shared.retention).
        Index("ix_outbox_published_at", "published_at",
              postgresql_where=published_at.is_not(None), sqlite_where=published_at.is_not(None)),
    )


class ProcessedMessage(Base):
    __tablename__ = "processed_messages"

    consumer: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # The retention job's query: records handled before the cut-off, oldest first (shared.retention).
    __table_args__ = (Index("ix_processed_messages_processed_at", "processed_at"),)


def insert_ignoring_duplicates(session: Session, model):
    """INSERT ... ON CONFLICT DO NOTHING, in the dialect of the session's database.

    A Core statement on the model's table: the ORM's bulk-insert layer (for an ORM entity) cost more than the
    statement itself, and these rows are never loaded in the session. (``Session.execute`` still autoflushes
    before it, as it did for the ORM statement.)"""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(getattr(model, "__table__", model)).on_conflict_do_nothing()


class NotAnOwner(RuntimeError):
    """A service tried to publish an event type it does not own (shared/bus.py, OWNED_EVENTS)."""


class UnitOfWork:
    """A transaction that rolls back unless committed, collecting outgoing events into the outbox."""

    def __init__(self, session_factory, *, source: str, clock: Clock,
                 on_events_committed: Callable[[], None] | None = None):
        self._session_factory = session_factory
        self.source = source
        self.clock = clock
        self._on_events_committed = on_events_committed
        self.session: Session | None = None
        self.events: list[CloudEvent] = []

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        self.events = []
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self.session.rollback()
        finally:
            self.session.close()

    def publish(self, payload: EventPayload) -> CloudEvent:
        """Record an event to be published once this unit of work commits."""
        from shared.bus import publisher_refusal

        refusal = publisher_refusal(self.source, payload.event_type)
        if refusal:  # the broker would refuse it for ever and the relay would stall on it: fail the handler now
            raise NotAnOwner(refusal)
        envelope = CloudEvent.wrap(payload, source=self.source, time=self.clock.now())
        trace_context = current_trace_context()
        if trace_context:  # created inside a span (tracing on): the publish and the consumers join its trace
            envelope = envelope.model_copy(update=trace_context)
        # A Core insert (no ORM object to flush) on the session's connection: the row is written now, in this
        # transaction, and the session's pending changes are not flushed for it (they are at commit, as before).
        self.session.connection().execute(insert(OutboxMessage.__table__).values(
            event_id=envelope.id,
            source=self.source,
            event_type=envelope.type,
            routing_key=payload.routing_key(),
            body=envelope.model_dump_json(),
            created_at=envelope.time,
        ))
        self.events.append(envelope)
        return envelope

    def claim_message(self, consumer: str, event: CloudEvent) -> bool:
        """Record that ``consumer`` handles ``event``; False if it already did (a redelivery).

        The row is flushed at once and commits with the effect, so "processed" and "effect done"
        are one fact. A concurrent duplicate (another replica) waits on the key, then inserts nothing.
        """
        result = self.session.execute(insert_ignoring_duplicates(self.session, ProcessedMessage).values(
            consumer=consumer, event_key=event.dedupe_key(), processed_at=self.clock.now()))
        return result.rowcount == 1

    def commit(self) -> None:
        self.session.commit()
        if self.events and self._on_events_committed is not None:
            self._on_events_committed()
        self.events = []
