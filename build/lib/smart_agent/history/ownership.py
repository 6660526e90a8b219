"""Who may touch a thread: the acting user against the thread's owner, and creating owned threads."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from smart_agent.errors import HistoryAccessError, HistoryError
from smart_agent.history import rows
from smart_agent.history.actor import current_actor
from smart_agent.history.engine import insert
from smart_agent.history.schema import threads, users


def may_access(owner: str | None, actor: str | None) -> bool:
    """Whether the acting user may touch a thread of `owner`."""
    # No acting user: Chainlit's own check runs at that call site (server.py `is_thread_author`,
    # socket.py connect). An unowned thread was written by an app without login.
    return actor is None or owner is None or owner == actor


def check(owner: str | None, action: str, target: str) -> None:
    """Refuse when the acting user is known and is not the owner."""
    actor = current_actor()
    if not may_access(owner, actor):
        raise HistoryAccessError(f"user {actor!r} may not {action} {target!r}: it is another user's")


def required_actor(action: str) -> str:
    """The acting user; refuse when there is none."""
    # Chainlit 2.12's /feedback routes check nobody's ownership, so this layer needs to know who asks.
    actor = current_actor()
    if actor is None:
        raise HistoryAccessError(f"no signed-in user to {action} for")
    return actor


async def find_user_id(connection: AsyncConnection, identifier: str) -> str | None:
    """The stored id of the user with this identifier, if any."""
    return await connection.scalar(sa.select(users.c.id).where(users.c.identifier == identifier))


async def own_thread(
    connection: AsyncConnection, thread_id: str, user_id: str | None = None
) -> dict[str, Any]:
    """Create the thread if missing, owned by `user_id`'s user or the actor (refusing another's).

    Returns the thread's metadata.
    """
    actor = current_actor()
    owner_identifier = actor
    if user_id is not None:
        owner_identifier = await connection.scalar(sa.select(users.c.identifier).where(users.c.id == user_id))
        if owner_identifier is None:
            raise HistoryError(f"no user with id {user_id!r}")
        if actor is not None and owner_identifier != actor:
            raise HistoryAccessError(f"user {actor!r} may not give a thread to another user")
    locked = sa.select(threads.c.userIdentifier, threads.c.metadata).where(threads.c.id == thread_id)
    current = (await connection.execute(locked.with_for_update())).first()
    owner_id = user_id
    if (
        (current is None or current.userIdentifier is None)
        and owner_identifier is not None
        and owner_id is None
    ):
        owner_id = await find_user_id(connection, owner_identifier)
    if current is None:
        # Two writers may create the thread at once: the loser's insert does nothing, and both read it back.
        await connection.execute(
            insert(connection, threads)
            .values(
                id=thread_id,
                createdAt=rows.now(),
                userId=owner_id,
                userIdentifier=owner_identifier,
                metadata={},
            )
            .on_conflict_do_nothing(index_elements=[threads.c.id])
        )
        current = (await connection.execute(locked.with_for_update())).one()
    if current.userIdentifier is None:
        if owner_identifier is not None:
            await connection.execute(
                threads.update()
                .where(threads.c.id == thread_id)
                .values(userId=owner_id, userIdentifier=owner_identifier)
            )
    elif owner_identifier is not None and current.userIdentifier != owner_identifier:
        raise HistoryAccessError(
            f"user {owner_identifier!r} may not write to thread {thread_id!r}: it is another user's"
        )
    return dict(current.metadata or {})
