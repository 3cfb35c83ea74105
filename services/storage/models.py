from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.clock import utcnow


class Base(DeclarativeBase):
    """The storage service's own metadata: no other service maps these tables."""


class Image(Base):
    """A template disk. `source_path` is relative to the data dir (LABCLOUD_DATA_DIR) or absolute."""
    __tablename__ = "images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
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
