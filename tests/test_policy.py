"""The policy table (common/policy.py): its rules, that docs/architecture.md shows it as it is,
and that every action a service asks for is in it (an action missing from the table would be
refused to everyone, admins included: default deny)."""
import ast
import os
import re

import pytest

from common import policy
from common.errors import Forbidden, NotFound

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN = {"id": 1, "username": "admin", "role": "admin", "projects": []}
TEACHER = {"id": 2, "username": "teach", "role": "user", "projects": [{"id": 10, "role": "manager"}]}
STUDENT = {"id": 3, "username": "stud", "role": "user", "projects": [{"id": 10, "role": "member"}]}
OTHER = {"id": 4, "username": "other", "role": "user", "projects": [{"id": 20, "role": "member"}]}
STUDENTS_VM = {"user_id": 3, "project_id": 10}


@pytest.mark.parametrize("actor, allowed", [(ADMIN, True), (TEACHER, True), (STUDENT, True), (OTHER, False)])
def test_an_instance_is_its_owners_its_teachers_and_the_admins(actor, allowed):
    assert policy.allowed(actor, "instance:stop", STUDENTS_VM) is allowed


def test_a_classmate_is_not_the_owner():
    classmate = dict(STUDENT, id=5)
    assert not policy.allowed(classmate, "instance:get", STUDENTS_VM)
    assert policy.allowed(classmate, "instance:create", {"project_id": 10})


def test_a_manager_of_another_course_has_no_say():
    other_teacher = dict(TEACHER, projects=[{"id": 20, "role": "manager"}])
    assert not policy.allowed(other_teacher, "instance:delete", STUDENTS_VM)


def test_managers_add_members_but_only_admins_name_managers():
    assert policy.allowed(TEACHER, "project:member:add", {"project_id": 10})
    assert not policy.allowed(TEACHER, "project:manager:set", {"project_id": 10})
    assert not policy.allowed(STUDENT, "project:member:add", {"project_id": 10})


def test_unknown_actions_are_refused_to_everyone():
    assert not policy.allowed(ADMIN, "instance:teleport", STUDENTS_VM)
    with pytest.raises(Forbidden, match="nobody may"):
        policy.enforce(ADMIN, "instance:teleport", STUDENTS_VM)


def test_enforce_hides_what_the_actor_may_not_see():
    with pytest.raises(NotFound, match="no instance x"):
        policy.enforce(OTHER, "instance:get", STUDENTS_VM, hidden="no instance x")
    with pytest.raises(Forbidden, match="only an administrator may list users"):
        policy.enforce(STUDENT, "user:list", what="list users")


def test_a_missing_target_field_grants_nothing():
    assert not policy.allowed(STUDENT, "instance:get", {})  # no owner, no project: only admins
    assert policy.allowed(ADMIN, "instance:get", {})


def documented_table():
    text = open(os.path.join(ROOT, "docs", "architecture.md")).read()
    block = text.split("<!-- policy-table -->")[1]
    rows = {}
    for line in block.splitlines():
        match = re.match(r"\| `([a-z:_]+)` \| (.+) \|$", line.strip())
        if match:
            rows[match.group(1)] = tuple(p.strip() for p in match.group(2).split(","))
    return rows


def test_the_docs_show_the_table_as_it_is():
    assert documented_table() == policy.POLICY


def actions_asked_for():
    """Literal action names passed to policy.enforce/allowed anywhere in the services."""
    found = set()
    for base, _, files in os.walk(os.path.join(ROOT, "services")):
        for name in files:
            if not name.endswith(".py"):
                continue
            tree = ast.parse(open(os.path.join(base, name)).read())
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr in ("enforce", "allowed") and len(node.args) >= 2
                        and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                    found.add(node.args[1].value)
    return found


def test_every_action_a_service_asks_for_is_in_the_table():
    asked = actions_asked_for()
    assert asked, "no service asks the policy: this test would be vacuous"
    assert asked <= set(policy.POLICY), asked - set(policy.POLICY)
