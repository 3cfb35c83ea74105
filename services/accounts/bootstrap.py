"""Creates (or resets) the `admin` account, so a fresh cloud has someone who can approve users,
and a project named `admin` it manages, so the admin can create instances at once.

    python -m services.accounts.bootstrap [--database-url URL]

DATABASE_URL is read from the environment unless given; LABCLOUD_ADMIN_PASSWORD, if set, becomes
the admin's password (on creation, and again on every run, so an operator can reset it).
Without it, a new admin gets a random password that is printed once and never stored in clear.
"""
import argparse
import os
import secrets
import sys

from sqlalchemy.engine import Engine

from common.clock import utcnow
from common.db import make_engine, session_scope
from common.errors import InvalidInput
from common.migrate import upgrade
from services.accounts import passwords, projects
from services.accounts.models import User
from services.accounts.users import find_by_username

ADMIN_USERNAME = "admin"
ADMIN_EMAIL = "admin@localhost"
ADMIN_PROJECT = "admin"
PASSWORD_ENV = "LABCLOUD_ADMIN_PASSWORD"


def _check_password(password):
    """The password policy, except that `admin` may appear in it: the operator chose it."""
    try:
        passwords.check_policy(password)
    except InvalidInput as exc:
        raise ValueError(f"the admin password {'; '.join(exc.fields['password'])}") from None


def _ensure_admin_in(session, password, hasher):
    password = password or None  # an empty LABCLOUD_ADMIN_PASSWORD means "not set"
    if password is not None:
        _check_password(password)
    now = utcnow()
    admin = find_by_username(session, ADMIN_USERNAME)
    created = admin is None
    if created:
        password = password or secrets.token_urlsafe(18)
        admin = User(username=ADMIN_USERNAME, email=ADMIN_EMAIL, role="admin", status="active",
                     password_hash=hasher.hash(password), created_at=now, approved_at=now)
        session.add(admin)
    else:
        # An existing `admin` is made a working administrator again, whatever happened to it.
        admin.role = "admin"
        if admin.status != "active":
            admin.status, admin.approved_at, admin.status_reason = "active", now, None
        if password is not None:
            admin.password_hash = hasher.hash(password)
    session.flush()
    projects.ensure_project(session, ADMIN_PROJECT, admin.id, now,
                            description="the administrators' project")  # commits
    return created, password


def ensure_admin(session_or_engine, password=None, hasher=None):
    """Make sure an active `admin` with role admin exists, manager of the project `admin`.
    Returns (created, password):

    - created: True if the user was created by this call;
    - password: the password this call set (the one given, or a generated one for a new
      admin), or None if an existing admin kept its password.

    hasher: a passwords.Hasher (argon2id at its default cost if None).
    """
    hasher = hasher or passwords.Hasher()
    if isinstance(session_or_engine, Engine):
        with session_scope(session_or_engine) as session:
            return _ensure_admin_in(session, password, hasher)
    return _ensure_admin_in(session_or_engine, password, hasher)


def main(argv=None):
    parser = argparse.ArgumentParser(description="create or update the labcloud admin account")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url or DATABASE_URL is required")
    password = os.environ.get(PASSWORD_ENV) or None
    # Migrating first (idempotent) lets this run on a brand-new database.
    upgrade("services.accounts", args.database_url)
    engine = make_engine(args.database_url)
    try:
        created, new_password = ensure_admin(engine, password)
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    finally:
        engine.dispose()
    if created and password is None:
        print(f"created user {ADMIN_USERNAME}; it is shown only this once:")
        print(f"admin password: {new_password}")
    elif created:
        print(f"created user {ADMIN_USERNAME} with the password from {PASSWORD_ENV}")
    elif new_password is not None:
        print(f"user {ADMIN_USERNAME} exists; password reset to {PASSWORD_ENV}")
    else:
        print(f"user {ADMIN_USERNAME} exists; password left unchanged "
              f"(set {PASSWORD_ENV} to reset it)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
