"""Accounts service: users, projects (courses) and their members and quota limits, tokens and
SSH keys. Entry points only: each loads its request, calls one logic module (users.py,
projects.py, quotas.py, tokens.py, keys.py), dumps the result and announces what changed."""
from nameko.events import EventDispatcher
from nameko.rpc import RpcProxy, rpc

from common.actors import load_actor
from common.clock import Clock
from common.db import Database
from common.schemas import ActorSchema, dump, load
from services.accounts import keys, projects, quotas, tokens, users
from services.accounts.dependencies import AccountsSettings, Passwords
from services.accounts.schemas import (
    AddKeyRequest, AddMemberRequest, ApproveRequest, ClientSchema, CreateProjectRequest, KeySchema, ListUsersRequest,
    MemberSchema, ProjectSchema, QuotaLimitsSchema, QuotaSchema, SignupRequest, TokenRequest, TokenSchema,
    UpdateMemberRequest, UpdateProjectRequest, UsageSchema, UserSchema)


class AccountsService:
    name = "accounts"

    db = Database()
    clock = Clock()
    settings = AccountsSettings()
    hasher = Passwords()
    dispatch = EventDispatcher()
    instances = RpcProxy("instances")

    # ----- users ------------------------------------------------------------------------------
    @rpc
    def signup(self, request):
        request = load(SignupRequest, request)
        user, created = users.signup(self.db, self.hasher, request, self.clock())
        result = dump(UserSchema, user)
        if created:
            self.dispatch("user_signed_up", result)
        return result

    @rpc
    def approve_user(self, actor, user_id, request=None):
        request = load(ApproveRequest, request)
        user, changed = users.approve_user(self.db, load_actor(actor), user_id, self.clock(),
                                           request["project"])
        result = dump(UserSchema, user)
        if changed:
            self.dispatch("user_approved", result)
        return result

    @rpc
    def get_user(self, actor, user_id):
        return dump(UserSchema, users.get_user(self.db, load_actor(actor), user_id))

    @rpc
    def list_users(self, actor, request=None):
        request = load(ListUsersRequest, request)
        return dump(UserSchema, users.list_users(self.db, load_actor(actor), request["status"]),
                    many=True)

    # ----- tokens -----------------------------------------------------------------------------
    @rpc
    def issue_token(self, request, client=None):
        request, client = load(TokenRequest, request), load(ClientSchema, client)
        issued = tokens.issue_token(self.db, self.hasher, request["username"], request["password"],
                                    self.clock(), self.settings.token_ttl_seconds, client["address"])
        return dump(TokenSchema, issued)

    @rpc
    def authenticate(self, token):
        return dump(ActorSchema, tokens.authenticate(self.db, token, self.clock()))

    # ----- projects ---------------------------------------------------------------------------
    @rpc
    def create_project(self, actor, request):
        request = load(CreateProjectRequest, request)
        project, _ = projects.create_project(self.db, load_actor(actor), request,
                                             self.settings.default_project_quota, self.clock())
        return dump(ProjectSchema, project)

    @rpc
    def list_projects(self, actor):
        return dump(ProjectSchema, projects.list_projects(self.db, load_actor(actor)), many=True)

    @rpc
    def get_project(self, actor, project_id):
        return dump(ProjectSchema, projects.visible_project(self.db, load_actor(actor), project_id))

    @rpc
    def update_project(self, actor, project_id, request):
        request = load(UpdateProjectRequest, request)
        project, _ = projects.update_project(self.db, load_actor(actor), project_id, request)
        return dump(ProjectSchema, project)

    @rpc
    def delete_project(self, actor, project_id):
        project = projects.project_to_delete(self.db, load_actor(actor), project_id)
        if project is None:
            return {"deleted": False}
        counted = self.instances.get_project_usage(project.id)
        return {"deleted": projects.delete_project(self.db, project, counted)}

    @rpc
    def list_members(self, actor, project_id):
        return dump(MemberSchema, projects.list_members(self.db, load_actor(actor), project_id),
                    many=True)

    @rpc
    def add_member(self, actor, project_id, request):
        request = load(AddMemberRequest, request)
        member, _ = projects.add_member(self.db, load_actor(actor), project_id, request["user"],
                                        request["role"], request.get("quota"), self.clock())
        return dump(MemberSchema, member)

    @rpc
    def update_member(self, actor, project_id, user_id, request):
        request = load(UpdateMemberRequest, request)
        member, _ = projects.update_member(self.db, load_actor(actor), project_id, user_id, request)
        return dump(MemberSchema, member)

    @rpc
    def remove_member(self, actor, project_id, user_id):
        return {"removed": projects.remove_member(self.db, load_actor(actor), project_id, user_id)}

    # ----- quotas -----------------------------------------------------------------------------
    @rpc
    def get_quota(self, actor, project_id):
        return dump(QuotaSchema, quotas.get_quota(self.db, load_actor(actor), project_id))

    @rpc
    def set_quota(self, actor, project_id, request):
        limits = load(QuotaSchema, request)
        quota, _ = quotas.set_quota(self.db, load_actor(actor), project_id, limits)
        return dump(QuotaSchema, quota)

    @rpc
    def get_usage(self, actor, project_id):
        actor = load_actor(actor)
        project, limits = quotas.usage_limits(self.db, actor, project_id)
        counted = self.instances.get_project_usage(project.id)
        return dump(UsageSchema, quotas.usage_report(project.id, limits, counted, actor["id"]))

    @rpc
    def get_quota_limits(self, project_id, user_id):
        """Internal (no actor): what the instances service checks a create against."""
        return dump(QuotaLimitsSchema, quotas.quota_limits(self.db, project_id, user_id))

    # ----- SSH keys ---------------------------------------------------------------------------
    @rpc
    def add_key(self, actor, request):
        actor = load_actor(actor)
        request = load(AddKeyRequest, request)
        key, _ = keys.add_key(self.db, actor, request["name"], request["public_key"], self.clock())
        return dump(KeySchema, key)

    @rpc
    def list_keys(self, actor):
        return dump(KeySchema, keys.list_keys(self.db, load_actor(actor)), many=True)

    @rpc
    def get_key(self, actor, key_id):
        return dump(KeySchema, keys.get_key(self.db, load_actor(actor), key_id))

    @rpc
    def delete_key(self, actor, key_id):
        return {"deleted": keys.delete_key(self.db, load_actor(actor), key_id)}
