from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.clock import utcnow


class Base(DeclarativeBase):
    """The storage service's own metadata: no other service maps these tables."""


class Image(Base):
    """A template disk. `source_path` is relative to the data dir (LABCLOUD_DATA_DIR) or absolute.

    Versions by name (migration 0004): each upload of a name in one scope (`public`, `project:<id>`
    or `user:<id>`) is the next version. A deleted image keeps its row (state `deleted`): its id is
    never reused, because hosts cache image files by id (image-<id>.<format>)."""
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("name", "scope", "version", name="uq_image_name_scope_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # public (admins publish), project (a course's members see it), private (its owner only)
    visibility: Mapped[str] = mapped_column(String(8), default="public")
    scope: Mapped[str] = mapped_column(String(32), default="public")
    user_id: Mapped[int | None] = mapped_column(BigInteger)  # the owner (null: registered by path)
    project_id: Mapped[int | None] = mapped_column(BigInteger)  # visibility project: its course
    # queued (no file yet) | uploading | saving (from an instance) | active | error | deleted
    state: Mapped[str] = mapped_column(String(16), default="active")
    min_memory_mib: Mapped[int | None] = mapped_column(Integer)
    checksum: Mapped[str | None] = mapped_column(String(64))  # sha256 of the file in the store
    file_bytes: Mapped[int | None] = mapped_column(BigInteger)  # the file's length (size_bytes: virtual)
    reason: Mapped[str | None] = mapped_column(String(255))  # why it is in error
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    description: Mapped[str] = mapped_column(String(255), default="")
    format: Mapped[str] = mapped_column(String(16), default="qcow2")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    min_disk_gib: Mapped[int] = mapped_column(Integer, default=1)
    source_path: Mapped[str] = mapped_column(String(1024))
    # Direct kernel boot (the tiny image): kernel and initramfs files, relative to the data dir like
    # source_path, and the kernel command line the image wants (the instances service adds ip=).
    kernel_path: Mapped[str] = mapped_column(String(1024), nullable=True)
    initrd_path: Mapped[str] = mapped_column(String(1024), nullable=True)
    cmdline: Mapped[str] = mapped_column(String(1024), nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)


class Volume(Base):
    """A disk on one host's pool. The row is written ('creating') before the host is asked, so a
    crash mid-way leaves a record that the delete path can clean up.

    (host, name) is unique because the name is the volume's key in the host pool; an instance has
    at most one root disk (partial unique index, so data volumes are not constrained).
    """
    __tablename__ = "volumes"
    __table_args__ = (
        UniqueConstraint("host", "name", name="uq_volume_host_name"),
        Index("uq_volume_root_instance", "instance_id", unique=True,
              sqlite_where=text("kind = 'root'"), postgresql_where=text("kind = 'root'")),
        # Data volumes (migration 0003): a name once per project, a device once per instance.
        UniqueConstraint("project_id", "display_name", name="uq_volume_project_name"),
        Index("uq_volume_instance_device", "instance_id", "device", unique=True,
              sqlite_where=text("device IS NOT NULL"), postgresql_where=text("device IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(8))  # root | data
    host: Mapped[str] = mapped_column(String(48))
    pool: Mapped[str | None] = mapped_column(String(64))  # known once the host has answered
    path: Mapped[str | None] = mapped_column(String(1024))
    capacity_bytes: Mapped[int] = mapped_column(BigInteger)
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"))
    instance_id: Mapped[str | None] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16), default="creating")  # creating|available|deleting
    created_at = mapped_column(DateTime, default=utcnow)
    # Data volumes only (kind 'data', services/storage/volumes.py); root disks leave them null.
    # state: creating | available | in-use | deleting | error; while in-use, instance_id and
    # device (vdb, vdc, ...) say where, attach_state how far: attaching | attached | detaching.
    display_name: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    size_gib: Mapped[int | None] = mapped_column(Integer)
    source_snapshot_id: Mapped[int | None] = mapped_column(Integer)
    device: Mapped[str | None] = mapped_column(String(8))
    attach_state: Mapped[str | None] = mapped_column(String(16))
    attached_at = mapped_column(DateTime, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(255))
    updated_at = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Snapshot(Base):
    """A full copy of a data volume at one moment, in the same host's pool (`pool_name` is its
    volume there). It outlives its volume; a new volume made from it lands on its host."""
    __tablename__ = "volume_snapshots"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_snapshot_project_name"),
        UniqueConstraint("host", "pool_name", name="uq_snapshot_host_pool_name"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    pool_name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)
    volume_id: Mapped[int | None] = mapped_column(Integer)  # the source (it may be gone since)
    host: Mapped[str] = mapped_column(String(48))
    path: Mapped[str | None] = mapped_column(String(1024))
    size_gib: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="creating")  # creating|available|deleting|error
    reason: Mapped[str | None] = mapped_column(String(255))
    created_at = mapped_column(DateTime, default=utcnow)


class QuotaLock(Base):
    """One row per project, updated as the first statement of every transaction that checks the
    project's volume quota (common.quota.charged)."""
    __tablename__ = "quota_locks"
    project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    counter: Mapped[int] = mapped_column(BigInteger, server_default="0")
