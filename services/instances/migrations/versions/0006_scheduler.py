"""instances: the scheduler's per-host allocation counters, a host's disk size, and placement groups

Hosts get what their instances take (allocated vCPUs, memory, disk and how many instances), kept
by scheduler.py in the transaction of every change that takes or frees them; existing hosts are
counted from their instances in states that hold host resources (vCPUs and disk of the flavor,
the instance's own memory_mib). A host's disk_gib stays NULL (unknown, not filtered on) until its
agent reports it. Index ix_hosts_free_memory orders hosts as placement's weighers do. Instances
get an optional placement group and the anti-affinity flag, and an index that gives the hosts of
an owner's group.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COUNTERS = ("allocated_vcpus", "allocated_memory_mib", "allocated_disk_gib", "allocated_instances")
# states.HOLDS_HOST_RESOURCES when this migration was written (a migration never imports the code).
HOLDS_HOST_RESOURCES = ("building", "running", "stopping", "stopped", "starting", "rebooting", "error",
                        "host_down", "deleting")


def _held(expression):
    states = ", ".join(f"'{name}'" for name in HOLDS_HOST_RESOURCES)
    return f"""COALESCE((SELECT SUM({expression}) FROM instances JOIN flavors ON flavors.id = instances.flavor_id
        WHERE instances.host = hosts.name AND instances.state IN ({states})), 0)"""


def upgrade():
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("disk_gib", sa.Integer(), nullable=True))
        for column in COUNTERS:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=False, server_default="0"))
    op.execute(f"""UPDATE hosts SET
        allocated_vcpus = {_held("flavors.vcpus")},
        allocated_memory_mib = {_held("instances.memory_mib")},
        allocated_disk_gib = {_held("flavors.disk_gib")},
        allocated_instances = {_held("1")}""")
    op.create_index("ix_hosts_free_memory", "hosts", [sa.text("(memory_mib - allocated_memory_mib) DESC"),
                                                      "allocated_instances", "name"])
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("placement_group", sa.String(64), nullable=True))
        batch.add_column(sa.Column("anti_affinity", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_instances_placement_group", "instances", ["placement_group", "user_id", "state", "host"])


def downgrade():
    op.drop_index("ix_instances_placement_group", "instances")
    op.drop_index("ix_hosts_free_memory", "hosts")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("anti_affinity")
        batch.drop_column("placement_group")
    with op.batch_alter_table("hosts") as batch:
        for column in reversed(COUNTERS):
            batch.drop_column(column)
        batch.drop_column("disk_gib")
