"""The subscriptions service's tables.

- ``subscriptions_subscriptions``: who subscribed (the principal and the mandate it subscribed under), the sink
  (a stream queue or a webhook URL), the filters (the dialect's JSON), the status and why.
- ``subscriptions_secrets``: a webhook's Standard Webhooks signing secrets; several are valid during a rotation.
- ``subscriptions_events``: each matched event once (its CloudEvent JSON), whatever number of subscriptions
  matched it: what deliveries, redeliveries and the disclosure audit refer to.
- ``subscriptions_deliveries``: one row per subscription and event (unique: a redelivered event is a no-op),
  with the delivery's state, attempts and last error: the outbox of the stream sinks and the retry queue of the
  webhooks, and the failure view.
- ``subscriptions_attempts``: every failed webhook attempt (the failure view's); a success is on the delivery's row.
- ``subscriptions_disclosures``: who was handed which event of which case, and when (written when a delivery is
  handed over: the stream publish confirmed, the webhook answered 2xx).
- ``subscriptions_replays``: a replay from the event log (``replay.py``): who asked, from when or which offsets,
  under which mandate, its status and progress (the partitions' next offsets, so a replica that takes over a
  replay whose lease lapsed resumes where it stopped).
- ``subscriptions_revision``: one row, bumped by every change to a subscription, so the consumer knows when to
  reload the active subscriptions it matches against in memory.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, UTCDateTime

_SEQUENCE = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER keys


class Subscription(Base):
    __tablename__ = "subscriptions_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))                    # the principal's name
    owner_kind: Mapped[str] = mapped_column(String(16))                # department or staff
    scope_kind: Mapped[str] = mapped_column(String(16))                # department or supervisor
    department: Mapped[str | None] = mapped_column(String(32), nullable=True)
    unit_code: Mapped[str] = mapped_column(String(12))
    unit_prefix: Mapped[str] = mapped_column(String(12))
    district_code: Mapped[str] = mapped_column(String(12))
    sink_type: Mapped[str] = mapped_column(String(16))                 # queue or webhook
    webhook_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    stream_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    broker_user: Mapped[str | None] = mapped_column(String(128), nullable=True)
    filters: Mapped[str] = mapped_column(Text)                         # the dialect's JSON
    description: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))                    # active, paused, disabled, deleted
    status_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_subscriptions_subscriptions_owner", "owner"),)


class SigningSecret(Base):
    __tablename__ = "subscriptions_secrets"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(36), ForeignKey(
        "subscriptions_subscriptions.id", name="fk_subscriptions_secrets_subscription"))
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)   # None: current

    __table_args__ = (Index("ix_subscriptions_secrets_subscription_id", "subscription_id"),)


class MatchedEvent(Base):
    __tablename__ = "subscriptions_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(128))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    case_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    community_code: Mapped[str | None] = mapped_column(String(12), nullable=True)   # the case's community
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # The retention job's query: events no delivery needs any more, oldest first (services/subscriptions/retention.py).
    __table_args__ = (Index("ix_subscriptions_events_received", "received_at"),)


class Delivery(Base):
    __tablename__ = "subscriptions_deliveries"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(36), ForeignKey(
        "subscriptions_subscriptions.id", name="fk_subscriptions_deliveries_subscription"))
    event_id: Mapped[str] = mapped_column(String(64), ForeignKey("subscriptions_events.event_id",
                                                                 name="fk_subscriptions_deliveries_event"))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))    # pending, retrying, delivered, given_up
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_subscriptions_deliveries_subscription_event"),
        # The sweeps' query: due rows, oldest first.
        Index("ix_subscriptions_deliveries_due", "status", "next_attempt_at"),
        Index("ix_subscriptions_deliveries_view", "subscription_id", "status", "seq"),
        # The retention job's query: delivered rows, oldest first (services/subscriptions/retention.py); and whether
        # an event is still needed by a delivery (also what deleting an event checks its foreign key with).
        Index("ix_subscriptions_deliveries_delivered", "created_at",
              postgresql_where=status == "delivered", sqlite_where=status == "delivered"),
        Index("ix_subscriptions_deliveries_event", "event_id"),
    )


class Attempt(Base):
    __tablename__ = "subscriptions_attempts"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    delivery_seq: Mapped[int] = mapped_column(_SEQUENCE, ForeignKey("subscriptions_deliveries.seq",
                                                                              name="fk_subscriptions_attempts_delivery"))
    number: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))                  # delivered or failed
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_subscriptions_attempts_delivery_seq", "delivery_seq"),)


class Disclosure(Base):
    __tablename__ = "subscriptions_disclosures"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(36))
    subscription_id: Mapped[str] = mapped_column(String(36))
    subscriber: Mapped[str] = mapped_column(String(128))
    subscriber_kind: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sink_type: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(128))
    # The case's community (else the event's unit): whose supervisors may read the disclosure.
    community_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    disclosed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_subscriptions_disclosures_case_id", "case_id"),)


class Revision(Base):
    __tablename__ = "subscriptions_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(Integer)


class Replay(Base):
    __tablename__ = "subscriptions_replays"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(36), ForeignKey(
        "subscriptions_subscriptions.id", name="fk_subscriptions_replays_subscription"))
    requested_by: Mapped[str] = mapped_column(String(128))
    # The caller's mandate when it asked (JSON, mandate.Mandate.as_scope): applied with the subscription's scope.
    mandate: Mapped[str] = mapped_column(Text)
    from_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    from_offsets: Mapped[str | None] = mapped_column(Text, nullable=True)      # JSON {partition: offset}
    until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16))                            # queued, running, done, failed
    positions: Mapped[str | None] = mapped_column(Text, nullable=True)         # JSON {partition: next offset}
    events_read: Mapped[int] = mapped_column(Integer)
    events_matched: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_subscriptions_replays_subscription_id", "subscription_id"),
        Index("ix_subscriptions_replays_due", "status", "lease_until"),
    )
