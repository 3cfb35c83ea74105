"""From an HTML form to a service request, and back to errors shown next to their fields.

A form's fields carry the API's own field names, so the service's validation errors (`fields`)
land next to the input that caused them. Form values are strings; `body_from_form` gives them the
JSON types the service's request schema declares (integers, booleans, lists), and leaves a value
it cannot convert as it was, so the service's validation names the field.
"""
from flask import current_app, g, render_template, request
from marshmallow import fields as mm

from common.errors import LabcloudError
from gateway.portal.session import CSRF_FIELD
from gateway.routes import resolve


def _convert(field, value):
    if hasattr(field, "from_form"):  # a field that says what its form text means (an id or a name)
        return field.from_form(value)
    if isinstance(field, mm.Boolean):
        return value in ("on", "true", "1", "yes")
    if isinstance(field, mm.Integer):
        try:
            return int(value)
        except ValueError:
            return value
    if isinstance(field, mm.List):
        items = [v.strip() for v in value.replace("\n", ",").split(",") if v.strip()]
        return [_convert(field.inner, v) for v in items]
    return value


def body_from_form(schema, form=None, *, keep_empty=()):
    """The request body a form means. `schema`: the service's request schema (class, or its
    "module:Class" reference); `form`: this request's form by default. Empty fields are left out
    (the schema's defaults apply), except those named in keep_empty, sent as null ("no default" /
    "unlimited")."""
    declared = resolve(schema)().fields
    form = request.form if form is None else form
    body = {}
    for name, value in form.items():
        if name == CSRF_FIELD or name not in declared:
            continue
        value = value.strip() if declared[name].__class__ is not mm.String else value
        if value == "":
            if name in keep_empty:
                body[name] = None
            continue
        body[name] = _convert(declared[name], value)
    return body


class FormErrors:
    """What a failed request says, split into messages per field and the rest. `fields`: one line
    per field, nested ones also under dotted names (`quota.instances`, as such inputs are named);
    `lists`: each field's messages one by one (a refused class list names one line per message)."""

    def __init__(self, exc=None):
        self.fields, self.lists, self.message, self.status = {}, {}, None, 200
        if exc is not None:
            self.message, self.status = exc.message, exc.http_status
            for name, messages in (exc.fields or {}).items():
                self.lists[name] = _flatten(messages)
                self.fields[name] = "; ".join(self.lists[name])
                if isinstance(messages, dict):
                    for sub, sub_messages in messages.items():
                        self.fields[f"{name}.{sub}"] = "; ".join(_flatten(sub_messages))

    def __bool__(self):
        return self.message is not None

    def get(self, name):
        return self.fields.get(name)


def _flatten(messages):
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, dict):
        return [f"{k}: {m}" for k, v in messages.items() for m in _flatten(v)]
    return [m for item in messages for m in _flatten(item)]


def attempt(call, also=()):
    """Run one service call of a form: (result, FormErrors()). Errors meant for users (4xx) come
    back as FormErrors, to be shown on the form; anything else propagates, except the error
    classes named in `also` (e.g. CapacityExhausted, 503: no host has room, which the user reads
    on the form they sent, with that status)."""
    try:
        return call(), FormErrors()
    except LabcloudError as exc:
        if exc.http_status >= 500 and not isinstance(exc, tuple(also)):
            raise
        g.audit_message = exc.message  # the audit record of this request says why it was refused
        return None, FormErrors(exc)


def form_page(template, errors=None, **context):
    """Render a page holding a form: with the service's status when the form was refused."""
    response = current_app.make_response(render_template(template, errors=errors, **context))
    if errors:
        response.status_code = errors.status
    return response
