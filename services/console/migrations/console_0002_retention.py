"""The kernel's retention indexes (kernel_0002) in this service's database.

Revision ID: console_0002
"""

revision = "console_0002"
down_revision = "console_0001"
branch_labels = None
depends_on = "kernel_0002"


def upgrade():
    pass  # the kernel's revision does the work; this one makes `sanji migrate console` apply it


def downgrade():
    pass
