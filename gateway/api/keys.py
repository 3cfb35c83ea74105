"""SSH keys (the accounts service)."""
from gateway import schemas as own
from gateway.api.registry import ACCOUNTS, route


@route("POST", "/api/v1/keys", tag="keys", summary="Import an SSH public key (RSA >= 2048, ECDSA, Ed25519)",
       body=ACCOUNTS + "AddKeyRequest", response=ACCOUNTS + "KeySchema", status=201, errors=(409,))
def add_key(rpc, actor, body):
    return rpc.accounts.add_key(actor, body)


@route("POST", "/api/v1/keys/generate", tag="keys",
       summary="Generate a key pair: the private key is in this answer only, never stored",
       body=ACCOUNTS + "GenerateKeyRequest", response=ACCOUNTS + "GeneratedKeySchema", status=201,
       errors=(409,))
def generate_key(rpc, actor, body):
    return rpc.accounts.generate_key(actor, body)


@route("GET", "/api/v1/keys", tag="keys", summary="List my SSH keys and those shared with my projects",
       response=ACCOUNTS + "KeySchema", many=True)
def list_keys(rpc, actor):
    return rpc.accounts.list_keys(actor)


@route("GET", "/api/v1/keys/<id:key_id>", tag="keys", summary="Get an SSH key",
       response=ACCOUNTS + "KeySchema")
def get_key(rpc, actor, key_id):
    return rpc.accounts.get_key(actor, key_id)


@route("DELETE", "/api/v1/keys/<id:key_id>", tag="keys", summary="Delete an SSH key",
       response=own.DeletedSchema)
def delete_key(rpc, actor, key_id):
    return rpc.accounts.delete_key(actor, key_id)
