"""instances: migrating_to, the destination host of a migration under way

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("instances", sa.Column("migrating_to", sa.String(48), nullable=True))
    op.create_index("ix_instances_migrating_to", "instances", ["migrating_to"])


def downgrade():
    op.drop_index("ix_instances_migrating_to", "instances")
    op.drop_column("instances", "migrating_to")
