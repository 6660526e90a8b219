"""When a chat session really ends — not on every socket drop.

Chainlit 2.12.0 calls `on_chat_end` on every socket disconnect (chainlit/socket.py `disconnect`),
including a transient network blip after which the client reconnects and Chainlit restores the
same session (`restore_existing_session` gives it the new socket id). Chainlit deletes the session
only when the user cleared it (`to_clear`), or `project.session_timeout` seconds after the
disconnect if no reconnect came — there is no hook for that, so this module mirrors the rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from chainlit.config import config
from chainlit.context import context
from chainlit.session import WebsocketSession

Release = Callable[[], Awaitable[None]]
_pending: set[asyncio.Task[None]] = set()


class _Session(Protocol):
    socket_id: str


async def release_when_session_ends(release: Release) -> None:
    """Call from on_chat_end: run `release` now if the session is gone for good, else when it expires."""
    session = context.session
    if not isinstance(session, WebsocketSession) or session.to_clear:
        await release()
        return
    task = asyncio.create_task(
        release_unless_restored(session, session.socket_id, release, config.project.session_timeout)
    )
    _pending.add(task)  # keep a reference until it ran
    task.add_done_callback(_pending.discard)


async def release_unless_restored(session: _Session, socket_id: str, release: Release, after: float) -> None:
    """After `after` s, run `release` unless the session was restored on another socket meanwhile."""
    await asyncio.sleep(after)  # Chainlit deletes the unrestored session at this same moment
    if session.socket_id == socket_id:
        await release()
