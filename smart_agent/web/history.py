"""Chat history in the app: the data layer, the acting user over HTTP, the local user on loopback.

How Chainlit 2.12 calls into this module (docs/architecture.md; its patched internals are all in
web/chainlit_patches.py):
- `@cl.data_layer` is called lazily by `chainlit.data.get_data_layer()` from the server's event loop;
  Chainlit's lifespan closes the layer at shutdown (server.py `lifespan`).
- `CHAINLIT_AUTH_SECRET` is read at every `create_jwt`/`decode_jwt` (auth/jwt.py) and checked once by
  `ensure_jwt_secret()` right after app.py is loaded (cli/__init__.py `run_chainlit`), so `prepare()`
  in the launcher sets it in time.
- Socket handlers run inside Chainlit's context, where `actor.current_actor` finds the session's user;
  HTTP routes do not, so `login.LoginMiddleware` sets the acting user from the JWT cookie or header.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.data import get_data_layer
from chainlit.element import Element
from chainlit.step import StepDict
from sqlalchemy.ext.asyncio import AsyncEngine

from smart_agent.attachments.files import AttachmentError, Limits, read_attachment
from smart_agent.config import Settings
from smart_agent.history.accounts import Accounts
from smart_agent.history.data_layer import HistoryDataLayer
from smart_agent.history.engine import create_engine
from smart_agent.history.migrate import open_migrated
from smart_agent.history.secret import jwt_secret
from smart_agent.history.urls import history_path
from smart_agent.oauth import oauth_providers
from smart_agent.web import login
from smart_agent.web.ui import STATS_AUTHOR

Message = dict[str, Any]


class LiveConversation:
    """The messages the model sees, kept in the user session where Chainlit cannot copy them.

    On every disconnect Chainlit 2.12 copies the whole user session into the thread's metadata
    (socket.py `disconnect` → session.py `to_persistable` → `clean_metadata`, redacted whole beyond
    1 MiB); an object JSON cannot encode is written as null there, and the data layer drops nulls.
    """

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages


_shown_only: ContextVar[bool] = ContextVar("smart_agent_shown_only", default=False)


@contextmanager
def shown_only() -> Iterator[None]:
    """What the page is shown in this context (and the tasks it starts) is not stored.

    For a turn replayed to a reloaded page: the session that started the turn stores it.
    """
    token = _shown_only.set(True)
    try:
        yield
    finally:
        _shown_only.reset(token)


class AppDataLayer(HistoryDataLayer):
    """The history data layer minus the live stats line and replayed turns, which are page only, and
    plus the bytes of the files users attach (judged again here: this write races the handler's)."""

    def __init__(self, engine: AsyncEngine, limits: Limits | None = None) -> None:
        super().__init__(engine)
        self.limits = limits

    # Chainlit persists in fire-and-forget tasks (message.py `_create`/`update`/`remove`), so the
    # stats line's delete could run before its last update, which then stored it again: measured
    # in tests/test_history_app.py. Not writing it at all also saves a write per progress tick.
    # Those tasks copy the context of the code that sent the message, so `shown_only` reaches them.
    async def create_step(self, step_dict: StepDict) -> None:
        """Store the step unless it is the stats line or replayed."""
        if step_dict.get("name") != STATS_AUTHOR and not _shown_only.get():
            await super().create_step(step_dict)

    async def update_step(self, step_dict: StepDict) -> None:
        """Store the step's fields unless it is the stats line or replayed."""
        if step_dict.get("name") != STATS_AUTHOR and not _shown_only.get():
            await super().update_step(step_dict)

    async def delete_step(self, step_id: str) -> None:
        """Delete the step unless the delete comes from a replay (which stored nothing)."""
        if not _shown_only.get():
            await super().delete_step(step_id)

    async def create_element(self, element: Element) -> None:
        """Store the element unless it is replayed."""
        if not _shown_only.get():
            await super().create_element(element)

    async def attachment_content(self, element: Element) -> tuple[str, bytes] | None:
        """A user's uploaded file (its session path, set by Chainlit) that passes the limits: the
        bytes the model got (an image decoded and re-encoded), never the file as sent."""
        if self.limits is None or not element.path or element.url:
            return None
        try:
            attachment = await asyncio.to_thread(
                read_attachment, element.name, Path(element.path), self.limits
            )
        except (AttachmentError, OSError):
            return None  # refused: the handler says why, and forgets the message
        return attachment.mime, attachment.data


async def forget_refused(message_id: str) -> None:
    """A message the app refused is not kept: nor is its turn's step, nor a thread it alone started
    (the session's next message then starts and names the thread anew).

    Nothing more of this turn is stored either: Chainlit updates the turn's step after the handler
    returns (callbacks.py `on_message`), which would store the thread again, unnamed. The flag is set
    in the turn's own task, which ends with the turn.
    """
    layer = get_data_layer()  # type: ignore[no-untyped-call]
    session = cl.context.session
    if isinstance(layer, HistoryDataLayer) and session.thread_id:
        await _forget(layer, message_id)
    _shown_only.set(True)  # after the deletes, which the flag would skip


async def _forget(layer: HistoryDataLayer, message_id: str) -> None:
    """Delete the message, its turn's step, and the thread when no other message of the user is in it."""
    session = cl.context.session
    await layer.settle()  # Chainlit stores the message in a task of its own: it lands first
    thread = await layer.get_thread(session.thread_id)
    stored = thread["steps"] if thread is not None else []
    for step in stored:
        if step["id"] == message_id or step.get("parentId") == message_id:
            await layer.delete_step(step["id"])
    if thread is not None and not any(
        step["type"] == "user_message" and step["id"] != message_id for step in stored
    ):
        await layer.delete_thread(session.thread_id)
        session.has_first_interaction = False


def database(settings: Settings, data_dir: Path) -> str | Path:
    """The history database: the configured URL, else history.db in the data folder."""
    return settings.database_url or history_path(data_dir)


def prepare(settings: Settings, data_dir: Path) -> dict[str, str]:
    """Migrate the history database before Chainlit starts; return the environment Chainlit needs.

    Raises HistoryError naming the database (password hidden) when it cannot be opened.
    """
    asyncio.run(_migrate(database(settings, data_dir)))
    return {"CHAINLIT_AUTH_SECRET": settings.auth_secret or jwt_secret(data_dir)}


def login_configured(settings: Settings, data_dir: Path) -> bool:
    """Whether someone can sign in without the local user: an account exists, or OAuth is set up."""
    return bool(oauth_providers()) or asyncio.run(_accounts_exist(database(settings, data_dir)))


async def _accounts_exist(where: str | Path) -> bool:
    accounts = Accounts(create_engine(where))
    try:
        return await accounts.exists_any()
    finally:
        await accounts.close()


async def _migrate(where: str | Path) -> None:
    engine = await open_migrated(where, "the history database")
    await engine.dispose()


def install(settings: Settings, data_dir: Path, *, loopback: bool) -> None:
    """Register the data layer and login (web/login.py); the local user is offered on a loopback host."""
    where = database(settings, data_dir)

    @cl.data_layer
    def data_layer() -> HistoryDataLayer:
        return AppDataLayer(create_engine(where), Limits.from_settings(settings))

    login.install(local_user=loopback)
