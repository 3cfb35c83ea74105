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


class FreeRange(Base):
    """Free addresses low..high (integers) of a subnet (ipam.py): what allocation takes from."""
    __tablename__ = "free_ranges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subnet_id: Mapped[int] = mapped_column(ForeignKey("subnets.id"))
    low = mapped_column(BigInteger)
    high = mapped_column(BigInteger)


Index("ix_free_ranges_subnet_low", FreeRange.subnet_id, FreeRange.low)


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
    allocated_at = mapped_column(DateTime, default=utcnow)
