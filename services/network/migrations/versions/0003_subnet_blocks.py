"""subnet blocks: a block of a subnet reserved for one course (blocks.py); free ranges and addresses
say which block they belong to

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
    op.create_table(
        "subnet_blocks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subnet_id", sa.Integer(), sa.ForeignKey("subnets.id"), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("cidr", sa.String(43), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("ends_at", sa.DateTime(), nullable=True))
    op.create_index("ix_subnet_blocks_project_id", "subnet_blocks", ["project_id"])
    # Plain columns (SQLite adds no constraint to an existing table); the models name the key.
    op.add_column("free_ranges", sa.Column("block_id", sa.Integer(), nullable=True))
    op.add_column("addresses", sa.Column("block_id", sa.Integer(), nullable=True))
    op.drop_index("ix_free_ranges_subnet_low", "free_ranges")
    op.create_index("ix_free_ranges_subnet_block_low", "free_ranges", ["subnet_id", "block_id", "low"])


def downgrade():
    op.drop_index("ix_free_ranges_subnet_block_low", "free_ranges")
    op.create_index("ix_free_ranges_subnet_low", "free_ranges", ["subnet_id", "low"])
    op.drop_column("addresses", "block_id")
    op.drop_column("free_ranges", "block_id")
    op.drop_index("ix_subnet_blocks_project_id", "subnet_blocks")
    op.drop_table("subnet_blocks")
