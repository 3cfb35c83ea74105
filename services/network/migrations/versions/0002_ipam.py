"""subnets: allocation range, DNS servers, MAC policy; reserved addresses; free ranges (ipam.py)

The free ranges of every existing subnet are filled from what is allocated now. The default
subnet's allocation range ends at 10.99.3.182: the addresses above are the local hypervisor hosts'
(labcloud/qemu_host.py: the dynamic DHCP range for guests without a host entry, .183-.246, and
the bridges of hosts 2-9, .247-.254).

Revision ID: 0002
Revises: 0001
"""
import ipaddress

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DEFAULT_CIDR = "10.99.0.0/22"
DEFAULT_ALLOCATION_END = "10.99.3.182"


def upgrade():
    # Plain ADD COLUMNs (SQLite's batch mode would copy `subnets`, which `addresses` references);
    # the allocation range is filled below for every subnet and always set by the service.
    op.add_column("subnets", sa.Column("allocation_start", sa.String(39), nullable=True))
    op.add_column("subnets", sa.Column("allocation_end", sa.String(39), nullable=True))
    op.add_column("subnets", sa.Column("dns_servers", sa.String(255), nullable=False, server_default=""))
    op.add_column("subnets", sa.Column("mac_policy", sa.String(8), nullable=False, server_default="orca"))
    op.create_table(
        "reserved_addresses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subnet_id", sa.Integer(), sa.ForeignKey("subnets.id"), nullable=False),
        sa.Column("ip", sa.String(39), nullable=False),
        sa.Column("note", sa.String(255), nullable=False, server_default=""),
        sa.UniqueConstraint("subnet_id", "ip", name="uq_reserved_subnet_ip"))
    free = op.create_table(
        "free_ranges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("subnet_id", sa.Integer(), sa.ForeignKey("subnets.id"), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False))
    op.create_index("ix_free_ranges_subnet_low", "free_ranges", ["subnet_id", "low"])

    conn = op.get_bind()
    for subnet_id, cidr, gateway in conn.execute(sa.text("SELECT id, cidr, gateway FROM subnets")).all():
        net = ipaddress.IPv4Network(cidr)
        start = net.network_address + 1
        end = (ipaddress.IPv4Address(DEFAULT_ALLOCATION_END) if cidr == DEFAULT_CIDR
               else net.broadcast_address - 1)
        conn.execute(sa.text("UPDATE subnets SET allocation_start = :s, allocation_end = :e WHERE id = :id"),
                     {"s": str(start), "e": str(end), "id": subnet_id})
        taken = {int(ipaddress.IPv4Address(gateway))} | {
            int(ipaddress.IPv4Address(ip)) for (ip,) in conn.execute(
                sa.text("SELECT ip FROM addresses WHERE subnet_id = :id"), {"id": subnet_id})}
        ranges, low = [], int(start)
        for hole in sorted(x for x in taken if int(start) <= x <= int(end)):
            if hole > low:
                ranges.append((low, hole - 1))
            low = hole + 1
        if low <= int(end):
            ranges.append((low, int(end)))
        if ranges:
            op.bulk_insert(free, [{"subnet_id": subnet_id, "low": a, "high": b} for a, b in ranges])


def downgrade():
    op.drop_index("ix_free_ranges_subnet_low", "free_ranges")
    op.drop_table("free_ranges")
    op.drop_table("reserved_addresses")
    for column in ("mac_policy", "dns_servers", "allocation_end", "allocation_start"):
        op.drop_column("subnets", column)
