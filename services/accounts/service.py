"""Accounts service: users, projects (courses) with their members and quota limits, tokens,
password links, rate limits, SSH keys and the audit log. Entry points only: each loads its
request, calls a logic module, dumps the result and announces what changed (an event only when
something changed: a repeated request announces nothing)."""
from nameko.events import EventDispatcher, event_handler
from nameko.rpc import RpcProxy, rpc

from common.actors import load_actor
from common.clock import Clock
from common.db import Database, retry_transient_workers
from common.prometheus import ProcessMetrics
from common.schemas import ActorSchema, dump, load
from common.timers import config_timer
from services.accounts import (
    audit, housekeeping, keys, password_links, projects, quotas, rate_limits, tokens, user_import,
    users)
from services.accounts.dependencies import AccountsSettings, KeyPairs, Passwords
from services.accounts.schemas import (
    AddKeyRequest, AddMemberRequest, ApproveUserRequest, AuditRecordSchema, ChangePasswordRequest,
    ClientSchema, CreatedUserSchema, CreateProjectRequest, CreateUserRequest, DeleteUserRequest,
    GenerateKeyRequest, GeneratedKeySchema, ImportReportSchema, ImportUsersRequest, KeySchema,
    ListAuditRequest, ListUsersRequest, MemberSchema, PasswordLinkSchema, ProjectDeletedEventSchema, ProjectSchema,
    QuotaLimitsSchema, QuotaSchema, RejectUserRequest, SetPasswordRequest, SignupRequest,
    SuspendUserRequest, TokenInfoSchema, TokenRequest, TokenSchema, UpdateMemberRequest,
    UpdateProjectRequest, UsageSchema, UserDeletedEventSchema, UserImportedEventSchema,
    UserLinkEventSchema, UserReasonEventSchema, UserSchema)


@retry_transient_workers
class AccountsService:
    name = "accounts"
    prometheus = ProcessMetrics()  # served on PROMETHEUS_PORT (common/prometheus.py)

    db = Database()
    clock = Clock()
    settings = AccountsSettings()
    hasher = Passwords()
    key_pairs = KeyPairs()
    dispatch = EventDispatcher()
    instances = RpcProxy("instances")
    storage = RpcProxy("storage")  # get_usage: the project's data volumes
    network = RpcProxy("network")  # get_usage: the project's floating IPs

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
    def create_user(self, actor, request):
        request = load(CreateUserRequest, request)
        user, link, created = users.create_user(self.db, self.hasher, load_actor(actor), request,
                                                self.settings, self.clock())
        password_link = link and link["password_link"]
        if created:
            self.dispatch("user_created", dump(UserLinkEventSchema,
                                               {"user": user, "password_link": password_link}))
        return dict(dump(CreatedUserSchema, user), password_link=password_link)

    @rpc
    def import_users(self, actor, request):
        request = load(ImportUsersRequest, request)
        report, created = user_import.import_users(self.db, load_actor(actor), request["csv"],
                                                   request["project"], self.settings, self.clock())
        for user, project_id, password_link in created:
            self.dispatch("user_imported", dump(UserImportedEventSchema, {
                "user": user, "project_id": project_id, "password_link": password_link}))
        return dump(ImportReportSchema, report)

    @rpc
    def approve_user(self, actor, user_id, request=None):
        request = load(ApproveUserRequest, request)
        user, changed = users.approve_user(self.db, load_actor(actor), user_id, self.clock(),
                                           request["project"])
        return self._announce(changed, "user_approved", user)

    @rpc
    def reject_user(self, actor, user_id, request):
        request = load(RejectUserRequest, request)
        user, changed = users.reject_user(self.db, load_actor(actor), user_id, request["reason"])
        return self._announce(changed, "user_rejected", user, reason=request["reason"])

    @rpc
    def suspend_user(self, actor, user_id, request=None):
        request = load(SuspendUserRequest, request)
        user, changed = users.suspend_user(self.db, load_actor(actor), user_id, request["reason"],
                                           self.clock())
        return self._announce(changed, "user_suspended", user, reason=request["reason"])

    @rpc
    def enable_user(self, actor, user_id):
        user, changed = users.enable_user(self.db, load_actor(actor), user_id)
        return self._announce(changed, "user_enabled", user)

    @rpc
    def delete_user(self, actor, user_id, request=None):
        request = load(DeleteUserRequest, request)
        user, _changed = users.delete_user(self.db, load_actor(actor), user_id,
                                           request["transfer_to"], self.clock())
        # Sent on a repeat too (unlike the other events): if this service stopped between the
        # commit and the dispatch, asking again still gets the user's instances deleted or handed
        # over. The instances service's handler is idempotent.
        if user.status == "deleted":
            self.dispatch("user_deleted", dump(UserDeletedEventSchema, {
                "user_id": user.id, "username": user.username,
                "transfer_to": request["transfer_to"]}))
        return dump(UserSchema, user)

    def _announce(self, changed, event, user, **reason):
        """The user as the answer; the event if the status changed (with the reason, if any)."""
        result = dump(UserSchema, user)
        if changed:
            self.dispatch(event, dump(UserReasonEventSchema, {"user": user, **reason})
                          if reason else result)
        return result

    @rpc
    def get_user(self, actor, user_id):
        return dump(UserSchema, users.get_user(self.db, load_actor(actor), user_id))

    @rpc
    def list_users(self, actor, request=None):
        request = load(ListUsersRequest, request)
        return dump(UserSchema, users.list_users(self.db, load_actor(actor), request["status"]),
                    many=True)

    # ----- passwords --------------------------------------------------------------------------
    @rpc
    def change_password(self, actor, user_id, request):
        request = load(ChangePasswordRequest, request)
        changed = users.change_password(self.db, self.hasher, load_actor(actor), user_id,
                                        request["current_password"], request["password"],
                                        self.clock())
        return {"changed": changed}

    @rpc
    def reset_password(self, actor, user_id):
        user, link = users.reset_password(self.db, load_actor(actor), user_id, self.settings,
                                          self.clock())
        self.dispatch("user_password_reset", dump(UserLinkEventSchema, {
            "user": user, "password_link": link["password_link"]}))
        return dump(PasswordLinkSchema, link)

    @rpc
    def set_password(self, request):
        request = load(SetPasswordRequest, request)
        user = password_links.set_password(self.db, self.hasher, request["token"],
                                           request["password"], self.clock())
        return dump(UserSchema, user)

    # ----- tokens -----------------------------------------------------------------------------
    @rpc
    def issue_token(self, request, client=None):
        request, client = load(TokenRequest, request), load(ClientSchema, client)
        now = self.clock()
        rate_limits.count_token_request(self.db, self.settings, request["username"],
                                        client["address"], now)  # before any hashing
        issued = tokens.issue_token(self.db, self.hasher, request["username"], request["password"],
                                    now, self.settings.token_ttl_seconds, client["address"])
        return dump(TokenSchema, issued)

    @rpc
    def authenticate(self, token):
        return dump(ActorSchema, tokens.authenticate(self.db, token, self.clock()))

    @rpc
    def revoke_token(self, token):
        return {"revoked": tokens.revoke_token(self.db, token, self.clock())}

    @rpc
    def list_tokens(self, actor, user_id):
        return dump(TokenInfoSchema, tokens.list_tokens(self.db, load_actor(actor), user_id,
                                                        self.clock()), many=True)

    @rpc
    def revoke_user_token(self, actor, user_id, token_id):
        return {"revoked": tokens.revoke_user_token(self.db, load_actor(actor), user_id, token_id,
                                                    self.clock())}

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
        counted = quotas.merged_usage(self.instances.get_project_usage(project.id),
                                      self.storage.get_project_usage(project.id),
                                      self.network.get_project_usage(project.id))
        project_id = project.id
        deleted = projects.delete_project(self.db, project, counted)
        if deleted:   # the network service releases the course's floating IPs, groups and blocks
            self.dispatch("project_deleted", dump(ProjectDeletedEventSchema, {"project_id": project_id}))
        return {"deleted": deleted}

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
        return {"deleted": projects.remove_member(self.db, load_actor(actor), project_id, user_id)}

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
        counted = quotas.merged_usage(self.instances.get_project_usage(project.id),
                                      self.storage.get_project_usage(project.id),
                                      self.network.get_project_usage(project.id))
        return dump(UsageSchema, quotas.usage_report(project.id, limits, counted, actor["id"]))

    @rpc
    def get_quota_limits(self, project_id, user_id):
        """Internal (no actor): what the instances service checks a create against."""
        return dump(QuotaLimitsSchema, quotas.quota_limits(self.db, project_id, user_id))

    # ----- SSH keys ---------------------------------------------------------------------------
    @rpc
    def add_key(self, actor, request):
        request = load(AddKeyRequest, request)
        key, _ = keys.add_key(self.db, load_actor(actor), request["name"], request["public_key"],
                              self.clock(), request["project"])
        return dump(KeySchema, key)

    @rpc
    def generate_key(self, actor, request):
        request = load(GenerateKeyRequest, request)
        key, private_key = keys.generate_key(self.db, load_actor(actor), self.key_pairs,
                                             request["name"], request["type"], self.clock(),
                                             request["project"])
        return dict(dump(GeneratedKeySchema, key), private_key=private_key)

    @rpc
    def list_keys(self, actor):
        return dump(KeySchema, keys.list_keys(self.db, load_actor(actor)), many=True)

    @rpc
    def get_key(self, actor, key_id):
        return dump(KeySchema, keys.get_key(self.db, load_actor(actor), key_id))

    @rpc
    def delete_key(self, actor, key_id):
        return {"deleted": keys.delete_key(self.db, load_actor(actor), key_id)}

    # ----- audit log --------------------------------------------------------------------------
    @event_handler("gateway", "request_audited")
    def record_audit(self, payload):
        audit.record(self.db, load(AuditRecordSchema, payload))

    @rpc
    def list_audit(self, actor, request=None):
        request = load(ListAuditRequest, request)
        return dump(AuditRecordSchema, audit.list_records(self.db, load_actor(actor), **request),
                    many=True)

    # ----- housekeeping -----------------------------------------------------------------------
    @config_timer("PRUNE_INTERVAL", 3600)
    def prune(self):
        housekeeping.prune(self.db, self.settings, self.clock())
