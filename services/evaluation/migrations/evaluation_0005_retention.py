"""The kernel's retention indexes (kernel_0002) in this service's database.

Revision ID: evaluation_0005
"""

revision = "evaluation_0005"
down_revision = "evaluation_0004"
branch_labels = None
depends_on = "kernel_0002"


def upgrade():
    pass  # the kernel's revision does the work; this one makes `sanji migrate evaluation` apply it


def downgrade():
    pass
