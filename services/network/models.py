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
