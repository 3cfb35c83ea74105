"""instances: state machine bookkeeping (host report order, held names), action log, reconcile

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
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("name_key", sa.String(63), nullable=True))
        batch.add_column(sa.Column("state_changed_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("host_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("host_state", sa.String(16), nullable=True))
        batch.add_column(sa.Column("started_seq", sa.BigInteger(), nullable=True))
    # Existing instances hold their names unless deleted.
    op.execute("UPDATE instances SET name_key = name WHERE state != 'deleted'")
    with op.batch_alter_table("instances") as batch:
        batch.create_unique_constraint("uq_instances_user_name_key", ["user_id", "name_key"])
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("reconcile_lease_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("reconcile_lease_holder", sa.String(64), nullable=True))
        batch.add_column(sa.Column("agent_started", sa.BigInteger(), nullable=True))
    op.create_table(
        "instance_actions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True))
    op.create_index("ix_instance_actions_instance_id", "instance_actions", ["instance_id"])
    op.create_table(
        "orphans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host", sa.String(48), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("host", "kind", "name", name="uq_orphans_host_kind_name"))
    op.create_table(
        "reconcile_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("replica", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("hosts", sa.Text(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False))


def downgrade():
    op.drop_table("reconcile_reports")
    op.drop_table("orphans")
    op.drop_index("ix_instance_actions_instance_id", "instance_actions")
    op.drop_table("instance_actions")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("agent_started")
        batch.drop_column("reconcile_lease_holder")
        batch.drop_column("reconcile_lease_until")
    with op.batch_alter_table("instances") as batch:
        batch.drop_constraint("uq_instances_user_name_key", type_="unique")
        for column in ("started_seq", "host_state", "host_seq", "state_changed_at", "name_key"):
            batch.drop_column(column)
