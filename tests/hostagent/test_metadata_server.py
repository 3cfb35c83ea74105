"""The guest metadata service: the WSGI app with a fake lookup, the cache, and the server bound
inside a network namespace the test creates, answering two 'guests' by their source address."""
import eventlet
import eventlet.wsgi
import pytest

from hostagent.imds_tokens import SessionTokens
from hostagent.metadata_server import (
    CachedLookup, LookupUnavailable, make_app, metadata_listener)
from tests.hostagent.netutil import add_address, connect_from, http_get

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDxL9Wq5zOV0k1NzFIz1wNrCkYt2gA0zC6q3Pn9V3x7n alice@lab"
GUESTS = {
    "10.99.0.2": {"instance_id": "7a1b2c3d-0000-4000-8000-000000000001", "hostname": "web-1",
                  "local_ipv4": "10.99.0.2", "mac": "aa:00:0a:63:00:02", "public_keys": [KEY],
                  "instance_type": "m1.tiny", "availability_zone": "host1",
                  "user_data": "#!/bin/sh\necho hi > /tmp/hi\n"},
    "10.99.0.3": {"instance_id": "7a1b2c3d-0000-4000-8000-000000000002", "hostname": "db-1",
                  "local_ipv4": "10.99.0.3", "mac": "aa:00:0a:63:00:03", "public_keys": [],
                  "instance_type": "m1.small", "availability_zone": "host1", "user_data": None},
}


def get(path, ip="10.99.0.2", method="GET", lookup=GUESTS.get, headers=None, tokens=None):
    captured = {}

    def start_response(status, headers):
        captured["status"], captured["headers"] = status, dict(headers)
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "REMOTE_ADDR": ip, **(headers or {})}
    body = b"".join(make_app(lookup, tokens)(environ, start_response))
    return int(captured["status"].split()[0]), body.decode()


@pytest.mark.parametrize("path,expected", [
    ("/latest/meta-data/instance-id", "7a1b2c3d-0000-4000-8000-000000000001"),
    ("/latest/meta-data/hostname", "web-1"),
    ("/latest/meta-data/local-ipv4", "10.99.0.2"),
    ("/latest/meta-data/mac", "aa:00:0a:63:00:02"),
    ("/latest/meta-data/instance-type", "m1.tiny"),
    ("/latest/meta-data/placement/availability-zone", "host1"),
    ("/latest/meta-data/public-keys/", "0=key"),
    ("/latest/meta-data/public-keys/0/", "openssh-key"),
    ("/latest/meta-data/public-keys/0/openssh-key", KEY + "\n"),
    ("/latest/user-data", "#!/bin/sh\necho hi > /tmp/hi\n"),
    # The dated versions cloud-init's EC2 datasource asks for, and EC2's version listing.
    ("/2009-04-04/meta-data/instance-id", "7a1b2c3d-0000-4000-8000-000000000001"),
    ("/2021-03-23/meta-data/local-hostname", "web-1"),
    ("/2021-03-23/user-data", "#!/bin/sh\necho hi > /tmp/hi\n"),
    ("/2016-09-02/", "meta-data/\nuser-data"),
    ("/", "1.0\n2009-04-04\n2016-09-02\n2018-09-24\n2021-03-23\nlatest"),
])
def test_paths(path, expected):
    assert get(path) == (200, expected)


def test_listing_names_every_entry():
    status, body = get("/latest/meta-data/")
    assert status == 200
    assert body.split("\n") == ["instance-id", "hostname", "local-hostname", "local-ipv4", "mac",
                                "public-keys/", "instance-type", "placement/"]


@pytest.mark.parametrize("path", [
    "/latest/meta-data/nope", "/latest/meta-data/public-keys/1/openssh-key",
    "/latest/meta-data/public-keys/0/other", "/2030-01-01/meta-data/instance-id", "/latest/x",
    "/meta-data/instance-id", "//latest/meta-data/instance-id",
])
def test_unknown_paths_are_404(path):
    assert get(path)[0] == 404


def test_each_guest_sees_its_own_data_only():
    assert get("/latest/meta-data/hostname", ip="10.99.0.3") == (200, "db-1")
    assert get("/latest/user-data", ip="10.99.0.3")[0] == 404  # none given
    assert get("/latest/meta-data/public-keys/", ip="10.99.0.3")[0] == 404
    assert get("/latest/meta-data/instance-id", ip="10.99.0.9")[0] == 404  # not a guest


def test_lookup_failure_is_503_and_writes_are_refused():
    def down(_ip):
        raise LookupUnavailable("instances service down")
    assert get("/latest/meta-data/hostname", lookup=down)[0] == 503
    assert get("/latest/meta-data/hostname", method="POST")[0] == 405


TTL = "HTTP_X_AWS_EC2_METADATA_TOKEN_TTL_SECONDS"
TOKEN = "HTTP_X_AWS_EC2_METADATA_TOKEN"


def test_imdsv2_session_tokens():
    now = [1000.0]
    tokens = SessionTokens(clock=lambda: now[0])
    status, token = get("/latest/api/token", method="PUT", headers={TTL: "60"}, tokens=tokens)
    assert status == 200 and token
    path = "/latest/meta-data/hostname"
    assert get(path, headers={TOKEN: token}, tokens=tokens) == (200, "web-1")
    assert get(path, tokens=tokens) == (200, "web-1")  # IMDSv1 still answers
    # Bound to the address that asked for it, refused when wrong or expired.
    assert get(path, ip="10.99.0.3", headers={TOKEN: token}, tokens=tokens)[0] == 401
    # One character of the MAC changed (to another character: "0" would leave a token ending in
    # "0" as it was, one time in sixteen).
    tampered = token[:-1] + ("1" if token.endswith("0") else "0")
    assert get(path, headers={TOKEN: tampered}, tokens=tokens)[0] == 401
    assert get(path, headers={TOKEN: "garbage"}, tokens=tokens)[0] == 401
    now[0] += 61
    assert get(path, headers={TOKEN: token}, tokens=tokens)[0] == 401
    # Another agent (restart, another secret) does not take it either.
    assert get(path, headers={TOKEN: token}, tokens=SessionTokens(clock=lambda: 1000.0))[0] == 401


@pytest.mark.parametrize("headers,status", [
    ({}, 400), ({TTL: "0"}, 400), ({TTL: "21601"}, 400), ({TTL: "x"}, 400),
    ({TTL: "21600", "HTTP_X_FORWARDED_FOR": "10.0.0.1"}, 403), ({TTL: "21600"}, 200),
])
def test_token_requests_are_checked(headers, status):
    assert get("/latest/api/token", method="PUT", headers=headers)[0] == status


def test_cache_remembers_answers_for_a_while():
    calls, now = [], [100.0]

    def fetch(ip):
        calls.append(ip)
        return GUESTS.get(ip)
    lookup = CachedLookup(fetch, ttl=5, clock=lambda: now[0])
    assert lookup("10.99.0.2")["hostname"] == "web-1"
    assert lookup("10.99.0.2")["hostname"] == "web-1"
    assert lookup("10.99.0.9") is None and lookup("10.99.0.9") is None  # misses are cached too
    assert calls == ["10.99.0.2", "10.99.0.9"]
    now[0] += 6
    lookup("10.99.0.2")
    assert calls == ["10.99.0.2", "10.99.0.9", "10.99.0.2"]


def test_a_reused_address_is_forgotten_so_the_next_guest_never_gets_the_previous_answer():
    owners = {"10.99.0.2": dict(GUESTS["10.99.0.2"], hostname="old-guest")}
    lookup = CachedLookup(owners.get, ttl=60, clock=lambda: 0.0)
    assert lookup("10.99.0.2")["hostname"] == "old-guest"
    owners["10.99.0.2"] = dict(GUESTS["10.99.0.2"], hostname="new-guest")  # IP released, reused
    lookup.forget("10.99.0.2")  # what create_domain/destroy_domain do
    assert lookup("10.99.0.2")["hostname"] == "new-guest"


def test_server_inside_a_namespace_identifies_guests_by_source_address(netns):
    add_address(netns, "169.254.169.254/32")
    add_address(netns, "10.99.0.2/22")
    add_address(netns, "10.99.0.3/22")
    sock = metadata_listener(netns)  # 169.254.169.254:80, as the agent binds it
    server = eventlet.spawn(eventlet.wsgi.server, sock, make_app(GUESTS.get), log_output=False)
    try:
        address = ("169.254.169.254", 80)
        assert http_get(connect_from(netns, "10.99.0.2", address),
                        "/latest/meta-data/hostname") == (200, b"web-1")
        assert http_get(connect_from(netns, "10.99.0.3", address),
                        "/latest/meta-data/hostname") == (200, b"db-1")
        assert http_get(connect_from(netns, "169.254.169.254", address),
                        "/latest/meta-data/hostname")[0] == 404
    finally:
        server.kill()
        sock.close()
