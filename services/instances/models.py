from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.clock import utcnow


class Base(DeclarativeBase):
    """The instances service's own metadata: flavors, hosts, instances."""


class Flavor(Base):
    __tablename__ = "flavors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    disk_gib: Mapped[int] = mapped_column(Integer)
    # XenServer-style CPU scheduling: relative weight (libvirt <shares>) and a cap in percent of
    # the flavor's vCPUs (0 = uncapped).
    cpu_weight: Mapped[int] = mapped_column(Integer)
    cpu_cap_percent: Mapped[int] = mapped_column(Integer)


class Host(Base):
    """A hypervisor host as last reported by its agent's heartbeat."""
    __tablename__ = "hosts"
    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    hypervisor: Mapped[str] = mapped_column(String(32))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="enabled")
    last_heartbeat = mapped_column(DateTime)


class Instance(Base):
    __tablename__ = "instances"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id"))
    image_id: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[int] = mapped_column(Integer, nullable=True)
    public_key: Mapped[str] = mapped_column(Text, nullable=True)
    user_data: Mapped[str] = mapped_column(Text, nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, nullable=True)
    host: Mapped[str] = mapped_column(String(48), nullable=True, index=True)
    ip: Mapped[str] = mapped_column(String(39), nullable=True)
    mac: Mapped[str] = mapped_column(String(17), nullable=True)
    root_volume_id: Mapped[int] = mapped_column(Integer, nullable=True)
    # SSH endpoint: a port on the host's loopback that its agent forwards to <ip>:22, and when SSH
    # first answered after the guest started (Orca's post-boot check).
    ssh_port: Mapped[int] = mapped_column(Integer, nullable=True)
    started_at = mapped_column(DateTime, nullable=True)
    ssh_ready_at = mapped_column(DateTime, nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    running_at = mapped_column(DateTime, nullable=True)
    deleted_at = mapped_column(DateTime, nullable=True)
