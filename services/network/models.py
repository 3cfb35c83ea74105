from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.clock import utcnow


class Base(DeclarativeBase):
    """The network service's own metadata: no other service maps these tables."""


class Subnet(Base):
    __tablename__ = "subnets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    cidr: Mapped[str] = mapped_column(String(43), unique=True)
    gateway: Mapped[str] = mapped_column(String(39))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # Guests get addresses from allocation_start..allocation_end only (Orca kept .1-.19 for staff),
    # never the gateway or a reserved address.
    allocation_start: Mapped[str] = mapped_column(String(39))
    allocation_end: Mapped[str] = mapped_column(String(39))
    dns_servers: Mapped[str] = mapped_column(String(255), default="")   # comma-separated
    # MACs: `orca` (aa:00 + the IPv4 bytes, so admins can pre-approve the list) or `random`
    # (locally administered, unique in the database).
    mac_policy: Mapped[str] = mapped_column(String(8), default="orca")
    # `guests` (fixed addresses of instances) or `floating` (a pool of floating IPs, floating.py):
    # both are allocated through the same free ranges (ipam.py).
    purpose: Mapped[str] = mapped_column(String(8), default="guests", server_default="guests")
    # `bridged`: guests on the hosts' shared L2 segment (qemu_host.py, host_link.py). `routed`: the
    # one host `host` is the guests' gateway and routes their addresses (the host agent's
    # routed.py), because its upstream routes the whole subnet to that host's uplink address.
    mode: Mapped[str] = mapped_column(String(8), default="bridged", server_default="bridged")
    host = mapped_column(String(64), nullable=True, index=True)
    created_at = mapped_column(DateTime, default=utcnow)


class ReservedAddress(Base):
    """An address of a subnet no guest gets (a router, a printer, a host's bridge)."""
    __tablename__ = "reserved_addresses"
    __table_args__ = (UniqueConstraint("subnet_id", "ip", name="uq_reserved_subnet_ip"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subnet_id: Mapped[int] = mapped_column(ForeignKey("subnets.id"))
    ip: Mapped[str] = mapped_column(String(39))
    note: Mapped[str] = mapped_column(String(255), default="")


class SubnetBlock(Base):
    """A block of a subnet reserved for one course's guests (Grid5000's g5k-subnets, blocks.py):
    they get addresses from it and nobody else does."""
    __tablename__ = "subnet_blocks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subnet_id: Mapped[int] = mapped_column(ForeignKey("subnets.id"))
    project_id = mapped_column(BigInteger, index=True)
    cidr: Mapped[str] = mapped_column(String(43), unique=True)
    created_at = mapped_column(DateTime, default=utcnow)
    ends_at = mapped_column(DateTime, nullable=True)   # then it goes back once its addresses are free


class FreeRange(Base):
    """Free addresses low..high (integers) of a subnet (ipam.py): what allocation takes from. A
    range of a block (block_id) is that block's; the others are the subnet's shared pool."""
    __tablename__ = "free_ranges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subnet_id: Mapped[int] = mapped_column(ForeignKey("subnets.id"))
    block_id = mapped_column(ForeignKey("subnet_blocks.id"), nullable=True)
    low = mapped_column(BigInteger)
    high = mapped_column(BigInteger)


Index("ix_free_ranges_subnet_block_low", FreeRange.subnet_id, FreeRange.block_id, FreeRange.low)


class Address(Base):
    """One allocated IP. Released addresses are deleted, so the lowest free one is reused.

    The unique constraints are what stops two replicas from handing out the same IP or MAC.
    """
    __tablename__ = "addresses"
    __table_args__ = (
        UniqueConstraint("subnet_id", "ip", name="uq_address_subnet_ip"),
        UniqueConstraint("mac", name="uq_address_mac"),
        UniqueConstraint("owner", name="uq_address_owner"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subnet_id: Mapped[int] = mapped_column(ForeignKey("subnets.id"))
    ip: Mapped[str] = mapped_column(String(39))
    mac: Mapped[str] = mapped_column(String(17))
    owner: Mapped[str] = mapped_column(String(64))
    block_id = mapped_column(ForeignKey("subnet_blocks.id"), nullable=True)   # it goes back there
    allocated_at = mapped_column(DateTime, default=utcnow)
    # Where the guest holding it runs (host_rules.py puts its filter and floating-IP rules there),
    # and during a live migration the host it is moving to (which gets them too).
    host = mapped_column(String(64), nullable=True, index=True)
    moving_to = mapped_column(String(64), nullable=True, index=True)


class FloatingIp(Base):
    """A floating (public) address of a pool (a `floating` subnet), allocated to a project and
    associated with at most one instance (`owner`, the instance's address owner)."""
    __tablename__ = "floating_ips"
    __table_args__ = (UniqueConstraint("pool_id", "ip", name="uq_floating_pool_ip"),
                      UniqueConstraint("owner", name="uq_floating_owner"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("subnets.id"))
    ip: Mapped[str] = mapped_column(String(39))
    project_id = mapped_column(BigInteger, index=True)
    user_id = mapped_column(BigInteger)
    owner = mapped_column(String(64), nullable=True)      # the associated instance, if any
    allocated_at = mapped_column(DateTime, default=utcnow)


class QuotaLock(Base):
    """One row per project, updated first by every transaction that checks the project's floating-IP
    quota (common/quota.py's charged): the update serialises them."""
    __tablename__ = "quota_locks"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    counter: Mapped[int] = mapped_column(BigInteger, server_default="0")


class SecurityGroup(Base):
    """A project's set of allowed traffic (security_groups.py). Every project has one named
    `default` (SSH in, everything out), made the first time it is needed."""
    __tablename__ = "security_groups"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_secgroup_project_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at = mapped_column(DateTime, default=utcnow)


class SecurityGroupRule(Base):
    """Allowed traffic: `ingress` from a source, `egress` to a destination; the peer is a CIDR or
    the members of a group (remote_group_id). Ports only for tcp and udp."""
    __tablename__ = "security_group_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("security_groups.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8))          # ingress | egress
    protocol: Mapped[str] = mapped_column(String(8))           # tcp | udp | icmp | any
    port_min = mapped_column(Integer, nullable=True)
    port_max = mapped_column(Integer, nullable=True)
    cidr = mapped_column(String(43), nullable=True)
    remote_group_id = mapped_column(ForeignKey("security_groups.id"), nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)


class PortGroup(Base):
    """Which security groups apply to an instance's address (owner)."""
    __tablename__ = "port_security_groups"
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("security_groups.id"), primary_key=True)
