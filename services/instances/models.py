from sqlalchemy import (
    BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false)
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
    # The defaults of its instances' shares (services/instances/shares.py says what they mean):
    # XenServer's CPU weight and cap (percent of ONE vCPU for the whole guest, 0 = uncapped).
    cpu_weight: Mapped[int] = mapped_column(Integer)
    cpu_cap_percent: Mapped[int] = mapped_column(Integer)
    # The guest's memory at boot is memory_mib; its balloon may be set up to max_memory_mib live.
    max_memory_mib: Mapped[int] = mapped_column(Integer)


class Host(Base):
    """A hypervisor host as last reported by its agent's heartbeat."""
    __tablename__ = "hosts"
    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    hypervisor: Mapped[str] = mapped_column(String(32))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    # Only an `enabled` host takes new instances; `disabled` and `draining` keep theirs
    # (scheduler.HOST_STATES). Up or down is told by last_heartbeat (scheduler.is_up).
    state: Mapped[str] = mapped_column(String(16), default="enabled")
    last_heartbeat = mapped_column(DateTime)
    # The host's storage pool size from its heartbeat; NULL: not reported, so not filtered on.
    disk_gib = mapped_column(Integer, nullable=True)
    # What its instances in states that hold host resources take (vCPUs and disk of their flavor,
    # their own memory_mib) and how many they are: changed in the transaction of each change that
    # takes or frees them (scheduler.py), so placement reads one row per host.
    allocated_vcpus: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    allocated_memory_mib: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    allocated_disk_gib: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    allocated_instances: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # What is used, as the last heartbeat said: free memory and the 1-minute load average.
    memory_free_mib: Mapped[int] = mapped_column(Integer, nullable=True)
    load_1m = mapped_column(Float, nullable=True)
    # The agent process's start mark from its heartbeats: a new value means the agent restarted.
    agent_started = mapped_column(BigInteger, nullable=True)
    # Reconcile of this host: one replica at a time holds the lease (compare-and-set on it).
    reconcile_lease_until = mapped_column(DateTime, nullable=True)
    reconcile_lease_holder: Mapped[str] = mapped_column(String(64), nullable=True)


# Placement's weighers walk it (placement.py): most free memory first (spread) or least (pack),
# so one decision reads a few host rows, not every one.
Index("ix_hosts_free_memory", (Host.memory_mib - Host.allocated_memory_mib).desc(), Host.allocated_instances,
      Host.name)


class Instance(Base):
    """States and their transitions: states.py; every change goes through instance_store.py."""
    __tablename__ = "instances"
    # A name is held while the state keeps it (name_key = name), released (NULL) once deleted:
    # the database refuses a second live instance of one owner with that name, across replicas.
    __table_args__ = (UniqueConstraint("user_id", "name_key", name="uq_instances_user_name_key"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    # The project (course) it was created in: its quota counts it, its managers may act on it.
    project_id: Mapped[int] = mapped_column(BigInteger, index=True)
    flavor_id: Mapped[int] = mapped_column(ForeignKey("flavors.id"))
    image_id: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[int] = mapped_column(Integer, nullable=True)
    public_key: Mapped[str] = mapped_column(Text, nullable=True)
    user_data: Mapped[str] = mapped_column(Text, nullable=True)
    name_key: Mapped[str] = mapped_column(String(63), nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_changed_at = mapped_column(DateTime, nullable=True)
    reason: Mapped[str] = mapped_column(Text, nullable=True)
    host: Mapped[str] = mapped_column(String(48), nullable=True, index=True)
    # While it migrates (state `migrating`, migrate.py): the destination, whose allocation counts it
    # too until the move ends; the delete saga cleans up there as well.
    migrating_to: Mapped[str] = mapped_column(String(48), nullable=True, index=True)
    # Its owner's placement group, if any: with anti_affinity it is placed on a host that holds
    # no other instance of the owner's group (scheduler.py).
    placement_group: Mapped[str] = mapped_column(String(64), nullable=True)
    anti_affinity: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    ip: Mapped[str] = mapped_column(String(39), nullable=True)
    mac: Mapped[str] = mapped_column(String(17), nullable=True)
    root_volume_id: Mapped[int] = mapped_column(Integer, nullable=True)
    # Resource shares (services/instances/shares.py): the flavor's at create, then what the owner or
    # an admin set. Quotas and host allocation count memory_mib, not the flavor's.
    cpu_weight: Mapped[int] = mapped_column(Integer)
    cpu_cap: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    bandwidth_in_kib: Mapped[int] = mapped_column(Integer, default=0)
    bandwidth_out_kib: Mapped[int] = mapped_column(Integer, default=0)
    # SSH endpoint: a port on the host's loopback that its agent forwards to <ip>:22, and when SSH
    # first answered after the guest started (Orca's post-boot check).
    ssh_port: Mapped[int] = mapped_column(Integer, nullable=True)
    started_at = mapped_column(DateTime, nullable=True)
    ssh_ready_at = mapped_column(DateTime, nullable=True)
    # The newest thing its host reported about the domain (libvirt state, or `missing`) and that
    # report's sequence number: reports older than host_seq are ignored, so events handled out of
    # order never move a guest back. started_seq: the report that started the guest last, so an
    # SSH-ready report from an earlier boot is ignored.
    host_seq = mapped_column(BigInteger, nullable=True)
    host_state: Mapped[str] = mapped_column(String(16), nullable=True)
    started_seq = mapped_column(BigInteger, nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    running_at = mapped_column(DateTime, nullable=True)
    deleted_at = mapped_column(DateTime, nullable=True)


# Anti-affinity reads the hosts of an owner's placement group from this index alone (placement.py).
Index("ix_instances_placement_group", Instance.placement_group, Instance.user_id, Instance.state, Instance.host)


class QuotaLock(Base):
    """One row per project, updated as the first statement of every transaction that checks the
    project's quota: the update serialises those transactions (services/instances/quotas.py)."""
    __tablename__ = "quota_locks"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    counter: Mapped[int] = mapped_column(BigInteger, server_default="0")   # how often it was taken


class InstanceAction(Base):
    """Nova's instance actions: every request and saga on an instance, who asked and how it ended."""
    __tablename__ = "instance_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(Integer, nullable=True)   # None: labcloud itself
    username: Mapped[str] = mapped_column(String(64), nullable=True)
    requested_at = mapped_column(DateTime, default=utcnow)
    finished_at = mapped_column(DateTime, nullable=True)
    result: Mapped[str] = mapped_column(String(16), default="in_progress")  # success, error
    message: Mapped[str] = mapped_column(Text, nullable=True)


class Orphan(Base):
    """Something on a host that no instance owns, first seen at `first_seen`; removed by reconcile
    once it has been there for the grace period (a create may be making it right now)."""
    __tablename__ = "orphans"
    __table_args__ = (UniqueConstraint("host", "kind", "name", name="uq_orphans_host_kind_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(48))
    kind: Mapped[str] = mapped_column(String(16))   # domain, volume, storage_volume, leftovers, address
    name: Mapped[str] = mapped_column(String(128))
    first_seen = mapped_column(DateTime, default=utcnow)


class ReconcileReport(Base):
    """What one reconcile run found and did."""
    __tablename__ = "reconcile_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at = mapped_column(DateTime, default=utcnow)
    finished_at = mapped_column(DateTime, nullable=True)
    replica: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16))   # timer, admin, host_returned
    hosts: Mapped[str] = mapped_column(Text, default="")  # comma-separated hosts it checked
    findings: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of {host, kind, subject, action, detail}
