from sqlalchemy import (
    DateTime, ForeignKey, Integer, PrimaryKeyConstraint, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.clock import utcnow
from common.quota import RESOURCES
from common.schemas import MAX_ID

# Where a user is in its life. `deleted` keeps the row: the username stays taken and the audit
# log's user ids keep naming someone.
USER_STATUSES = ("pending", "active", "rejected", "suspended", "deleted")
# What a user without a password of its own has as password_hash: no argon2 hash matches it.
UNUSABLE_PASSWORD = "!"


class Base(DeclarativeBase):
    """The accounts service's own metadata: no other service maps these tables."""


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    # Stored lower-cased, so uniqueness does not depend on how someone typed it.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(128), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    # Why the account was rejected or suspended (shown to admins, and to the user on a refusal).
    status_reason: Mapped[str] = mapped_column(Text, nullable=True)
    created_at = mapped_column(DateTime, default=utcnow)
    approved_at = mapped_column(DateTime, nullable=True)


class Token(Base):
    """A bearer token. Only its sha256 is kept: a leaked database does not leak live tokens.
    A revoked token keeps its row until it would have expired, so it is refused as `revoked`
    rather than as unknown."""
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at = mapped_column(DateTime, default=utcnow)
    expires_at = mapped_column(DateTime, nullable=False)
    address: Mapped[str] = mapped_column(String(64), nullable=True)
    revoked_at = mapped_column(DateTime, nullable=True)


class QuotaColumns:
    """One nullable limit per resource of common.quota.RESOURCES; NULL is unlimited."""
    quota_instances: Mapped[int] = mapped_column(Integer, nullable=True)
    quota_vcpus: Mapped[int] = mapped_column(Integer, nullable=True)
    quota_memory_mib: Mapped[int] = mapped_column(Integer, nullable=True)
    quota_volume_gib: Mapped[int] = mapped_column(Integer, nullable=True)
    quota_floating_ips: Mapped[int] = mapped_column(Integer, nullable=True)
    quota_volumes: Mapped[int] = mapped_column(Integer, nullable=True)

    @property
    def quota(self):
        return {resource: getattr(self, f"quota_{resource}") for resource in RESOURCES}

    def set_quota(self, limits):
        """Change the limits named in `limits` (a partial {resource: int or None})."""
        for resource, limit in limits.items():
            setattr(self, f"quota_{resource}", limit)


class Project(QuotaColumns, Base):
    """A course (Keystone's project): members, managers, quota limits and defaults."""
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    default_lease_hours: Mapped[int] = mapped_column(Integer, nullable=True)
    default_flavor_id: Mapped[int] = mapped_column(Integer, nullable=True)
    default_image_id: Mapped[int] = mapped_column(Integer, nullable=True)
    idle_policy: Mapped[str] = mapped_column(String(16), default="suspend")
    created_at = mapped_column(DateTime, default=utcnow)


class ProjectMember(QuotaColumns, Base):
    """A user's role in a project, with optional caps on the user's share of the project's quota."""
    __tablename__ = "project_members"
    __table_args__ = (PrimaryKeyConstraint("project_id", "user_id", name="pk_project_members"),)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at = mapped_column(DateTime, default=utcnow)
    user = relationship(User, lazy="joined")


class SshKey(Base):
    __tablename__ = "ssh_keys"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_ssh_key_user_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    # Shared with this project's members (they may put it on instances); NULL: private.
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"),
                                            nullable=True, index=True)
    created_at = mapped_column(DateTime, default=utcnow)


class RateLimit(Base):
    """Requests counted in a fixed window per (kind, subject), e.g. ("username", "alice").
    Kept in the database so every replica counts against the same numbers."""
    __tablename__ = "rate_limits"
    __table_args__ = (PrimaryKeyConstraint("kind", "subject", name="pk_rate_limits"),)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(254))
    window_started_at = mapped_column(DateTime, nullable=False)
    count: Mapped[int] = mapped_column(Integer)


class PasswordLink(Base):
    """A one-time link to set a password; only the token's sha256 is kept."""
    __tablename__ = "password_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at = mapped_column(DateTime, nullable=False)
    expires_at = mapped_column(DateTime, nullable=False)
    used_at = mapped_column(DateTime, nullable=True)


class AuditRecord(Base):
    """One request the gateway answered. No foreign keys: records outlive what they name."""
    __tablename__ = "audit_records"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    at = mapped_column(DateTime, nullable=False, index=True)
    user_id: Mapped[int] = mapped_column(Integer, nullable=True, index=True)
    username: Mapped[str] = mapped_column(String(254), nullable=True)
    project_id: Mapped[int] = mapped_column(Integer, nullable=True, index=True)
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(2048))
    action: Mapped[str] = mapped_column(String(128))
    status: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64), nullable=True)
    message: Mapped[str] = mapped_column(Text, nullable=True)


def is_id(value):
    """Ids arrive over RPC as JSON; a bool is an int in Python but never an id, and a number
    beyond 64 bits can name nothing (the database driver would fail on it)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID
