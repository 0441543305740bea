"""Routing's tables: items (the source of truth for where each item is and how far it got), their
append-only history, the cases they belong to, and the 容缺 materials still owed."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, String, Text, UniqueConstraint, event, text
from sqlalchemy.orm import Mapped, Session, attributes, mapped_column, validates

from shared.db import Base, UTCDateTime

_SEQUENCE = BigInteger().with_variant(Integer, "sqlite")

# The statuses of an item still being worked (services/routing/lifecycle.py OPEN_STATUSES; the adapters import
# no rules module, and tests/unit/test_routing_queue_indexes.py checks that the two lists agree). The staff
# queues' partial indexes hold these rows only: a few per cent of the table once it has years of history.
OPEN_STATUS_LIST = ("accepted", "claimed", "queued", "supplement_requested", "waiting")
_OPEN = text("status IN (" + ", ".join(f"'{status}'" for status in OPEN_STATUS_LIST) + ")")
_RUNNING_CLOCK = text(_OPEN.text + " AND clock_paused_at IS NULL")

# Jurisdiction prefixes (shared/catalogue.py jurisdiction_prefix): a district's items are those whose unit code
# starts with its 6 digits, a street's with its 9. Stored as columns so that a queue is an equality on an
# indexed column followed by the sort key, one ordered index range per listing, whatever the collation (a
# ``LIKE 'prefix%'`` cannot use a btree index under PostgreSQL's C.UTF-8 collation, and even a prefix range
# over unit_code would hold many units and need a sort).
DISTRICT_PREFIX_LENGTH = 6
STREET_PREFIX_LENGTH = 9


def _queue_index(name: str, *columns: str, where=_OPEN) -> Index:
    """An index whose rows come out in queue order (closest promised deadline first, id breaks ties)."""
    return Index(name, *columns, "promised_deadline", "id", postgresql_where=where, sqlite_where=where)


class RoutedItem(Base):
    __tablename__ = "routing_items"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    case_number: Mapped[str] = mapped_column(String(32))
    matter_code: Mapped[str] = mapped_column(String(64))
    community_code: Mapped[str] = mapped_column(String(12))
    department_code: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    unit_code: Mapped[str] = mapped_column(String(12))
    # unit_code's first 6 and 9 digits, kept equal to it by set_unit_code below (see DISTRICT_PREFIX_LENGTH).
    district_prefix: Mapped[str] = mapped_column(String(6))
    street_prefix: Mapped[str] = mapped_column(String(9))
    status: Mapped[str] = mapped_column(String(32))
    waiting_for: Mapped[str] = mapped_column(String(500))  # space-separated matter codes
    legal_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    promised_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_provisional: Mapped[bool] = mapped_column(Boolean, index=True)
    catalogue_version: Mapped[str] = mapped_column(String(64))
    routed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the deadlines started counting: routing, or release from waiting for a prerequisite.
    clock_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the item reached its current unit: the return limit counts from here.
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    returns_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    clock_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[str | None] = mapped_column(Text)
    delivery_json: Mapped[str | None] = mapped_column(Text)
    closed_reason: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # 通办: the unit whose window took the case in for this line; it sees the item and keeps custody records.
    accepting_unit_code: Mapped[str | None] = mapped_column(String(12), index=True)
    # What the deadlines count, so that a provisional one can be counted again once its year's holiday
    # arrangement is loaded (services/routing/revisions.py): working days from deadlines_counted_from (the promised
    # count includes the days a paused clock added). NULL on rows stored before routing_0004 until revised.
    deadlines_counted_from: Mapped[datetime | None] = mapped_column(UTCDateTime)  # submission or release
    legal_days: Mapped[int | None] = mapped_column(Integer)
    promised_days: Mapped[int | None] = mapped_column(Integer)
    # The supplement request the item waits on: asked on that (Shanghai) day for that many working days.
    supplement_requested_on: Mapped[date | None] = mapped_column(Date)
    supplement_due_days: Mapped[int | None] = mapped_column(Integer)
    supplement_due_date: Mapped[date | None] = mapped_column(Date)
    supplement_due_date_provisional: Mapped[bool | None] = mapped_column(Boolean, index=True)

    __table_args__ = (
        # A case has one item per matter: a redelivered submission can never create a second one.
        UniqueConstraint("case_id", "matter_code", name="uq_routing_items_case_matter"),
        # The staff queues (services/routing/item_actions.py list_queue): per jurisdiction (district, street, one
        # unit), the open items in queue order, also per matter and per department (a department system's queue).
        _queue_index("ix_routing_items_open_district", "district_prefix"),
        _queue_index("ix_routing_items_open_street", "street_prefix"),
        _queue_index("ix_routing_items_open_unit", "unit_code"),
        _queue_index("ix_routing_items_open_district_matter", "district_prefix", "matter_code"),
        _queue_index("ix_routing_items_open_street_matter", "street_prefix", "matter_code"),
        _queue_index("ix_routing_items_open_unit_matter", "unit_code", "matter_code"),
        _queue_index("ix_routing_items_open_district_department", "district_prefix", "department_code"),
        _queue_index("ix_routing_items_open_street_department", "street_prefix", "department_code"),
        _queue_index("ix_routing_items_open_unit_department", "unit_code", "department_code"),
        # ?status= one status, open or closed: the whole table, so closed statuses (years of them) page too.
        _queue_index("ix_routing_items_district_status", "district_prefix", "status", where=None),
        _queue_index("ix_routing_items_street_status", "street_prefix", "status", where=None),
        _queue_index("ix_routing_items_unit_status", "unit_code", "status", where=None),
        # The overdue gauge (services/routing/metrics.py): open items whose clock runs, by promised deadline.
        Index("ix_routing_items_running_clock_deadline", "promised_deadline",
              postgresql_where=_RUNNING_CLOCK, sqlite_where=_RUNNING_CLOCK),
    )

    @validates("unit_code")
    def set_unit_code(self, _key, unit_code: str) -> str:
        self.district_prefix = unit_code[:DISTRICT_PREFIX_LENGTH]
        self.street_prefix = unit_code[:STREET_PREFIX_LENGTH]
        return unit_code

    @property
    def waiting_for_codes(self) -> tuple[str, ...]:
        return tuple(self.waiting_for.split())


class RoutedCase(Base):
    """One row per case: locked by every item action, so a bundle completes exactly once."""

    __tablename__ = "routing_cases"

    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_number: Mapped[str] = mapped_column(String(32))
    community_code: Mapped[str] = mapped_column(String(12))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ItemHistoryEntry(Base):
    """Append-only: who did what to an item, when and why."""

    __tablename__ = "routing_item_history"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[str] = mapped_column(Text, default="{}")  # JSON


class DeferredMaterial(Base):
    """A 容缺 material an item is still owed, with its due date."""

    __tablename__ = "routing_deferred_materials"

    item_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    material_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(36), index=True)
    due_date: Mapped[date] = mapped_column(Date, index=True)
    state: Mapped[str] = mapped_column(String(16))  # pending | supplied | expired
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ItemStatusCount(Base):
    """Items per status, as of the last fold of the changes below (services/routing/status_counts.py)."""

    __tablename__ = "routing_item_status_counts"

    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    items: Mapped[int] = mapped_column(BigInteger)


class ItemStatusChange(Base):
    """+1 for the status an item entered, -1 for the one it left, written in the transaction that changed it
    (inserted only, so concurrent transactions never wait for each other on a counter row); folded into
    ItemStatusCount by a timer. The per-status gauge is the counts plus these rows: exact, and read from a
    handful of rows instead of a scan of every item."""

    __tablename__ = "routing_item_status_changes"

    seq: Mapped[int] = mapped_column(_SEQUENCE, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(32))
    change: Mapped[int] = mapped_column(Integer)


def record_new_item_statuses(session: Session) -> None:
    """The +1 rows of the items added to the session, for a path that writes new rows with Core inserts
    (``shared.db.insert_new_objects`` takes them out of the session, so the flush hook below never sees them):
    call it before that insert, and the change rows go in with the items."""
    changes: dict[str, int] = {}
    for item in session.new:
        if isinstance(item, RoutedItem):
            changes[item.status] = changes.get(item.status, 0) + 1
    session.add_all(ItemStatusChange(status=status, change=change) for status, change in sorted(changes.items()))


@event.listens_for(Session, "before_flush")
def _record_status_changes(session: Session, _flush_context, _instances) -> None:
    """Every status an item enters or leaves, whichever code path changed it, in the same transaction."""
    changes: dict[str, int] = {}
    for item in session.new:
        if isinstance(item, RoutedItem):
            changes[item.status] = changes.get(item.status, 0) + 1
    for item in session.dirty:
        if isinstance(item, RoutedItem):
            history = attributes.get_history(item, "status")
            if history.has_changes():
                for old in history.deleted:
                    changes[old] = changes.get(old, 0) - 1
                for new in history.added:
                    changes[new] = changes.get(new, 0) + 1
    for item in session.deleted:
        if isinstance(item, RoutedItem):
            old = attributes.get_history(item, "status").deleted or [item.status]
            changes[old[0]] = changes.get(old[0], 0) - 1
    session.add_all(ItemStatusChange(status=status, change=change)
                    for status, change in sorted(changes.items()) if change)
