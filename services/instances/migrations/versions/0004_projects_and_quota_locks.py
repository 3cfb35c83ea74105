"""instances: the project each instance belongs to, and the per-project quota lock rows

Existing instances get project_id = user_id: the accounts service's migration of the same issue
gives every existing user a personal project whose id is that user's id, so every instance made
before projects existed lands in its owner's personal project (and counts against its quota).

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
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("project_id", sa.BigInteger(), nullable=True))
    op.execute("UPDATE instances SET project_id = user_id")
    with op.batch_alter_table("instances") as batch:
        batch.alter_column("project_id", existing_type=sa.BigInteger(), nullable=False)
        batch.create_index("ix_instances_project_id", ["project_id"])
    op.create_table(
        "quota_locks",
        sa.Column("project_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("counter", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade():
    op.drop_table("quota_locks")
    with op.batch_alter_table("instances") as batch:
        batch.drop_index("ix_instances_project_id")
        batch.drop_column("project_id")
