"""RPC payloads of the accounts service (the gateway reuses them for REST bodies and OpenAPI)."""
from marshmallow import ValidationError, fields, validate, validates

from common.schemas import PROJECT_ROLES, Id, StrictSchema, UtcDateTime, UuidString
from services.accounts import openssh
from services.accounts.passwords import MAX_LENGTH as PASSWORD_MAX_LENGTH

USERNAME_PATTERN = r"^[a-z][a-z0-9_-]{2,31}$"
USERNAME = validate.Regexp(USERNAME_PATTERN,
                           error="3-32 characters: a lower-case letter, then a-z, 0-9, _ or -")
PROJECT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{2,63}$"
PROJECT_NAME = validate.Regexp(PROJECT_NAME_PATTERN,
                               error="3-64 characters: a-z, 0-9, _ or -, starting with a letter or digit")
STATUSES = ("pending", "active", "rejected", "suspended", "deleted")
IDLE_POLICIES = ("suspend", "none")
KEY_TYPES = ("ed25519", "rsa")
MAX_LIMIT = 2 ** 31 - 1  # quota columns are 32-bit integers


def Password(**kwargs):
    """A password as it arrives; the policy (passwords.check_policy) is applied by the logic,
    which knows the username. The bound only stops someone from making the server hash
    megabytes."""
    return fields.String(validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH), **kwargs)


def Limit(**kwargs):
    """A quota limit: an int >= 0, or null for unlimited."""
    return fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0, max=MAX_LIMIT),
                          metadata={"description": "limit, null = unlimited"}, **kwargs)


# ----- users ----------------------------------------------------------------------------------

class SignupRequest(StrictSchema):
    username = fields.String(required=True, validate=USERNAME)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = Password(required=True)
    full_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=128))


class ApproveUserRequest(StrictSchema):
    project = Id(load_default=None, allow_none=True,
                 metadata={"description": "a project the user joins as member"})


class RejectUserRequest(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000),
                           metadata={"description": "told to the user"})


class SuspendUserRequest(StrictSchema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class DeleteUserRequest(StrictSchema):
    transfer_to = Id(load_default=None, allow_none=True, metadata={
        "description": "an active user who receives the deleted user's keys and instances"})


class ListUsersRequest(StrictSchema):
    status = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(STATUSES))


class CreateUserRequest(StrictSchema):
    username = fields.String(required=True, validate=USERNAME)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    full_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=128))
    password = Password(load_default=None, allow_none=True, metadata={
        "description": "without one, the answer holds a one-time link to set it"})
    project = Id(load_default=None, allow_none=True, metadata={"description": "a project to join"})
    role = fields.String(load_default="member", validate=validate.OneOf(PROJECT_ROLES),
                         metadata={"description": "the role in `project`"})


class ChangePasswordRequest(StrictSchema):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH))
    password = Password(required=True)


class SetPasswordRequest(StrictSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=256),
                          metadata={"description": "the `token` of a one-time password link"})
    password = Password(required=True)


class ImportUsersRequest(StrictSchema):
    csv = fields.String(required=True, metadata={
        "description": "CSV text, header username,email,full_name,course (course: a project name)"})
    project = Id(load_default=None, allow_none=True,
                 metadata={"description": "the course of rows that name none"})


class TokenRequest(StrictSchema):
    # No format rules here: a malformed username is just a wrong one (401, not 400).
    username = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH))


class ClientSchema(StrictSchema):
    """Who sent a token request, as the gateway saw it."""
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))


class UserSchema(StrictSchema):
    id = fields.Integer()
    username = fields.String()
    email = fields.String()
    full_name = fields.String(allow_none=True)
    role = fields.String()
    status = fields.String(metadata={"description": "one of " + ", ".join(STATUSES)})
    reason = fields.String(attribute="status_reason", allow_none=True,
                           metadata={"description": "why the account was rejected or suspended"})
    created_at = UtcDateTime()
    approved_at = UtcDateTime(allow_none=True)


class CreatedUserSchema(UserSchema):
    password_link = fields.String(allow_none=True, metadata={
        "description": "one-time link to set the password (only for a user created without one)"})


class PasswordLinkSchema(StrictSchema):
    password_link = fields.String(metadata={"description": "PUBLIC_URL/set-password?token=..."})
    expires_at = UtcDateTime()


class ImportRowSchema(StrictSchema):
    line = fields.Integer(metadata={"description": "line in the file (the header is line 1)"})
    username = fields.String()
    result = fields.String(metadata={"description": "created or existing"})
    user_id = fields.Integer()


class ImportReportSchema(StrictSchema):
    created = fields.Integer()
    existing = fields.Integer(metadata={"description": "users already there (same username and "
                                                       "e-mail), added to the course"})
    rows = fields.List(fields.Nested(ImportRowSchema))


class TokenSchema(StrictSchema):
    id = fields.Integer()
    token = fields.String()
    expires_at = UtcDateTime()
    user_id = fields.Integer(metadata={"description": "whose token it is"})
    username = fields.String()


class TokenInfoSchema(StrictSchema):
    """A token as its owner may list it: never the secret."""
    id = fields.Integer()
    created_at = UtcDateTime()
    expires_at = UtcDateTime()
    address = fields.String(allow_none=True, metadata={"description": "where it was requested from"})


# ----- quotas and projects ----------------------------------------------------------------------

class QuotaSchema(StrictSchema):
    """One limit per resource of common.quota.RESOURCES (tests check they agree)."""
    instances = Limit()
    vcpus = Limit()
    memory_mib = Limit()
    volume_gib = Limit()
    floating_ips = Limit()
    volumes = Limit()


class QuotaLimitsSchema(StrictSchema):
    """get_quota_limits: the project's limits and the user's caps inside it."""
    project = fields.Nested(QuotaSchema)
    user = fields.Nested(QuotaSchema)


class ResourceUsageSchema(StrictSchema):
    limit = fields.Integer(allow_none=True)
    in_use = fields.Integer()


class UsageSchema(StrictSchema):
    project_id = fields.Integer()
    resources = fields.Dict(keys=fields.String(), values=fields.Nested(ResourceUsageSchema))
    mine = fields.Dict(keys=fields.String(), values=fields.Nested(ResourceUsageSchema),
                       metadata={"description": "the asking user's caps and usage in the project"})


class ProjectDefaultsMixin:
    """What a project proposes for its members' instances."""
    description = fields.String(validate=validate.Length(max=1000))
    default_lease_hours = fields.Integer(strict=True, allow_none=True,
                                         validate=validate.Range(min=1, max=8760))
    default_flavor = Id(allow_none=True, metadata={"description": "flavor id"})
    default_image = Id(allow_none=True, metadata={"description": "image id"})
    idle_policy = fields.String(validate=validate.OneOf(IDLE_POLICIES))


class CreateProjectRequest(ProjectDefaultsMixin, StrictSchema):
    name = fields.String(required=True, validate=PROJECT_NAME)
    managers = fields.List(Id(), load_default=list, validate=validate.Length(max=100),
                           metadata={"description": "user ids"})
    quota = fields.Nested(QuotaSchema, metadata={
        "description": "limits; resources left out take the cloud's DEFAULT_PROJECT_QUOTA"})


class UpdateProjectRequest(ProjectDefaultsMixin, StrictSchema):
    pass


class ProjectSchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    quota = fields.Nested(QuotaSchema)
    default_lease_hours = fields.Integer(allow_none=True)
    default_flavor = fields.Integer(attribute="default_flavor_id", allow_none=True)
    default_image = fields.Integer(attribute="default_image_id", allow_none=True)
    idle_policy = fields.String()
    created_at = UtcDateTime()


class AddMemberRequest(StrictSchema):
    user = Id(required=True, metadata={"description": "user id"})
    role = fields.String(load_default="member", validate=validate.OneOf(PROJECT_ROLES))
    quota = fields.Nested(QuotaSchema, metadata={"description": "caps on this user's share"})


class UpdateMemberRequest(StrictSchema):
    role = fields.String(validate=validate.OneOf(PROJECT_ROLES))
    quota = fields.Nested(QuotaSchema, metadata={"description": "caps on this user's share"})


class MemberSchema(StrictSchema):
    project_id = fields.Integer()
    user_id = fields.Integer()
    username = fields.String(attribute="user.username")
    full_name = fields.String(attribute="user.full_name", allow_none=True)
    role = fields.String()
    quota = fields.Nested(QuotaSchema)
    created_at = UtcDateTime()


# ----- SSH keys -------------------------------------------------------------------------------

KEY_NAME = validate.Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$",
    error="1-64 characters: letters, digits, '.', '_', '@' or '-', not starting with a symbol")


class AddKeyRequest(StrictSchema):
    name = fields.String(required=True, validate=KEY_NAME)
    public_key = fields.String(required=True)
    project = Id(load_default=None, allow_none=True,
                 metadata={"description": "share the key with this project's members"})

    @validates("public_key")
    def _public_key(self, value, **_):
        try:
            openssh.parse_public_key(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class GenerateKeyRequest(StrictSchema):
    name = fields.String(required=True, validate=KEY_NAME)
    type = fields.String(load_default="ed25519", validate=validate.OneOf(KEY_TYPES),
                         metadata={"description": "ed25519, or rsa (3072 bits)"})
    project = Id(load_default=None, allow_none=True,
                 metadata={"description": "share the key with this project's members"})


class KeySchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    fingerprint = fields.String()
    public_key = fields.String()
    user_id = fields.Integer(metadata={"description": "the owner"})
    project = fields.Integer(attribute="project_id", allow_none=True,
                             metadata={"description": "shared with this project's members"})
    created_at = UtcDateTime()


class GeneratedKeySchema(KeySchema):
    private_key = fields.String(metadata={"description": "OpenSSH private key, unencrypted: shown "
                                                         "this once, never stored"})


# ----- audit log ------------------------------------------------------------------------------

class AuditRecordSchema(StrictSchema):
    """One state-changing request the gateway answered (event gateway.request_audited)."""
    id = UuidString(required=True)
    at = UtcDateTime(required=True)
    user_id = fields.Integer(load_default=None, allow_none=True)
    username = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=254))
    project_id = fields.Integer(load_default=None, allow_none=True)
    method = fields.String(required=True, validate=validate.Length(min=1, max=16))
    path = fields.String(required=True, validate=validate.Length(max=2048))
    action = fields.String(required=True, validate=validate.Length(max=128),
                           metadata={"description": "the gateway's operation id"})
    status = fields.Integer(required=True)
    result = fields.String(required=True, validate=validate.OneOf(("success", "error")))
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    message = fields.String(load_default=None, allow_none=True)


class ListAuditRequest(StrictSchema):
    user = Id(load_default=None, allow_none=True)
    project = Id(load_default=None, allow_none=True)
    since = UtcDateTime(load_default=None, allow_none=True)
    limit = fields.Integer(strict=True, load_default=100, validate=validate.Range(min=1, max=1000))


# ----- event payloads (dispatched by the accounts service) ---------------------------------------

class UserReasonEventSchema(StrictSchema):
    """user_rejected, user_suspended."""
    user = fields.Nested(UserSchema)
    reason = fields.String(allow_none=True)


class UserLinkEventSchema(StrictSchema):
    """user_created (password_link null when the admin gave a password), user_password_reset."""
    user = fields.Nested(UserSchema)
    password_link = fields.String(allow_none=True)


class UserImportedEventSchema(StrictSchema):
    user = fields.Nested(UserSchema)
    project_id = fields.Integer()
    password_link = fields.String()


class ProjectDeletedEventSchema(StrictSchema):
    project_id = fields.Integer()


class UserDeletedEventSchema(StrictSchema):
    user_id = fields.Integer()
    username = fields.String()
    transfer_to = fields.Integer(allow_none=True, metadata={
        "description": "who receives the user's instances; null: they are deleted"})
