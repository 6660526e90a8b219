"""Chainlit's data layer over SQLAlchemy Core: bound parameters, paging in SQL, ownership, loud errors."""

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from chainlit.data.base import BaseDataLayer
from chainlit.element import Element, ElementDict
from chainlit.step import StepDict
from chainlit.types import Feedback, PageInfo, PaginatedResponse, Pagination, ThreadDict, ThreadFilter
from chainlit.user import PersistedUser, User
from sqlalchemy.ext.asyncio import AsyncEngine

from smart_agent.errors import HistoryAccessError
from smart_agent.history import feedback as ratings
from smart_agent.history import ownership, rows, sidebar
from smart_agent.history.actor import current_actor
from smart_agent.history.engine import insert, writer
from smart_agent.history.migrate import open_migrated
from smart_agent.history.schema import attachments, elements, feedbacks, steps, threads, users
from smart_agent.history.wrappers import queued, surfaced, tracked

log = logging.getLogger("smart_agent.history")
ATTACHMENT_URL = "/smart-agent/attachments/{id}"
"""Where a stored attachment is served to its owner (smart_agent/web/attachments.py)."""
CLOSE_WAIT = 5.0
"""How long `close()` waits for writes still running (Chainlit starts them in tasks of its own)."""


class HistoryDataLayer(BaseDataLayer):
    """Chat history in SQLite or PostgreSQL, in Chainlit's tables, confined to the acting user's threads."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self.writing: set[asyncio.Task[object]] = set()  # the writes running now (wrappers.tracked)

    @classmethod
    async def open(cls, url_or_path: str | Path) -> "HistoryDataLayer":
        """Open (or create) the database, apply the migrations, and return its data layer."""
        return cls(await open_migrated(url_or_path, "the chat history"))

    @property
    def engine(self) -> AsyncEngine:
        """The engine this layer reads and writes through."""
        return self._engine

    async def build_debug_url(self) -> str:
        """No debug UI for this store."""
        return ""

    async def settle(self) -> None:
        """Wait (bounded) until the writes started, and those they start as they end, have finished."""
        # Chainlit's first thread write ends by starting the queued steps' (emitter.py flush_thread_queues).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_WAIT
        while True:
            await asyncio.sleep(0)  # writes scheduled just now start and register first
            if not self.writing:
                return
            _, late = await asyncio.wait(set(self.writing), timeout=max(0.0, deadline - loop.time()))
            if late:
                log.warning("history: %d writes did not finish within %g s", len(late), CLOSE_WAIT)
                return

    async def close(self) -> None:
        """Let the writes already started finish (bounded), then close every pooled connection."""
        await self.settle()
        await self._engine.dispose()

    # Users

    @surfaced
    async def get_user(self, identifier: str) -> PersistedUser | None:
        """The stored user with this identifier, if any."""
        async with self._engine.connect() as connection:
            row = (await connection.execute(sa.select(users).where(users.c.identifier == identifier))).first()
        if row is None:
            return None
        return PersistedUser(
            id=row.id, identifier=row.identifier, createdAt=row.createdAt, metadata=row.metadata
        )

    @surfaced
    async def create_user(self, user: User) -> PersistedUser | None:
        """Store the user, or update the metadata of the stored user with its identifier."""
        async with self._writer.begin() as connection:
            statement = insert(connection, users).values(
                id=str(uuid.uuid4()), identifier=user.identifier, metadata=user.metadata, createdAt=rows.now()
            )
            await connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[users.c.identifier], set_={"metadata": statement.excluded.metadata}
                )
            )
        return await self.get_user(user.identifier)

    # Threads

    @surfaced
    async def get_thread_author(self, thread_id: str) -> str:
        """The identifier of the thread's user; "" when there is no such thread (Chainlit answers 404)."""
        async with self._engine.connect() as connection:
            owner = await connection.scalar(
                sa.select(threads.c.userIdentifier).where(threads.c.id == thread_id)
            )
        return owner or ""

    @surfaced
    async def get_thread(self, thread_id: str) -> ThreadDict | None:
        """The thread with its steps (oldest first, with feedback) and elements; None if not the actor's."""
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(sa.select(*rows.THREAD_COLUMNS).where(threads.c.id == thread_id))
            ).first()
            if row is None or not ownership.may_access(row.userIdentifier, current_actor()):
                return None
            step_rows = await connection.execute(
                sa.select(
                    steps,
                    feedbacks.c.id.label("feedback_id"),
                    feedbacks.c.value.label("feedback_value"),
                    feedbacks.c.comment.label("feedback_comment"),
                )
                .outerjoin(feedbacks, feedbacks.c.forId == steps.c.id)
                .where(steps.c.threadId == thread_id)
                .order_by(steps.c.createdAt, steps.c.id)
            )
            thread_steps: dict[str, StepDict] = {}
            for step_row in step_rows.mappings():
                # One feedback per step is shown; setdefault keeps the first if a client made two.
                thread_steps.setdefault(
                    step_row["id"], rows.step_dict(step_row, rows.feedback_dict(step_row))
                )
            element_rows = await connection.execute(
                sa.select(elements).where(elements.c.threadId == thread_id).order_by(elements.c.id)
            )
            thread_elements = [rows.element_dict(element) for element in element_rows.mappings()]
            stored = set(
                (
                    await connection.execute(
                        sa.select(attachments.c.id)
                        .join(elements, elements.c.id == attachments.c.id)
                        .where(elements.c.threadId == thread_id)
                    )
                ).scalars()
            )
        for element in thread_elements:
            if element["id"] in stored:  # the session's own file is gone after a restart: ours stays
                element["url"] = ATTACHMENT_URL.format(id=element["id"])
        return rows.thread_dict(row._mapping, list(thread_steps.values()), thread_elements)

    @surfaced
    async def list_threads(
        self, pagination: Pagination, filters: ThreadFilter
    ) -> PaginatedResponse[ThreadDict]:
        """One sidebar page of the user's threads (steps not loaded), newest first."""
        if not filters.userId:
            raise HistoryAccessError("listing threads needs the user's id")
        actor = current_actor()
        async with self._engine.connect() as connection:
            if actor is not None and await ownership.find_user_id(connection, actor) != filters.userId:
                raise HistoryAccessError(f"user {actor!r} may not list another user's threads")
            after: tuple[str, str] | None = None
            if pagination.cursor:
                key = (
                    await connection.execute(sidebar.cursor_query(filters.userId, pagination.cursor))
                ).first()
                if key is None:
                    return PaginatedResponse(PageInfo(False, None, None), [])
                after = (key.createdAt, key.id)
            size = sidebar.page_size(pagination.first)
            found = (
                await connection.execute(sidebar.page_query(filters.userId, filters, after, size + 1))
            ).all()
        page = [rows.thread_dict(row._mapping, [], []) for row in found[:size]]
        return PaginatedResponse(
            pageInfo=PageInfo(
                hasNextPage=len(found) > size,
                startCursor=page[0]["id"] if page else None,
                endCursor=page[-1]["id"] if page else None,
            ),
            data=page,
        )

    @surfaced
    @tracked
    async def update_thread(
        self,
        thread_id: str,
        name: str | None = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
    ) -> None:
        """Create or update the thread; metadata keys set to None are removed (Chainlit's semantics)."""
        async with self._writer.begin() as connection:
            stored = await ownership.own_thread(connection, thread_id, user_id)
            changes: dict[str, Any] = {}
            if metadata is not None:
                merged = {**stored, **metadata}
                changes["metadata"] = {key: value for key, value in merged.items() if value is not None}
            if name is None and metadata:
                name = metadata.get("name")
            if name is not None:
                changes["name"] = name
            if tags is not None:
                changes["tags"] = tags
            if changes:
                await connection.execute(threads.update().where(threads.c.id == thread_id).values(**changes))

    @surfaced
    @tracked
    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread with its steps, elements and feedback."""
        async with self._writer.begin() as connection:
            owner = await connection.scalar(
                sa.select(threads.c.userIdentifier).where(threads.c.id == thread_id)
            )
            ownership.check(owner, "delete", thread_id)
            for table in (feedbacks, elements, steps):
                await connection.execute(table.delete().where(table.c.threadId == thread_id))
            await connection.execute(threads.delete().where(threads.c.id == thread_id))

    # Steps

    @queued
    @surfaced
    @tracked
    async def create_step(self, step_dict: StepDict) -> None:
        """Store a new step; a step already stored (its update won the race) is kept as is."""
        values = rows.step_values(step_dict)
        async with self._writer.begin() as connection:
            await ownership.own_thread(connection, values["threadId"])
            statement = insert(connection, steps).values(**values)
            created = await connection.execute(statement.on_conflict_do_nothing(index_elements=[steps.c.id]))
            if created.rowcount == 0:
                stored_in = await connection.scalar(
                    sa.select(steps.c.threadId).where(steps.c.id == values["id"])
                )
                if stored_in != values["threadId"]:
                    raise HistoryAccessError(f"step {values['id']!r} belongs to another thread")

    @queued
    @surfaced
    @tracked
    async def update_step(self, step_dict: StepDict) -> None:
        """Store the step's fields, creating it if its creation has not landed yet."""
        values = rows.step_values(step_dict)
        async with self._writer.begin() as connection:
            await ownership.own_thread(connection, values["threadId"])
            statement = insert(connection, steps).values(**values)
            updated = await connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[steps.c.id],
                    set_={key: statement.excluded[key] for key in values if key not in ("id", "threadId")},
                    # A step id from another thread must not let this call rewrite that step.
                    where=steps.c.threadId == statement.excluded.threadId,
                )
            )
            if updated.rowcount == 0:
                raise HistoryAccessError(f"step {values['id']!r} belongs to another thread")

    @queued
    @surfaced
    @tracked
    async def delete_step(self, step_id: str) -> None:
        """Delete the step with its elements and feedback."""
        async with self._writer.begin() as connection:
            found = (
                await connection.execute(
                    sa.select(threads.c.userIdentifier)
                    .join(steps, steps.c.threadId == threads.c.id)
                    .where(steps.c.id == step_id)
                )
            ).first()
            if found is None:
                return
            ownership.check(found.userIdentifier, "delete a step of", step_id)
            await connection.execute(feedbacks.delete().where(feedbacks.c.forId == step_id))
            await connection.execute(elements.delete().where(elements.c.forId == step_id))
            await connection.execute(steps.delete().where(steps.c.id == step_id))

    @surfaced
    async def get_favorite_steps(self, user_id: str) -> list[StepDict]:
        """The user's steps marked favorite, newest first."""
        actor = current_actor()
        async with self._engine.connect() as connection:
            if actor is not None and await ownership.find_user_id(connection, actor) != user_id:
                raise HistoryAccessError(f"user {actor!r} may not read another user's favorites")
            found = await connection.execute(
                sa.select(steps)
                .join(threads, threads.c.id == steps.c.threadId)
                .where(threads.c.userId == user_id, steps.c.metadata["favorite"].as_boolean() == sa.true())
                .order_by(steps.c.createdAt.desc())
            )
            return [rows.step_dict(row, None) for row in found.mappings()]

    # Elements

    @queued
    @surfaced
    @tracked
    async def create_element(self, element: Element) -> None:
        """Store the element's description (its url, name, display, props…) and, for an attachment
        `attachment_content` accepts, its bytes."""
        values = rows.element_values(element.to_dict())
        content = await self.attachment_content(element)
        async with self._writer.begin() as connection:
            await ownership.own_thread(connection, values["threadId"])
            statement = insert(connection, elements).values(**values)
            updated = await connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[elements.c.id],
                    set_={key: statement.excluded[key] for key in values if key not in ("id", "threadId")},
                    where=elements.c.threadId == statement.excluded.threadId,
                )
            )
            if updated.rowcount == 0:
                raise HistoryAccessError(f"element {values['id']!r} belongs to another thread")
            if content is not None:
                mime, data = content
                stored = insert(connection, attachments).values(id=values["id"], mime=mime, content=data)
                await connection.execute(stored.on_conflict_do_nothing(index_elements=[attachments.c.id]))

    async def attachment_content(self, element: Element) -> tuple[str, bytes] | None:
        """The MIME type and bytes to keep for this element; this layer keeps none (the app's does)."""
        return None

    @surfaced
    async def get_attachment(self, element_id: str) -> tuple[str, bytes] | None:
        """A stored attachment's MIME type and bytes, if its thread is the acting user's."""
        async with self._engine.connect() as connection:
            found = (
                await connection.execute(
                    sa.select(attachments.c.mime, attachments.c.content, threads.c.userIdentifier)
                    .join(elements, elements.c.id == attachments.c.id)
                    .join(threads, threads.c.id == elements.c.threadId)
                    .where(attachments.c.id == element_id)
                )
            ).first()
        if found is None or not ownership.may_access(found.userIdentifier, current_actor()):
            return None
        return found.mime, bytes(found.content)

    @surfaced
    async def get_element(self, thread_id: str, element_id: str) -> ElementDict | None:
        """The element if it belongs to this thread and the thread is the actor's."""
        async with self._engine.connect() as connection:
            found = (
                await connection.execute(
                    sa.select(elements, threads.c.userIdentifier.label("owner"))
                    .join(threads, threads.c.id == elements.c.threadId)
                    .where(elements.c.id == element_id, elements.c.threadId == thread_id)
                )
            ).first()
        if found is None or not ownership.may_access(found.owner, current_actor()):
            return None
        return rows.element_dict(found._mapping)

    @queued
    @surfaced
    @tracked
    async def delete_element(self, element_id: str, thread_id: str | None = None) -> None:
        """Delete the element (only from `thread_id` when given)."""
        async with self._writer.begin() as connection:
            query = (
                sa.select(threads.c.userIdentifier)
                .join(elements, elements.c.threadId == threads.c.id)
                .where(elements.c.id == element_id)
            )
            if thread_id is not None:
                query = query.where(elements.c.threadId == thread_id)
            found = (await connection.execute(query)).first()
            if found is None:
                return
            ownership.check(found.userIdentifier, "delete an element of", element_id)
            await connection.execute(elements.delete().where(elements.c.id == element_id))

    # Feedback

    @surfaced
    @tracked
    async def upsert_feedback(self, feedback: Feedback) -> str:
        """Store the actor's rating of a step of one of the actor's threads; returns the feedback id."""
        actor = ownership.required_actor("rate a message")
        async with self._writer.begin() as connection:
            feedback.id, feedback.threadId = await ratings.upsert(connection, feedback, actor)
        return feedback.id

    @surfaced
    @tracked
    async def delete_feedback(self, feedback_id: str) -> bool:
        """Delete the actor's feedback; False when there is no such feedback."""
        actor = ownership.required_actor("delete a rating")
        async with self._writer.begin() as connection:
            return await ratings.delete(connection, feedback_id, actor)
