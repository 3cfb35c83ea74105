"""Who is calling. Callers pass the actor that `accounts.authenticate` returned; internal RPC is
trusted, so the dict is validated for shape, not re-checked against the database."""
from common.errors import InvalidInput
from common.schemas import ActorSchema, load


def load_actor(actor):
    """The validated actor dict; errors are reported under `actor`, not as request fields."""
    try:
        return load(ActorSchema, actor)
    except InvalidInput as exc:
        raise InvalidInput("invalid actor", {"actor": exc.fields}) from None

