"""The kernel's retention indexes (kernel_0002) in this service's database.

Revision ID: routing_0005
"""

revision = "routing_0005"
down_revision = "routing_0004_deadline_revision"
branch_labels = None
depends_on = "kernel_0002"


def upgrade():
    pass  # the kernel's revision does the work; this one makes `sanji migrate routing` apply it


def downgrade():
    pass
