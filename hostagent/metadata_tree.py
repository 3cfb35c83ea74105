"""What the metadata service answers for one guest: EC2's path tree, under each API version.

Clients name a version first: the tiny image asks for `/latest/...`; cloud-init's EC2 datasource
probes `/2009-04-04/meta-data/instance-id` and then the newest version it knows (`/2021-03-23/...`)
and crawls the listings from there. The tree is the same under every version served here.
"""

# The versions EC2 clients ask for (cloud-init 22.x: 2009-04-04 at least, then the newest of the
# rest). `/` lists them, as EC2 does.
API_VERSIONS = ("1.0", "2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "latest")
META_DATA_LISTING = ["instance-id", "hostname", "local-hostname", "local-ipv4", "mac", "public-keys/",
                     "instance-type", "placement/"]


class Response:
    def __init__(self, status, body=b"", headers=()):
        self.status, self.body = status, body if isinstance(body, bytes) else body.encode()
        self.headers = list(headers)


NOT_FOUND = Response("404 Not Found", "Not Found\n")


def _lines(items):
    return Response("200 OK", "\n".join(items))


def _value(value):
    return NOT_FOUND if value in (None, "") else Response("200 OK", str(value))


def _key_name(index):
    return "key" if index == 0 else f"key{index}"


def answer(path, data):
    """The response to GET `path` for a guest whose metadata is `data` (a dict: instance_id,
    hostname, local_ipv4, mac, public_keys, instance_type, availability_zone, user_data)."""
    if path == "/":
        return _lines(API_VERSIONS)
    version, _, rest = path[1:].partition("/")
    if version not in API_VERSIONS:
        return NOT_FOUND
    if rest == "":
        return _lines(["meta-data/"] + (["user-data"] if data.get("user_data") is not None else []))
    if rest == "user-data":
        user_data = data.get("user_data")
        return NOT_FOUND if user_data is None else Response("200 OK", user_data)
    if rest in ("meta-data", "meta-data/"):
        return _lines(META_DATA_LISTING)
    if not rest.startswith("meta-data/"):
        return NOT_FOUND
    return _meta_data(rest[len("meta-data/"):], data)


def _meta_data(name, data):
    simple = {"instance-id": data.get("instance_id"), "hostname": data.get("hostname"),
              "local-hostname": data.get("hostname"), "local-ipv4": data.get("local_ipv4"),
              "mac": data.get("mac"), "instance-type": data.get("instance_type"),
              "placement/availability-zone": data.get("availability_zone")}
    if name in simple:
        return _value(simple[name])
    if name in ("placement", "placement/"):
        return _lines(["availability-zone"])
    keys = data.get("public_keys") or []
    if name in ("public-keys", "public-keys/"):
        return _lines([f"{i}={_key_name(i)}" for i in range(len(keys))]) if keys else NOT_FOUND
    parts = name.rstrip("/").split("/")
    if len(parts) in (2, 3) and parts[0] == "public-keys" and parts[1].isdigit():
        index = int(parts[1])
        if index >= len(keys):
            return NOT_FOUND
        if len(parts) == 2:
            return _lines(["openssh-key"])
        if parts[2] == "openssh-key":
            return Response("200 OK", keys[index].strip() + "\n")
    return NOT_FOUND
