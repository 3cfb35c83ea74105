"""Importing class lists (CSV): all rows or none, errors by line, managers only into their own
courses, existing users joined, a repeat creating nothing."""
import pytest
from sqlalchemy import func, select

from common.errors import Forbidden, InvalidInput, NotFound
from services.accounts import memberships, projects, user_import
from services.accounts.dependencies import DEFAULT_PROJECT_QUOTA, Settings
from services.accounts.models import PasswordLink, ProjectMember, User

from tests.accounts.conftest import ADMIN

SETTINGS = Settings(public_url="https://cloud.example")
HEADER = "username,email,full_name,course\n"


@pytest.fixture
def courses(session, clock, make_user):
    """cs101 managed by `teacher`; cs102 where teacher is only a member; cs103 apart."""
    teacher = make_user("teacher")
    made = {}
    for name in ("cs101", "cs102", "cs103"):
        made[name], _ = projects.create_project(session, ADMIN, {"name": name}, DEFAULT_PROJECT_QUOTA, clock())
    projects.add_member(session, ADMIN, made["cs101"].id, teacher.id, "manager", None, clock())
    projects.add_member(session, ADMIN, made["cs102"].id, teacher.id, "member", None, clock())
    return made, teacher


def run(session, clock, actor, text, project_id=None):
    return user_import.import_users(session, actor, text, project_id, SETTINGS, clock())


def counts(session):
    return (session.scalar(select(func.count()).select_from(User)),
            session.scalar(select(func.count()).select_from(ProjectMember)),
            session.scalar(select(func.count()).select_from(PasswordLink)))


def test_a_good_file_creates_users_with_links_and_joins_existing_ones(session, clock, make_user, courses):
    made, _ = courses
    old = make_user("olga", email="olga@example.org")
    text = (HEADER + "ada,Ada@Example.org,Ada Lovelace,cs101\n"
            "\n"  # blank lines are skipped but counted
            "olga,olga@example.org,,cs101\n"
            '"bob","bob@example.org","Bob, Jr.",cs102\n')
    report, created = run(session, clock, ADMIN, text)
    assert (report["created"], report["existing"]) == (2, 1)
    ada = session.scalars(select(User).where(User.username == "ada")).one()
    bob = session.scalars(select(User).where(User.username == "bob")).one()
    assert report["rows"] == [
        {"line": 2, "username": "ada", "user_id": ada.id, "result": "created"},
        {"line": 4, "username": "olga", "user_id": old.id, "result": "existing"},
        {"line": 5, "username": "bob", "user_id": bob.id, "result": "created"}]
    assert (ada.status, ada.email, ada.full_name, bob.full_name) == (
        "active", "ada@example.org", "Ada Lovelace", "Bob, Jr.")
    assert [(user.username, project_id) for user, project_id, _ in created] == [
        ("ada", made["cs101"].id), ("bob", made["cs102"].id)]
    assert all(link.startswith("https://cloud.example/set-password?token=") for *_, link in created)
    assert memberships.memberships_of(session, old.id) == [{"id": made["cs101"].id, "role": "member"}]
    # The same file again: everyone exists, nothing is created.
    before = counts(session)
    again, created = run(session, clock, ADMIN, text)
    assert (again["created"], again["existing"], created) == (0, 3, [])
    assert counts(session) == before


def test_bad_rows_are_listed_by_line_and_nothing_is_written(session, clock, make_user, courses):
    make_user("olga", email="olga@example.org")
    before = counts(session)
    text = (HEADER + "ada,ada@example.org,Ada,cs101\n"        # 2: fine
            "Bad Name,bad@example.org,,cs101\n"                # 3: username
            "carl,not-an-email,,cs101\n"                       # 4: email
            "dora,dora@example.org,,cs999\n"                   # 5: unknown course
            "ada,ada2@example.org,,cs101\n"                    # 6: duplicate username
            "olga,olga@elsewhere.org,,cs101\n"                 # 7: taken with another e-mail
            "eve,olga@example.org,,cs101\n"                    # 8: e-mail of another user
            "fred,fred@example.org\n"                          # 9: too few fields
            "gina,gina@example.org,,\n")                       # 10: no course, no project
    with pytest.raises(InvalidInput) as err:
        run(session, clock, ADMIN, text)
    assert str(err.value) == "8 of 9 rows have errors; nothing was imported"
    messages = err.value.fields["csv"]
    assert [m.split(":")[0] for m in messages] == [f"line {n}" for n in range(3, 11)]
    assert messages[0].startswith("line 3: username:")
    assert messages[1] == "line 4: email: Not a valid email address."
    assert "cs999" in messages[2] and "also on line 2" in messages[3]
    assert "another e-mail" in messages[4] and "another user" in messages[5]
    assert "expected 4 fields, found 2" in messages[6] and "name a course" in messages[7]
    assert counts(session) == before


def test_a_manager_imports_only_into_courses_they_manage(session, clock, as_actor, courses):
    made, teacher = courses
    teacher = as_actor(teacher)
    report, _ = run(session, clock, teacher, HEADER + "ada,ada@example.org,Ada,cs101\n")
    assert report["created"] == 1
    with pytest.raises(InvalidInput) as err:
        run(session, clock, teacher, HEADER + "bob,bob@example.org,,cs101\n"
                                              "cyd,cyd@example.org,,cs102\n"
                                              "dia,dia@example.org,,cs103\n")
    assert err.value.fields["csv"] == ["line 3: course: you do not manage course 'cs102'",
                                       "line 4: course: no course named 'cs103'"]
    assert session.scalars(select(User).where(User.username == "bob")).first() is None
    with pytest.raises(Forbidden):
        run(session, clock, teacher, "username,email,full_name\nbob,bob@example.org,\n", made["cs102"].id)
    with pytest.raises(NotFound):
        run(session, clock, teacher, "username,email,full_name\nbob,bob@example.org,\n", made["cs103"].id)


def test_rows_without_a_course_join_the_requested_project(session, clock, as_actor, courses):
    made, teacher = courses
    report, created = run(session, clock, as_actor(teacher),
                          "username,email,full_name\nbob,bob@example.org,Bob\n", made["cs101"].id)
    assert report["created"] == 1 and created[0][1] == made["cs101"].id


def test_someone_in_no_course_may_not_import(session, clock, make_user, as_actor):
    with pytest.raises(Forbidden):
        run(session, clock, as_actor(make_user("nobody")), HEADER + "ada,ada@example.org,,cs101\n")


@pytest.mark.parametrize("text, problem", [
    ("", "header"),
    ("ada,ada@example.org,Ada,cs101\n", "header"),
    ("username,email\nada,ada@example.org\n", "header"),
    (HEADER, "no rows"),
    ("username,email,full_name,course\n\x00\x01", "not text"),
    (b"username,email,full_name,course\n", "not text"),
    (HEADER + "ada,\"unterminated\n", "line"),
    (HEADER + "".join(f"u{i:04d},u{i}@example.org,,cs101\n" for i in range(5001)), "5000"),
])
def test_a_malformed_file_is_refused_naming_csv(session, clock, text, problem):
    with pytest.raises(InvalidInput) as err:
        run(session, clock, ADMIN, text)
    assert set(err.value.fields) == {"csv"} and problem in err.value.fields["csv"][0]
