"""Users, sign-up approval, passwords and tokens (the accounts service)."""
from flask import current_app

from gateway import schemas as own
from gateway.api.registry import ACCOUNTS, route
from gateway.routes import QueryParam

USER_STATUS = QueryParam("status", "string", None, "only users in this status: pending, active, rejected, "
                         "suspended or deleted", max_length=16)


@route("POST", "/api/v1/users", tag="users", summary="Sign up (the account starts pending)",
       auth=False, body=ACCOUNTS + "SignupRequest", response=ACCOUNTS + "UserSchema", status=201,
       errors=(409,))
def signup(rpc, body):
    return rpc.accounts.signup(body)


@route("GET", "/api/v1/users", tag="users", summary="List users (admin)",
       response=ACCOUNTS + "UserSchema", many=True, query=(USER_STATUS,))
def list_users(rpc, actor, status):
    return rpc.accounts.list_users(actor, {"status": status} if status else {})


@route("POST", "/api/v1/admin/users", tag="users",
       summary="Create an active user (admin); without a password the answer holds a one-time "
               "password-setting link",
       body=ACCOUNTS + "CreateUserRequest", response=ACCOUNTS + "CreatedUserSchema", status=201,
       errors=(409,))
def create_user(rpc, actor, body):
    return rpc.accounts.create_user(actor, body)


@route("POST", "/api/v1/users/import", tag="users",
       summary="Import users from a CSV file (username,email,full_name,course): all rows or none "
               "(admin, or a manager into their courses)",
       body="csv", body_type="csv", response=ACCOUNTS + "ImportReportSchema",
       query=(QueryParam("project", "integer", None, "the course of rows without one", minimum=1),))
def import_users(rpc, actor, body, project):
    return rpc.accounts.import_users(actor, {"csv": body, **({"project": project} if project else {})})


@route("GET", "/api/v1/users/<id:user_id>", tag="users", summary="Get a user (self or admin)",
       response=ACCOUNTS + "UserSchema")
def get_user(rpc, actor, user_id):
    return rpc.accounts.get_user(actor, user_id)


@route("POST", "/api/v1/users/<id:user_id>/approve", tag="users",
       summary="Approve a pending user (admin), optionally into a course",
       body=ACCOUNTS + "ApproveUserRequest", response=ACCOUNTS + "UserSchema")
def approve_user(rpc, actor, user_id, body):
    return rpc.accounts.approve_user(actor, user_id, body)


@route("POST", "/api/v1/users/<id:user_id>/reject", tag="users",
       summary="Reject a pending sign-up with a reason (admin)",
       body=ACCOUNTS + "RejectUserRequest", response=ACCOUNTS + "UserSchema", errors=(409,))
def reject_user(rpc, actor, user_id, body):
    return rpc.accounts.reject_user(actor, user_id, body)


@route("POST", "/api/v1/users/<id:user_id>/suspend", tag="users",
       summary="Suspend a user (admin): every token stops working",
       body=ACCOUNTS + "SuspendUserRequest", response=ACCOUNTS + "UserSchema", errors=(409,))
def suspend_user(rpc, actor, user_id, body):
    return rpc.accounts.suspend_user(actor, user_id, body)


@route("POST", "/api/v1/users/<id:user_id>/enable", tag="users", summary="Re-enable a suspended user (admin)",
       response=ACCOUNTS + "UserSchema", errors=(409,))
def enable_user(rpc, actor, user_id):
    return rpc.accounts.enable_user(actor, user_id)


@route("DELETE", "/api/v1/users/<id:user_id>", tag="users",
       summary="Delete a user (admin): their instances and keys are deleted, or handed to transfer_to",
       response=ACCOUNTS + "UserSchema", errors=(409,),
       query=(QueryParam("transfer_to", "integer", None, "the user who receives everything", minimum=1),))
def delete_user(rpc, actor, user_id, transfer_to):
    return rpc.accounts.delete_user(actor, user_id, {"transfer_to": transfer_to} if transfer_to else {})


@route("PUT", "/api/v1/users/<id:user_id>/password", tag="users",
       summary="Change my password (every token of mine is revoked: log in again)",
       body=ACCOUNTS + "ChangePasswordRequest", response=own.ChangedSchema)
def change_password(rpc, actor, user_id, body):
    return rpc.accounts.change_password(actor, user_id, body)


@route("POST", "/api/v1/users/<id:user_id>/password-reset", tag="users",
       summary="Reset a user's password (admin): revokes their tokens, returns a one-time link",
       response=ACCOUNTS + "PasswordLinkSchema")
def reset_password(rpc, actor, user_id):
    return rpc.accounts.reset_password(actor, user_id)


@route("POST", "/api/v1/password-setup", tag="users",
       summary="Set a password with a one-time link's token (from an import, creation or reset)",
       auth=False, body=ACCOUNTS + "SetPasswordRequest", response=ACCOUNTS + "UserSchema")
def set_password(rpc, body):
    return rpc.accounts.set_password(body)


@route("GET", "/api/v1/users/<id:user_id>/tokens", tag="users",
       summary="A user's live tokens (self or admin; never the secrets)",
       response=ACCOUNTS + "TokenInfoSchema", many=True)
def list_tokens(rpc, actor, user_id):
    return rpc.accounts.list_tokens(actor, user_id)


@route("DELETE", "/api/v1/users/<id:user_id>/tokens/<id:token_id>", tag="users",
       summary="Revoke one of a user's tokens (self or admin)", response=own.RevokedSchema)
def revoke_user_token(rpc, actor, user_id, token_id):
    return rpc.accounts.revoke_user_token(actor, user_id, token_id)


@route("POST", "/api/v1/tokens", tag="users",
       summary="Log in: issue a bearer token (rate limited per username and per address)",
       auth=False, client=True, body=ACCOUNTS + "TokenRequest", response=ACCOUNTS + "TokenSchema",
       status=201, errors=(403, 429))
def issue_token(rpc, body, client):
    return rpc.accounts.issue_token(body, client)


@route("DELETE", "/api/v1/tokens/current", tag="users", summary="Log out: revoke the token of this request",
       token=True, response=own.RevokedSchema)
def revoke_current_token(rpc, actor, token):
    result = rpc.accounts.revoke_token(token)
    current_app.extensions["token_cache"].forget(token)
    return result
