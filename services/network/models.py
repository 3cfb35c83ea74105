from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
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
    created_at = mapped_column(DateTime, default=utcnow)


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
