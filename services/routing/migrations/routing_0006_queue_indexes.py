"""Queues that stay fast at a million items (issue 17).

- ``district_prefix`` / ``street_prefix``: the item's unit code's first 6 and 9 digits, the jurisdiction prefixes
  of its district and street (shared/catalogue.py ``jurisdiction_prefix``). A queue is then an equality on an
  indexed column, where ``unit_code LIKE '320113%'`` could use no index under PostgreSQL's C.UTF-8 collation.
- Indexes in queue order (promised deadline, then id): the open items of a district, a street or a unit, alone,
  per matter and per department (partial: open items only, a few per cent of the table); every item of a
  jurisdiction per status (``?status=resolved`` pages too); open items whose clock runs, for the overdue gauge.
  ``ix_routing_items_unit_code`` goes: ``ix_routing_items_unit_status`` starts with unit_code.
- ``routing_item_status_counts`` / ``routing_item_status_changes``: the items per status for ``/metrics``,
  counted once here and then kept by the service (services/routing/status_counts.py).

Revision ID: routing_0006_queue_indexes
"""
import sqlalchemy as sa
from alembic import op

revision = "routing_0006_queue_indexes"
down_revision = "routing_0005"
branch_labels = None
depends_on = None

# Written out, not imported: a migration keeps the meaning it had when it was written.
_OPEN = sa.text("status IN ('accepted', 'claimed', 'queued', 'supplement_requested', 'waiting')")
_RUNNING_CLOCK = sa.text("status IN ('accepted', 'claimed', 'queued', 'supplement_requested', 'waiting') "
                         "AND clock_paused_at IS NULL")
_QUEUE_INDEXES = (
    ("ix_routing_items_open_district", ("district_prefix",), _OPEN),
    ("ix_routing_items_open_street", ("street_prefix",), _OPEN),
    ("ix_routing_items_open_unit", ("unit_code",), _OPEN),
    ("ix_routing_items_open_district_matter", ("district_prefix", "matter_code"), _OPEN),
    ("ix_routing_items_open_street_matter", ("street_prefix", "matter_code"), _OPEN),
    ("ix_routing_items_open_unit_matter", ("unit_code", "matter_code"), _OPEN),
    ("ix_routing_items_open_district_department", ("district_prefix", "department_code"), _OPEN),
    ("ix_routing_items_open_street_department", ("street_prefix", "department_code"), _OPEN),
    ("ix_routing_items_open_unit_department", ("unit_code", "department_code"), _OPEN),
    ("ix_routing_items_district_status", ("district_prefix", "status"), None),
    ("ix_routing_items_street_status", ("street_prefix", "status"), None),
    ("ix_routing_items_unit_status", ("unit_code", "status"), None),
)


def upgrade():
    with op.batch_alter_table("routing_items") as batch:
        batch.add_column(sa.Column("district_prefix", sa.String(6), nullable=True))
        batch.add_column(sa.Column("street_prefix", sa.String(9), nullable=True))
    op.execute("UPDATE routing_items SET district_prefix = substr(unit_code, 1, 6), "
               "street_prefix = substr(unit_code, 1, 9)")
    with op.batch_alter_table("routing_items") as batch:
        batch.alter_column("district_prefix", existing_type=sa.String(6), nullable=False)
        batch.alter_column("street_prefix", existing_type=sa.String(9), nullable=False)
    op.drop_index("ix_routing_items_unit_code", table_name="routing_items")
    for name, columns, where in _QUEUE_INDEXES:
        op.create_index(name, "routing_items", [*columns, "promised_deadline", "id"],
                        postgresql_where=where, sqlite_where=where)
    op.create_index("ix_routing_items_running_clock_deadline", "routing_items", ["promised_deadline"],
                    postgresql_where=_RUNNING_CLOCK, sqlite_where=_RUNNING_CLOCK)

    op.create_table(
        "routing_item_status_counts",
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("items", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("status", name="pk_routing_item_status_counts"),
    )
    op.create_table(
        "routing_item_status_changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False, autoincrement=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("change", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_routing_item_status_changes"),
    )
    # The one full count; from here on every transaction that changes a status records the change.
    op.execute("INSERT INTO routing_item_status_counts (status, items) "
               "SELECT status, count(*) FROM routing_items GROUP BY status")


def downgrade():
    op.drop_table("routing_item_status_changes")
    op.drop_table("routing_item_status_counts")
    op.drop_index("ix_routing_items_running_clock_deadline", table_name="routing_items")
    for name, _columns, _where in reversed(_QUEUE_INDEXES):
        op.drop_index(name, table_name="routing_items")
    op.create_index("ix_routing_items_unit_code", "routing_items", ["unit_code"])
    with op.batch_alter_table("routing_items") as batch:
        batch.drop_column("street_prefix")
        batch.drop_column("district_prefix")
