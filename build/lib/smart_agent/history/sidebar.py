"""The sidebar's thread list as one SQL query: newest first, keyset-paged, filtered in SQL.

Newest *created* first: Chainlit 2.12's sidebar sorts and groups the threads it has loaded by
`createdAt` (frontend `ThreadHistory`), so pages in that order only ever append below what is shown.
"""

from typing import Any

import sqlalchemy as sa
from chainlit.types import ThreadFilter

from smart_agent.history.rows import THREAD_COLUMNS
from smart_agent.history.schema import feedbacks, steps, threads

MAX_PAGE = 100
"""The most threads one request may ask for; the browser sends `first`."""


def page_size(first: int) -> int:
    """`first` bounded to 1..MAX_PAGE."""
    return max(1, min(first, MAX_PAGE))


def cursor_query(user_id: str, cursor: str) -> sa.Select[Any]:
    """The sort key of the cursor thread, found among this user's threads only."""
    return sa.select(threads.c.createdAt, threads.c.id).where(
        threads.c.id == cursor, threads.c.userId == user_id
    )


def page_query(
    user_id: str, filters: ThreadFilter, after: tuple[str, str] | None, limit: int
) -> sa.Select[Any]:
    """Up to `limit` of the user's threads after the cursor's sort key, matching the filters."""
    query = sa.select(*THREAD_COLUMNS).where(threads.c.userId == user_id)
    if after is not None:
        query = query.where(sa.tuple_(threads.c.createdAt, threads.c.id) < sa.tuple_(*after))
    if filters.search:
        needle = filters.search.lower()
        in_steps = (
            sa.select(steps.c.id)
            .where(
                steps.c.threadId == threads.c.id,
                sa.func.lower(steps.c.output).contains(needle, autoescape=True),
            )
            .exists()
        )
        query = query.where(sa.or_(sa.func.lower(threads.c.name).contains(needle, autoescape=True), in_steps))
    if filters.feedback is not None:
        rated = (
            sa.select(feedbacks.c.id)
            .where(feedbacks.c.threadId == threads.c.id, feedbacks.c.value == int(filters.feedback))
            .exists()
        )
        query = query.where(rated)
    return query.order_by(threads.c.createdAt.desc(), threads.c.id.desc()).limit(limit)
