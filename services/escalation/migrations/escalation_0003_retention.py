"""The kernel's retention indexes (kernel_0002) in this service's database.

Revision ID: escalation_0003
"""

revision = "escalation_0003"
down_revision = "escalation_0002"
branch_labels = None
depends_on = "kernel_0002"


def upgrade():
    pass  # the kernel's revision does the work; this one makes `sanji migrate escalation` apply it


def downgrade():
    pass
