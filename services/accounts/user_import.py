"""Importing a class list: a CSV file `username,email,full_name,course` (course: a project's name;
a row may leave it empty when the request names `project`). All rows or none: every row is
checked first, and only a file without a single bad row is written, in one transaction.

Rows of users that already exist with the same username AND e-mail join the course (`existing`);
new users are made active without a password and each gets a one-time link to set one.
An admin imports into any course, a manager only into the courses they manage (user:import).
"""
import csv
import dataclasses
import io

from marshmallow import fields, validate
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common import policy
from common.errors import Conflict, InvalidInput
from common.schemas import StrictSchema
from services.accounts import memberships, password_links, projects
from services.accounts.models import UNUSABLE_PASSWORD, Project, User
from services.accounts.schemas import USERNAME

MAX_ROWS = 5000
COLUMNS = ("username", "email", "full_name", "course")
HEADER_HELP = "the first line must be the header username,email,full_name,course"


class RowSchema(StrictSchema):
    """One row's fields, with the same rules as a sign-up."""
    username = fields.String(required=True, validate=USERNAME)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    full_name = fields.String(allow_none=True, validate=validate.Length(max=128))
    course = fields.String(allow_none=True)


@dataclasses.dataclass
class Row:
    line: int
    username: str
    email: str
    full_name: str = None
    course: str = None
    project: Project = None
    existing: User = None
    errors: list = dataclasses.field(default_factory=list)

    def fail(self, field, message):
        self.errors.append(f"line {self.line}: {field}: {message}")


def _malformed(problem):
    return InvalidInput(f"not a class list: {problem}", {"csv": [problem]})


def parse(text):
    """The rows of the file, each with its line number (the header is line 1). InvalidInput
    naming `csv` for a file that is not a class list at all."""
    if not isinstance(text, str) or "\x00" in text:
        raise _malformed("the file is not text")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        if tuple(header) not in (COLUMNS, COLUMNS[:3]):
            raise _malformed(HEADER_HELP if not header else
                             f"{HEADER_HELP}, not {','.join(header)}")
        rows = []
        line = reader.line_num + 1
        for fields_ in reader:
            if any(value.strip() for value in fields_):
                rows.append(_row(line, header, fields_))
                if len(rows) > MAX_ROWS:
                    raise _malformed(f"more than {MAX_ROWS} rows")
            line = reader.line_num + 1
    except csv.Error as exc:
        raise _malformed(f"line {reader.line_num}: {exc}") from None
    if not rows:
        raise _malformed("no rows after the header")
    return rows


def _row(line, header, values):
    values = [value.strip() for value in values]
    row = Row(line=line, username=values[0] if values else "",
              email=values[1].lower() if len(values) > 1 else "")
    if len(values) != len(header):
        row.fail("row", f"expected {len(header)} fields, found {len(values)}")
        return row
    given = dict(zip(header, values))
    row.full_name, row.course = given["full_name"] or None, given.get("course") or None
    for field, messages in RowSchema().validate(
            {"username": row.username, "email": row.email, "full_name": row.full_name,
             "course": row.course}).items():
        row.fail(field, "; ".join(messages))
    return row


def _check_courses(session, actor, rows, default_project):
    """Each row's project: its course by name, else the request's; one the actor may not import
    into is an error of that row (a course the actor cannot even see reads as unknown)."""
    names = {row.course for row in rows if row.course}
    by_name = {p.name: p for p in session.scalars(select(Project).where(Project.name.in_(names)))}
    for row in rows:
        if row.errors:
            continue
        project = by_name.get(row.course) if row.course else default_project
        hidden = project is None or not policy.allowed(actor, "project:get", {"project_id": project.id})
        if row.course and hidden:
            row.fail("course", f"no course named {row.course!r}")
        elif project is None:
            row.fail("course", "empty: name a course, or import into a project")
        elif not policy.allowed(actor, "user:import", {"project_id": project.id}):
            row.fail("course", f"you do not manage course {project.name!r}")
        else:
            row.project = project


def _check_duplicates(rows):
    first_line = {}
    for row in rows:
        for key in (("username", row.username), ("email", row.email)):
            if key in first_line:
                row.fail(key[0], f"also on line {first_line[key]}")
            else:
                first_line[key] = row.line


def _check_existing_users(session, rows):
    """Same username and e-mail: an existing user (joins the course). Any other clash: error."""
    users = session.scalars(select(User).where(
        User.username.in_({r.username for r in rows}) | User.email.in_({r.email for r in rows})))
    by_username, by_email = {}, {}
    for user in users:
        by_username[user.username], by_email[user.email] = user, user
    for row in rows:
        if row.errors:
            continue
        user = by_username.get(row.username)
        if user is None and row.email in by_email:
            row.fail("email", "already used by another user")
        elif user is not None and user.email != row.email:
            row.fail("username", "taken by a user with another e-mail address")
        elif user is not None and user.status in memberships.GONE_STATUSES:
            row.fail("username", f"taken by a {user.status} account")
        else:
            row.existing = user


def check(session, actor, rows, default_project):
    """Fill each row's project and existing user, or its errors."""
    _check_duplicates(rows)
    _check_courses(session, actor, rows, default_project)
    _check_existing_users(session, rows)
    errors = [message for row in rows for message in row.errors]
    if errors:
        bad = sum(1 for row in rows if row.errors)
        raise InvalidInput(f"{bad} of {len(rows)} rows have errors; nothing was imported",
                           {"csv": errors})


def _write(session, rows, settings, now):
    """Create the new users, join everyone to their course. Returns (report rows, created
    [(user, project id, link)]). In the session, not committed."""
    report, created = [], []
    for row in rows:
        user = row.existing
        if user is None:
            user = User(username=row.username, email=row.email, full_name=row.full_name,
                        password_hash=UNUSABLE_PASSWORD, role="user", status="active",
                        created_at=now, approved_at=now)
            session.add(user)
            session.flush()
            link = password_links.create_link(session, user.id, settings, now)
            created.append((user, row.project.id, link["password_link"]))
        if memberships.find(session, row.project.id, user.id) is None:
            memberships.join(session, row.project.id, user.id, "member", now)
        report.append({"line": row.line, "username": user.username, "user_id": user.id,
                       "result": "existing" if row.existing else "created"})
    return report, created


def import_users(session, actor, text, project_id, settings, now):
    """Returns (ImportReportSchema dict, [(user, project id, password link)] of created users).
    A repeat of an imported file finds every user `existing` and creates nothing."""
    default_project = None
    if project_id is not None:
        default_project = projects.project_for(session, actor, project_id, "user:import",
                                               what="import users into this project")
    elif not policy.is_admin(actor) and not policy.managed_project_ids(actor):
        policy.enforce(actor, "user:import", what="import users")  # nobody to import for
    rows = parse(text)
    check(session, actor, rows, default_project)
    try:
        report, created = _write(session, rows, settings, now)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("a username or e-mail of this file was taken meanwhile; nothing was "
                       "imported: try again", {"csv": ["taken meanwhile"]}) from None
    existing = sum(1 for row in report if row["result"] == "existing")
    return {"created": len(created), "existing": existing, "rows": report}, created
