"""Who is calling. Callers pass the actor that `accounts.authenticate` returned; internal RPC is
trusted, so the dict is validated for shape, not re-checked against the database."""
from common.errors import Forbidden, InvalidInput
from common.schemas import ActorSchema, load


def load_actor(actor):
    """The validated actor dict; errors are reported under `actor`, not as request fields."""
    try:
        return load(ActorSchema, actor)
    except InvalidInput as exc:
        raise InvalidInput("invalid actor", {"actor": exc.fields}) from None


def is_admin(actor):
    return actor["role"] == "admin"


def require_admin(actor, what):
    if not is_admin(actor):
        raise Forbidden(f"only an administrator may {what}")
