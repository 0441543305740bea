"""The applicant encrypted at rest: sealed columns added, existing rows encrypted, clear columns dropped.

Each row gets its own data key (AES-256-GCM), wrapped by the current key-encryption key of the
configuration (SANJI_DATA_KEYS, or SANJI_KEYS_FILE; shared/crypto.py). Rows that exist when this runs
are encrypted in the same transaction, then the clear columns are dropped: after this revision no
name, ID number, phone or e-mail is stored in clear. A database with applicants and no key configured
stops here with one line naming the variables. Downgrade decrypts back into clear columns.

Revision ID: intake_0005
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0005"
down_revision = "intake_0004"
branch_labels = None
depends_on = None

FIELDS = ("name", "id_number", "phone", "email")
CLEAR_TYPES = {"name": sa.String(50), "id_number": sa.String(18), "phone": sa.String(20), "email": sa.String(254)}


def _keyring():
    from shared.config import Settings
    from shared.crypto import Keyring, load_key_material

    settings = Settings.from_env("intake")
    return Keyring.from_material(load_key_material(pii_key=settings.pii_key, data_keys=settings.data_keys,
                                                   keys_file=settings.keys_file))


def _context(case_id: str) -> str:
    return f"intake_applicants:{case_id}"  # as services/intake/adapters/personal_data.py


def upgrade():
    with op.batch_alter_table("intake_applicants") as batch:
        batch.add_column(sa.Column("key_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("wrapped_key", sa.Text, nullable=True))
        for name in FIELDS:
            batch.add_column(sa.Column(f"{name}_sealed", sa.Text, nullable=True))

    connection = op.get_bind()
    applicants = sa.table("intake_applicants", sa.column("case_id"), sa.column("key_id"), sa.column("wrapped_key"),
                          *(sa.column(name) for name in FIELDS), *(sa.column(f"{name}_sealed") for name in FIELDS))
    rows = connection.execute(sa.select(applicants.c.case_id, *(applicants.c[name] for name in FIELDS))).all()
    if rows:
        keyring = _keyring()
        for row in rows:
            sealed = keyring.seal({name: getattr(row, name) for name in FIELDS}, context=_context(row.case_id))
            connection.execute(applicants.update().where(applicants.c.case_id == row.case_id).values(
                key_id=sealed.key_id, wrapped_key=sealed.wrapped_key,
                **{f"{name}_sealed": value for name, value in sealed.fields.items()}))

    with op.batch_alter_table("intake_applicants") as batch:
        for name in FIELDS:
            batch.drop_column(name)
        for name in ("key_id", "wrapped_key", "name_sealed", "id_number_sealed", "phone_sealed"):
            batch.alter_column(name, existing_type=sa.String(64) if name == "key_id" else sa.Text, nullable=False)
        batch.create_index("ix_intake_applicants_key_id", ["key_id"])


def downgrade():
    with op.batch_alter_table("intake_applicants") as batch:
        for name in FIELDS:
            batch.add_column(sa.Column(name, CLEAR_TYPES[name], nullable=True))

    connection = op.get_bind()
    applicants = sa.table("intake_applicants", sa.column("case_id"), sa.column("key_id"), sa.column("wrapped_key"),
                          *(sa.column(name) for name in FIELDS), *(sa.column(f"{name}_sealed") for name in FIELDS))
    rows = connection.execute(sa.select(applicants)).all()
    if rows:
        from shared.crypto import SealedRecord

        keyring = _keyring()
        for row in rows:
            clear = keyring.open(SealedRecord(key_id=row.key_id, wrapped_key=row.wrapped_key,
                                              fields={name: getattr(row, f"{name}_sealed") for name in FIELDS}),
                                 context=_context(row.case_id))
            connection.execute(applicants.update().where(applicants.c.case_id == row.case_id).values(**clear))

    with op.batch_alter_table("intake_applicants") as batch:
        batch.drop_index("ix_intake_applicants_key_id")
        for name in ("key_id", "wrapped_key", *(f"{name}_sealed" for name in FIELDS)):
            batch.drop_column(name)
        for name in ("name", "id_number", "phone"):
            batch.alter_column(name, existing_type=CLEAR_TYPES[name], nullable=False)
