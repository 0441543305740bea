"""The kernel's retention indexes (kernel_0002) in this service's database.

Revision ID: intake_0011
"""

revision = "intake_0011"
down_revision = "intake_0010_deferral_revision"
branch_labels = None
depends_on = "kernel_0002"


def upgrade():
    pass  # the kernel's revision does the work; this one makes `sanji migrate intake` apply it


def downgrade():
    pass
