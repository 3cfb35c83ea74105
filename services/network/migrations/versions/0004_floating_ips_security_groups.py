"""floating IPs (pools are subnets of purpose `floating`), security groups, and the host of each
address (where its filter and floating-IP rules go)

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
    op.add_column("subnets", sa.Column("purpose", sa.String(8), nullable=False, server_default="guests"))
    op.add_column("addresses", sa.Column("host", sa.String(64), nullable=True))
    op.add_column("addresses", sa.Column("moving_to", sa.String(64), nullable=True))
    op.create_index("ix_addresses_host", "addresses", ["host"])
    op.create_index("ix_addresses_moving_to", "addresses", ["moving_to"])
    op.create_table(
        "floating_ips",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pool_id", sa.Integer(), sa.ForeignKey("subnets.id"), nullable=False),
        sa.Column("ip", sa.String(39), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("allocated_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("pool_id", "ip", name="uq_floating_pool_ip"),
        sa.UniqueConstraint("owner", name="uq_floating_owner"))
    op.create_index("ix_floating_ips_project_id", "floating_ips", ["project_id"])
    op.create_table(
        "quota_locks",
        sa.Column("project_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("counter", sa.BigInteger(), server_default="0"))
    op.create_table(
        "security_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("project_id", "name", name="uq_secgroup_project_name"))
    op.create_index("ix_security_groups_project_id", "security_groups", ["project_id"])
    op.create_table(
        "security_group_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("security_groups.id"), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("port_min", sa.Integer(), nullable=True),
        sa.Column("port_max", sa.Integer(), nullable=True),
        sa.Column("cidr", sa.String(43), nullable=True),
        sa.Column("remote_group_id", sa.Integer(), sa.ForeignKey("security_groups.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True))
    op.create_index("ix_security_group_rules_group_id", "security_group_rules", ["group_id"])
    op.create_table(
        "port_security_groups",
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("security_groups.id"), primary_key=True))


def downgrade():
    op.drop_table("port_security_groups")
    op.drop_index("ix_security_group_rules_group_id", "security_group_rules")
    op.drop_table("security_group_rules")
    op.drop_index("ix_security_groups_project_id", "security_groups")
    op.drop_table("security_groups")
    op.drop_table("quota_locks")
    op.drop_index("ix_floating_ips_project_id", "floating_ips")
    op.drop_table("floating_ips")
    op.drop_index("ix_addresses_moving_to", "addresses")
    op.drop_index("ix_addresses_host", "addresses")
    op.drop_column("addresses", "moving_to")
    op.drop_column("addresses", "host")
    op.drop_column("subnets", "purpose")
