"""instance_owner_id on alarms and schedules: the instance's owner may read what a teacher or an
admin put on their instance

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("alarms", sa.Column("instance_owner_id", sa.BigInteger(), nullable=True))
    op.add_column("schedules", sa.Column("instance_owner_id", sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("instance_owner_id")
    with op.batch_alter_table("alarms") as batch:
        batch.drop_column("instance_owner_id")
