"""SSH keys: import, generate (the private key shown and downloadable once), delete."""
import base64

from flask import request

from gateway.portal.forms import attempt, body_from_form, form_page
from gateway.portal.gather import gather
from gateway.portal.registry import page

ACCOUNTS = "services.accounts.schemas:"


def _keys_page(rpc, actor, errors=None, form=None, generated=None):
    keys, projects = gather((rpc.accounts.list_keys, actor), (rpc.accounts.list_projects, actor))
    response = form_page("keys/index.html", errors, title="My SSH keys", keys=keys,
                         projects=[(p["id"], p["name"]) for p in projects],
                         form=form or {}, generated=generated,
                         download=base64.b64encode(generated["private_key"].encode()).decode() if generated else None)
    if generated:  # the private key is in this answer only: no cache may keep it
        response.headers["Cache-Control"] = "no-store"
    return response


@page("/keys", title="My SSH keys", area="student", methods=("GET", "POST"), nav="Keys")
def keys(rpc, actor):
    if request.method == "GET":
        return _keys_page(rpc, actor)
    body = body_from_form(ACCOUNTS + "AddKeyRequest")
    _key, errors = attempt(lambda: rpc.accounts.add_key(actor, body))
    return _keys_page(rpc, actor, errors, request.form if errors else None)


@page("/keys/generate", title="Generate a key", area="student", methods=("POST",))
def generate_key(rpc, actor):
    body = body_from_form(ACCOUNTS + "GenerateKeyRequest")
    generated, errors = attempt(lambda: rpc.accounts.generate_key(actor, body))
    return _keys_page(rpc, actor, errors, request.form if errors else None, generated)


@page("/keys/<id:key_id>/delete", title="Delete a key", area="student", methods=("POST",))
def delete_key(rpc, actor, key_id):
    _deleted, errors = attempt(lambda: rpc.accounts.delete_key(actor, key_id))
    return _keys_page(rpc, actor, errors)


