"""The acting user: set explicitly around a request, else taken from Chainlit's context."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from chainlit.context import context_var

_acting: ContextVar[str | None] = ContextVar("smart_agent_history_actor", default=None)


@contextmanager
def acting_user(identifier: str) -> Iterator[None]:
    """Run the enclosed history calls on behalf of the user with this identifier."""
    token = _acting.set(identifier)
    try:
        yield
    finally:
        _acting.reset(token)


def current_actor() -> str | None:
    """The acting user's identifier: `acting_user`'s, else the Chainlit session's user, else None."""
    explicit = _acting.get()
    if explicit is not None:
        return explicit
    chainlit_context = context_var.get(None)
    if chainlit_context is None:
        return None
    user = chainlit_context.session.user
    return user.identifier if user is not None else None
