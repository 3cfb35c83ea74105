"""HTTP Basic credentials (a labcloud username and password) for the XenServer-compatible routes
(/rrd_updates, /vm_rrd), whose clients poll every few seconds with the same credentials.

The first request of a username/password pair logs in (`accounts.issue_token`, rate limited and
hashed there like any login) and the token is kept, keyed by the sha256 of the pair, for as long
as accounts accepts it; later requests are then authenticated like a bearer token (the token
cache, `accounts.authenticate`). A token that stops working (expired, revoked, password changed)
is dropped and the pair logs in again once. Wrong credentials are never kept.
"""
import collections
import hashlib

from flask import request

from common.errors import Unauthorized
from gateway import routes

MAX_ENTRIES = 1000


class BasicLogins:
    def __init__(self, max_entries=MAX_ENTRIES):
        self.max_entries = max_entries
        self._tokens = collections.OrderedDict()  # sha256(username \0 password) -> token

    @staticmethod
    def _key(username, password):
        return hashlib.sha256(f"{username}\0{password}".encode("utf-8")).digest()

    def actor(self, rpc, username, password):
        key = self._key(username, password)
        token = self._tokens.get(key)
        if token is not None:
            try:
                return routes.authenticate(rpc, token)
            except Unauthorized:
                self._tokens.pop(key, None)
        issued = rpc.accounts.issue_token({"username": username, "password": password},
                                          {"address": (request.remote_addr or "")[:64]})
        self._tokens[key] = issued["token"]
        while len(self._tokens) > self.max_entries:
            self._tokens.popitem(last=False)
        return routes.authenticate(rpc, issued["token"])
