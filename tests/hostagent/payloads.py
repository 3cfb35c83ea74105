"""Helpers for comparing the agent's answers."""


def without_seq(state):
    """A DomainStateSchema without its seq (which differs on every answer)."""
    assert isinstance(state["seq"], int)
    return {key: value for key, value in state.items() if key != "seq"}
