"""The portal's plain parts, one module at a time: forms to requests and errors back, CSRF tokens,
the login page's `next`, the menu per role, gathering several RPC replies (fakes of the reply
objects: the real proxies are exercised by tests/e2e and tests/browser)."""
import pytest
from flask import Flask
from nameko.exceptions import UnknownService
from werkzeug.datastructures import MultiDict

from common.errors import Forbidden, InvalidInput, NotFound
from gateway.portal import forms, session
from gateway.portal.gather import gather, optional
from gateway.portal.registry import portal
from gateway.portal.views.account import _safe_next


@pytest.fixture
def app():
    made = Flask(__name__)
    made.config["LABCLOUD"] = {}
    return made


def test_a_form_becomes_the_services_request_with_its_types(app):
    with app.test_request_context(method="POST", data={}):
        body = forms.body_from_form("services.instances.schemas:CreateInstanceRequest", MultiDict({
            "name": "web-1", "flavor": "2", "image": "x3", "key": "", "user_data": "  #!/bin/sh\n",
            "csrf_token": "t", "unknown": "dropped"}))
    # ints where the schema has ids; a value that is no int is left for the service to name;
    # empty fields are left out; the CSRF token and unknown fields never reach the service.
    assert body == {"name": "web-1", "flavor": 2, "image": "x3", "user_data": "  #!/bin/sh\n"}


def test_empty_fields_named_keep_empty_are_sent_as_null_and_lists_are_split(app):
    with app.test_request_context(method="POST"):
        quota = forms.body_from_form("services.accounts.schemas:QuotaSchema",
                                     MultiDict({"instances": "", "vcpus": "8"}), keep_empty=("instances",))
        project = forms.body_from_form("services.accounts.schemas:CreateProjectRequest",
                                       MultiDict({"name": "os", "managers": "3, 4\n5"}))
    assert quota == {"instances": None, "vcpus": 8}
    assert project == {"name": "os", "managers": [3, 4, 5]}


def test_a_refusal_is_split_into_messages_per_field_nested_ones_by_dotted_name(app):
    with app.test_request_context():
        result, errors = forms.attempt(lambda: (_ for _ in ()).throw(InvalidInput("invalid input", {
            "name": ["must match ^[a-z]"], "quota": {"instances": ["must be at least 0"]},
            "csv": ["line 2: email: not an e-mail", "line 3: username: taken"]})))
    assert result is None and errors and errors.status == 400 and errors.message == "invalid input"
    assert errors.get("name") == "must match ^[a-z]"
    assert errors.get("quota.instances") == "must be at least 0"
    assert errors.lists["csv"] == ["line 2: email: not an e-mail", "line 3: username: taken"]
    assert errors.get("flavor") is None
    with app.test_request_context():
        _none, refused = forms.attempt(lambda: (_ for _ in ()).throw(NotFound("no such instance")))
    assert refused.status == 404 and refused.fields == {}


def test_a_server_error_is_not_taken_for_a_form_error(app):
    from common.errors import CapacityExhausted
    with app.test_request_context(), pytest.raises(CapacityExhausted):
        forms.attempt(lambda: (_ for _ in ()).throw(CapacityExhausted("no host has room")))


def test_the_csrf_token_is_bound_to_the_session_and_checked(app):
    with app.test_request_context(method="POST", headers={"Cookie": f"{session.SESSION_COOKIE}=tok-a"}):
        token_a = session.csrf_token()
    with app.test_request_context(method="POST", headers={"Cookie": f"{session.SESSION_COOKIE}=tok-b"}):
        assert session.csrf_token() != token_a  # another session, another token
    with app.test_request_context(method="POST", data={"csrf_token": token_a},
                                  headers={"Cookie": f"{session.SESSION_COOKIE}=tok-a"}):
        session.verify_csrf()
    for sent, cookie in ((token_a, "tok-b"), ("", "tok-a"), ("0" * 64, "tok-a")):
        with app.test_request_context(method="POST", data={"csrf_token": sent},
                                      headers={"Cookie": f"{session.SESSION_COOKIE}={cookie}"}):
            with pytest.raises(session.CsrfRefused) as refused:
                session.verify_csrf()
            assert refused.value.http_status == 403 and "csrf_token" in refused.value.fields


def test_before_login_the_token_is_bound_to_the_browsers_seed_cookie(app):
    with app.test_request_context():
        first = session.csrf_token()  # no seed yet: one is made for the response
        from flask import g
        seed = g.new_csrf_seed
    with app.test_request_context(method="POST", data={"csrf_token": first},
                                  headers={"Cookie": f"{session.SEED_COOKIE}={seed}"}):
        session.verify_csrf()
    with app.test_request_context(method="POST", data={"csrf_token": first}):  # no seed cookie sent
        with pytest.raises(session.CsrfRefused):
            session.verify_csrf()


def test_the_login_pages_next_stays_on_this_site():
    assert _safe_next("/instances/abc?x=1") == "/instances/abc?x=1"
    for hostile in ("https://evil.example/", "//evil.example/x", "evil", "javascript:alert(1)", None, ""):
        assert _safe_next(hostile) == "/", hostile


def test_the_menu_shows_each_role_its_areas_and_nothing_for_pages_without_a_label():
    def labels(actor):
        return [label for label, _path, _area in portal.navigation(actor)]
    student = {"id": 2, "username": "s", "role": "user", "projects": [{"id": 1, "role": "member"}]}
    teacher = dict(student, projects=[{"id": 1, "role": "manager"}])
    admin = {"id": 1, "username": "admin", "role": "admin", "projects": []}
    assert labels(None) == ["Log in", "Sign up"]
    assert "Instances" in labels(student) and "Courses" not in labels(student) and "Audit" not in labels(student)
    assert "Image library" in labels(student)  # the images one may see and upload (/images)
    assert "Courses" in labels(teacher) and "Audit" not in labels(teacher)
    assert {"Courses", "Audit", "Sign-ups", "Hosts"} <= set(labels(admin))
    assert labels(admin)[-1] == "Account" and labels(admin)[0] == "Instances"


class FakeReply:
    def __init__(self, outcome, waited):
        self.outcome, self.waited = outcome, waited

    def result(self):
        self.waited.append(self)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class FakeMethod:
    def __init__(self, outcome, sent, waited):
        self.outcome, self.sent, self.waited = outcome, sent, waited

    def call_async(self, *args):
        self.sent.append(args)
        return FakeReply(self.outcome, self.waited)


def test_gather_sends_every_call_first_and_collects_every_reply_before_raising_the_first_refusal():
    sent, waited = [], []
    with pytest.raises(NotFound):
        gather((FakeMethod([1], sent, waited), "actor", 3), (FakeMethod(NotFound("no course"), sent, waited), "a"),
               (FakeMethod(Forbidden("not its manager"), sent, waited),), (FakeMethod("late", sent, waited),))
    assert sent == [("actor", 3), ("a",), (), ()] and len(waited) == 4
    assert gather((FakeMethod("x", [], []),), (FakeMethod({"y": 1}, [], []), 2)) == ["x", {"y": 1}]


def test_an_optional_call_whose_service_is_missing_gives_none_and_the_others_their_replies():
    missing = UnknownService("metrics")
    assert gather((FakeMethod("instance", [], []),), optional(FakeMethod(missing, [], []), "actor")) == ["instance", None]
    with pytest.raises(UnknownService):  # a call the page cannot do without still fails it
        gather((FakeMethod("instance", [], []),), (FakeMethod(missing, [], []), "actor"))
    with pytest.raises(Forbidden):  # and an optional call's refusal is still a refusal
        gather(optional(FakeMethod(Forbidden("no"), [], []), "actor"))


@pytest.mark.parametrize("base_url, forced, secure", [("http://127.0.0.1", False, False),
                                                      ("https://lab.example", False, True),
                                                      ("http://127.0.0.1", True, True)])
def test_the_session_cookie_is_httponly_samesite_and_secure_over_https(app, base_url, forced, secure):
    app.config["LABCLOUD"] = {"PORTAL_SECURE_COOKIES": forced}
    with app.test_request_context(base_url=base_url):
        response = app.response_class()
        session.start(response, {"token": "tok"}, 3600)
        cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(session.SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=3600" in cookie
    assert ("Secure" in cookie) == secure
