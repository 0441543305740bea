"""The evaluation service's tables: the rates read model, completions, ratings, rectifications, appeals,
体验官 and their findings with attachments, and 督办单.

Revision ID: evaluation_0001

This first revision creates the tables from the ORM definitions (``adapters/orm.py``), copied into a
metadata of its own. It therefore follows the ORM: before the first release of a change to those tables, the
definitions must be written out here as explicit ``op.create_table`` calls and the change made a new revision.
"""
import sqlalchemy as sa
from alembic import op

revision = "evaluation_0001"
down_revision = None
branch_labels = ("evaluation",)
depends_on = "kernel_0001"


def _snapshot() -> sa.MetaData:
    from services.evaluation.adapters.orm import EVALUATION_TABLES

    metadata = sa.MetaData()
    for table in EVALUATION_TABLES:
        table.to_metadata(metadata)
    return metadata


def upgrade():
    _snapshot().create_all(op.get_bind())


def downgrade():
    _snapshot().drop_all(op.get_bind())
