"""data volumes: who owns them, their name, size, source snapshot, attachment (instance, device,
attach_state), reason; volume snapshots; the per-project quota lock rows

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("display_name", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("project_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("user_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("size_gib", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("source_snapshot_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("device", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("attach_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("attached_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
        batch.create_unique_constraint("uq_volume_project_name", ["project_id", "display_name"])
    op.create_index("uq_volume_instance_device", "volumes", ["instance_id", "device"], unique=True,
                    sqlite_where=sa.text("device IS NOT NULL"), postgresql_where=sa.text("device IS NOT NULL"))
    op.create_table(
        "volume_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("pool_name", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("volume_id", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=48), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=True),
        sa.Column("size_gib", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "name", name="uq_snapshot_project_name"),
        sa.UniqueConstraint("host", "pool_name", name="uq_snapshot_host_pool_name"),
    )
    op.create_table(
        "quota_locks",
        sa.Column("project_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("counter", sa.BigInteger(), server_default="0", nullable=True),
        sa.PrimaryKeyConstraint("project_id"),
    )


def downgrade():
    op.drop_table("quota_locks")
    op.drop_table("volume_snapshots")
    op.drop_index("uq_volume_instance_device", table_name="volumes")
    with op.batch_alter_table("volumes") as batch:
        batch.drop_constraint("uq_volume_project_name", type_="unique")
        for column in ("updated_at", "reason", "attached_at", "attach_state", "device", "source_snapshot_id",
                       "size_gib", "user_id", "project_id", "display_name"):
            batch.drop_column(column)
