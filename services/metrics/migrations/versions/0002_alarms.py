"""alarms: CloudWatch-like alarms on instance and host metrics, and their state history

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_actor", sa.Text(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("instance_id", sa.String(length=36), nullable=True),
        sa.Column("host", sa.String(length=63), nullable=True),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("statistic", sa.String(length=8), nullable=False),
        sa.Column("comparison", sa.String(length=32), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("evaluation_periods", sa.Integer(), nullable=False),
        sa.Column("datapoints_to_alarm", sa.Integer(), nullable=False),
        sa.Column("missing_data", sa.String(length=16), nullable=False),
        sa.Column("emails", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=17), nullable=False),
        sa.Column("state_reason", sa.String(length=1000), nullable=False),
        sa.Column("state_value", sa.Float(), nullable=True),
        sa.Column("state_changed_at", sa.DateTime(), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alarms_instance_id", "alarms", ["instance_id"])
    op.create_table(
        "alarm_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("old_state", sa.String(length=17), nullable=False),
        sa.Column("new_state", sa.String(length=17), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("changed_at", sa.DateTime(), nullable=True),
        sa.Column("actions_result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alarm_id", "changed_at"),
    )
    op.create_index("ix_alarm_history_alarm_id", "alarm_history", ["alarm_id"])


def downgrade():
    op.drop_index("ix_alarm_history_alarm_id", table_name="alarm_history")
    op.drop_table("alarm_history")
    op.drop_index("ix_alarms_instance_id", table_name="alarms")
    op.drop_table("alarms")
