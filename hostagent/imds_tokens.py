"""IMDSv2 session tokens (`PUT /latest/api/token`), for clients that use them (cloud-init on
AWS-like platforms, the AWS CLI, `ec2-metadata`).

A guest is identified by its source address, not by its token; the token only has to behave as
EC2's does: bound to the address that asked, valid for the TTL it asked for (1-21600 s), refused
(401) when wrong or expired. It is an HMAC over (address, expiry) with a secret made at start, so
nothing is stored; tokens from before an agent restart are refused and clients ask again.
"""
import hashlib
import hmac
import secrets
import time

MAX_TTL_S = 21600


class TokenTtlInvalid(ValueError):
    pass


def parse_ttl(text):
    try:
        ttl = int(text)
    except (TypeError, ValueError):
        raise TokenTtlInvalid("X-aws-ec2-metadata-token-ttl-seconds must be an integer") from None
    if not 1 <= ttl <= MAX_TTL_S:
        raise TokenTtlInvalid(f"X-aws-ec2-metadata-token-ttl-seconds must be 1-{MAX_TTL_S}")
    return ttl


class SessionTokens:
    def __init__(self, secret=None, clock=time.time):
        self._secret = secret or secrets.token_bytes(32)
        self._clock = clock

    def _mac(self, ip, expiry):
        return hmac.new(self._secret, f"{ip}|{expiry}".encode(), hashlib.sha256).hexdigest()

    def issue(self, ip, ttl):
        expiry = int(self._clock()) + ttl
        return f"{expiry}.{self._mac(ip, expiry)}"

    def valid(self, ip, token):
        expiry, _, mac = (token or "").partition(".")
        if not expiry.isdigit() or int(expiry) < self._clock():
            return False
        return hmac.compare_digest(mac, self._mac(ip, int(expiry)))
