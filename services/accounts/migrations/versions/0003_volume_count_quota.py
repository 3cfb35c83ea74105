"""quota limit `volumes` (how many data volumes a project, or a member's share, may hold).

Projects that limit volume GiB get the default count (10); those without a GiB limit (the
personal projects of migration 0002, unlimited) stay unlimited. Member caps stay unlimited.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

DEFAULT_VOLUMES = 10  # DEFAULT_PROJECT_QUOTA's, when this migration was written


def upgrade():
    for table in ('projects', 'project_members'):
        op.add_column(table, sa.Column('quota_volumes', sa.Integer(), nullable=True))
    op.execute(f"UPDATE projects SET quota_volumes = {DEFAULT_VOLUMES} WHERE quota_volume_gib IS NOT NULL")


def downgrade():
    for table in ('projects', 'project_members'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('quota_volumes')
