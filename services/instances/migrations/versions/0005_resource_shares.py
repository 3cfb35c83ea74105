"""instances: resource shares per instance (XenServer's CPU weight and cap, memory, bandwidth) and
each flavor's maximum memory (the guest's balloon can grow up to it without a restart)

Existing instances get their flavor's values and no bandwidth limit; existing flavors may grow to
twice their memory. A flavor's cpu_cap_percent keeps its values: they meant the same under every
reading for the 1-vCPU flavors, and the 2-vCPU flavor is uncapped.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SHARES = ("cpu_weight", "cpu_cap", "memory_mib", "bandwidth_in_kib", "bandwidth_out_kib")


def upgrade():
    # A plain ADD COLUMN (with a default, as SQLite needs for NOT NULL): a batch copy of `flavors`
    # would drop the table the instances' foreign key points at.
    op.add_column("flavors", sa.Column("max_memory_mib", sa.Integer(), nullable=False, server_default="0"))
    op.execute("UPDATE flavors SET max_memory_mib = 2 * memory_mib")

    with op.batch_alter_table("instances") as batch:
        for column in SHARES:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=True))
    op.execute("""UPDATE instances SET
        cpu_weight = (SELECT cpu_weight FROM flavors WHERE flavors.id = instances.flavor_id),
        cpu_cap = (SELECT cpu_cap_percent FROM flavors WHERE flavors.id = instances.flavor_id),
        memory_mib = (SELECT memory_mib FROM flavors WHERE flavors.id = instances.flavor_id),
        bandwidth_in_kib = 0, bandwidth_out_kib = 0""")
    with op.batch_alter_table("instances") as batch:
        for column in SHARES:
            batch.alter_column(column, existing_type=sa.Integer(), nullable=False)


def downgrade():
    with op.batch_alter_table("instances") as batch:
        for column in reversed(SHARES):
            batch.drop_column(column)
    op.drop_column("flavors", "max_memory_mib")
