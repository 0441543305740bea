"""办不成事 reports encrypted at rest like the applicant: the reporter's name and phone and her own words.

Existing rows are encrypted with the configured keys (shared/crypto.py), then the clear columns are
dropped. Downgrade decrypts back.

Revision ID: intake_0006
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0006"
down_revision = "intake_0005"
branch_labels = None
depends_on = None

TABLE = "intake_failure_reports"
FIELDS = ("reporter_name", "reporter_phone", "description")
CLEAR_TYPES = {"reporter_name": sa.String(50), "reporter_phone": sa.String(20), "description": sa.Text}


def _keyring():
    from shared.config import Settings
    from shared.crypto import Keyring, load_key_material

    settings = Settings.from_env("intake")
    return Keyring.from_material(load_key_material(pii_key=settings.pii_key, data_keys=settings.data_keys,
                                                   keys_file=settings.keys_file))


def _context(report_id: str) -> str:
    return f"{TABLE}:{report_id}"  # as services/intake/failure_reports.py


def _table():
    return sa.table(TABLE, sa.column("report_id"), sa.column("key_id"), sa.column("wrapped_key"),
                    *(sa.column(name) for name in FIELDS), *(sa.column(f"{name}_sealed") for name in FIELDS))


def upgrade():
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("key_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("wrapped_key", sa.Text, nullable=True))
        for name in FIELDS:
            batch.add_column(sa.Column(f"{name}_sealed", sa.Text, nullable=True))
    connection = op.get_bind()
    reports = _table()
    rows = connection.execute(sa.select(reports.c.report_id, *(reports.c[name] for name in FIELDS))).all()
    if rows:
        keyring = _keyring()
        for row in rows:
            sealed = keyring.seal({name: getattr(row, name) for name in FIELDS}, context=_context(row.report_id))
            connection.execute(reports.update().where(reports.c.report_id == row.report_id).values(
                key_id=sealed.key_id, wrapped_key=sealed.wrapped_key,
                **{f"{name}_sealed": value for name, value in sealed.fields.items()}))
    with op.batch_alter_table(TABLE) as batch:
        for name in FIELDS:
            batch.drop_column(name)
        batch.alter_column("key_id", existing_type=sa.String(64), nullable=False)
        for name in ("wrapped_key", *(f"{name}_sealed" for name in FIELDS)):
            batch.alter_column(name, existing_type=sa.Text, nullable=False)
        batch.create_index("ix_intake_failure_reports_key_id", ["key_id"])


def downgrade():
    with op.batch_alter_table(TABLE) as batch:
        for name in FIELDS:
            batch.add_column(sa.Column(name, CLEAR_TYPES[name], nullable=True))
    connection = op.get_bind()
    reports = _table()
    rows = connection.execute(sa.select(reports)).all()
    if rows:
        from shared.crypto import SealedRecord

        keyring = _keyring()
        for row in rows:
            clear = keyring.open(SealedRecord(key_id=row.key_id, wrapped_key=row.wrapped_key,
                                              fields={name: getattr(row, f"{name}_sealed") for name in FIELDS}),
                                 context=_context(row.report_id))
            connection.execute(reports.update().where(reports.c.report_id == row.report_id).values(**clear))
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_index("ix_intake_failure_reports_key_id")
        for name in ("key_id", "wrapped_key", *(f"{name}_sealed" for name in FIELDS)):
            batch.drop_column(name)
        for name in FIELDS:
            batch.alter_column(name, existing_type=CLEAR_TYPES[name], nullable=False)
