"""RPC payloads of the accounts service (the gateway reuses them for REST bodies and OpenAPI)."""
from marshmallow import ValidationError, fields, validate, validates

from common.schemas import StrictSchema, UtcDateTime
from services.accounts import openssh
from services.accounts.passwords import MIN_LENGTH

USERNAME_PATTERN = r"^[a-z][a-z0-9_-]{2,31}$"
STATUSES = ("pending", "active", "disabled")


class SignupRequest(StrictSchema):
    username = fields.String(required=True, validate=validate.Regexp(
        USERNAME_PATTERN, error="3-32 characters: a lower-case letter, then a-z, 0-9, _ or -"))
    email = fields.Email(required=True, validate=validate.Length(max=254))
    # The upper bound only stops someone from making the server hash megabytes.
    password = fields.String(required=True, validate=validate.Length(min=MIN_LENGTH, max=1024))


class TokenRequest(StrictSchema):
    # No format rules here: a malformed username is just a wrong one (401, not 400).
    username = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class AddKeyRequest(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$",
        error="1-64 characters: letters, digits, '.', '_', '@' or '-', not starting with a symbol"))
    public_key = fields.String(required=True)

    @validates("public_key")
    def _public_key(self, value, **_):
        try:
            openssh.parse_public_key(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class UserSchema(StrictSchema):
    id = fields.Integer()
    username = fields.String()
    email = fields.String()
    role = fields.String()
    status = fields.String()
    created_at = UtcDateTime()
    approved_at = UtcDateTime(allow_none=True)


class TokenSchema(StrictSchema):
    token = fields.String()
    expires_at = UtcDateTime()


class KeySchema(StrictSchema):
    id = fields.Integer()
    name = fields.String()
    fingerprint = fields.String()
    public_key = fields.String()
    created_at = UtcDateTime()
