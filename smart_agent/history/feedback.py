"""Ratings of messages: stored only for a step of the actor's own thread, never moved between steps."""

import uuid

import sqlalchemy as sa
from chainlit.types import Feedback
from sqlalchemy.ext.asyncio import AsyncConnection

from smart_agent.errors import HistoryAccessError, HistoryError
from smart_agent.history.engine import insert
from smart_agent.history.schema import feedbacks, steps, threads


async def upsert(connection: AsyncConnection, feedback: Feedback, actor: str) -> tuple[str, str]:
    """Store `actor`'s rating of a step of one of their threads; returns (feedback id, thread id)."""
    found = (
        await connection.execute(
            sa.select(steps.c.threadId, threads.c.userIdentifier)
            .join(threads, threads.c.id == steps.c.threadId)
            .where(steps.c.id == feedback.forId)
        )
    ).first()
    if found is None:
        raise HistoryError(f"no message {feedback.forId!r} to rate")
    if found.userIdentifier != actor:
        raise HistoryAccessError(f"user {actor!r} may not rate a message of another user's thread")
    feedback_id = feedback.id or await connection.scalar(
        sa.select(feedbacks.c.id).where(feedbacks.c.forId == feedback.forId).limit(1)
    )
    feedback_id = str(feedback_id or uuid.uuid4())
    # The thread comes from the step, never from the browser's threadId.
    statement = insert(connection, feedbacks).values(
        id=feedback_id,
        forId=feedback.forId,
        threadId=found.threadId,
        value=feedback.value,
        comment=feedback.comment,
    )
    updated = await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[feedbacks.c.id],
            set_={"value": statement.excluded.value, "comment": statement.excluded.comment},
            where=sa.and_(
                feedbacks.c.forId == statement.excluded.forId,
                feedbacks.c.threadId == statement.excluded.threadId,
            ),
        )
    )
    if updated.rowcount == 0:
        raise HistoryAccessError(f"feedback {feedback_id!r} belongs to another message")
    return feedback_id, str(found.threadId)


async def delete(connection: AsyncConnection, feedback_id: str, actor: str) -> bool:
    """Delete `actor`'s rating; False when there is no such rating."""
    owner = (
        await connection.execute(
            sa.select(threads.c.userIdentifier)
            .join(feedbacks, feedbacks.c.threadId == threads.c.id)
            .where(feedbacks.c.id == feedback_id)
        )
    ).first()
    if owner is None:
        return False
    if owner.userIdentifier != actor:
        raise HistoryAccessError(f"user {actor!r} may not delete another user's rating")
    await connection.execute(feedbacks.delete().where(feedbacks.c.id == feedback_id))
    return True
