"""hosts: what is used (as the host reports it), beside what is allocated: free memory and the
1-minute load average from each heartbeat

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("hosts", sa.Column("memory_free_mib", sa.Integer(), nullable=True))
    op.add_column("hosts", sa.Column("load_1m", sa.Float(), nullable=True))


def downgrade():
    op.drop_column("hosts", "load_1m")
    op.drop_column("hosts", "memory_free_mib")
