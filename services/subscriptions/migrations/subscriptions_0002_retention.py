"""The kernel's retention indexes (kernel_0002) in this service's database.

Revision ID: subscriptions_0002
"""

revision = "subscriptions_0002"
down_revision = "subscriptions_0001"
branch_labels = None
depends_on = "kernel_0002"


def upgrade():
    pass  # the kernel's revision does the work; this one makes `sanji migrate subscriptions` apply it


def downgrade():
    pass
