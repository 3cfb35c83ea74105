"""Accounts service: users, tokens and SSH keys. Entry points only; the logic is in users.py,
tokens.py and keys.py."""
from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.rpc import rpc

from common.actors import load_actor
from common.clock import Clock
from common.db import Database
from common.schemas import ActorSchema, dump, load
from services.accounts import keys, tokens, users
from services.accounts.schemas import (
    AddKeyRequest, KeySchema, SignupRequest, TokenRequest, TokenSchema, UserSchema)


class AccountsService:
    name = "accounts"

    db = Database()
    clock = Clock()
    config = Config()
    dispatch = EventDispatcher()

    @rpc
    def signup(self, request):
        request = load(SignupRequest, request)
        user, created = users.signup(self.db, now=self.clock(), **request)
        result = dump(UserSchema, user)
        if created:
            self.dispatch("user_signed_up", result)
        return result

    @rpc
    def approve_user(self, actor, user_id):
        user, changed = users.approve_user(self.db, load_actor(actor), user_id, self.clock())
        result = dump(UserSchema, user)
        if changed:
            self.dispatch("user_approved", result)
        return result

    @rpc
    def get_user(self, actor, user_id):
        return dump(UserSchema, users.get_user(self.db, load_actor(actor), user_id))

    @rpc
    def list_users(self, actor):
        return dump(UserSchema, users.list_users(self.db, load_actor(actor)), many=True)

    @rpc
    def issue_token(self, request):
        request = load(TokenRequest, request)
        ttl = self.config.get("TOKEN_TTL_HOURS", tokens.DEFAULT_TTL_HOURS)
        issued = tokens.issue_token(self.db, request["username"], request["password"],
                                    self.clock(), ttl)
        return dump(TokenSchema, issued)

    @rpc
    def authenticate(self, token):
        return dump(ActorSchema, tokens.authenticate(self.db, token, self.clock()))

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
