"""routed subnets: a subnet is `bridged` (every existing one) or `routed` to one host

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("subnets", sa.Column("mode", sa.String(8), nullable=False, server_default="bridged"))
    op.add_column("subnets", sa.Column("host", sa.String(64), nullable=True))
    op.create_index("ix_subnets_host", "subnets", ["host"])


def downgrade():
    op.drop_index("ix_subnets_host", "subnets")
    op.drop_column("subnets", "host")
    op.drop_column("subnets", "mode")
