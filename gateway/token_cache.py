"""Validated bearer tokens, remembered for a few seconds.

The gateway asks accounts.authenticate once per token and keeps the actor for at most
TOKEN_CACHE_SECONDS (default 5): a revoked token (logout, password change, suspension, deletion)
stops working on every gateway within that bound, and a busy client costs one accounts RPC per
token per bound instead of one per request. Only successful answers are kept; keys are the
token's sha256, so the process never holds bearer secrets in a dict.
"""
import collections
import hashlib
import time

DEFAULT_SECONDS = 5.0
MAX_SECONDS = 10.0  # the bound the docs promise; a config above it is clamped
DEFAULT_ENTRIES = 10000


class TokenCache:
    def __init__(self, seconds=DEFAULT_SECONDS, max_entries=DEFAULT_ENTRIES, clock=time.monotonic):
        self.seconds = min(max(float(seconds), 0.0), MAX_SECONDS)
        self.max_entries = max_entries
        self.clock = clock
        self._entries = collections.OrderedDict()  # key -> (valid_until, actor), oldest first

    @staticmethod
    def _key(token):
        return hashlib.sha256(token.encode("utf-8")).digest()

    def get(self, token):
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, token, actor):
        if self.seconds <= 0:
            return
        key = self._key(token)
        self._entries.pop(key, None)
        self._entries[key] = (self.clock() + self.seconds, actor)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, token):
        """This gateway drops the token at once (logout through it); others within the bound."""
        self._entries.pop(self._key(token), None)
