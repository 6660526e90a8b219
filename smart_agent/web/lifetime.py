"""Release a chat session's resources when the session really ends — not on every socket drop.

Chainlit 2.12.0 calls `on_chat_end` on every socket disconnect (chainlit/socket.py `disconnect`),
including a network blip after which the client reconnects and Chainlit restores the same session
(`restore_existing_session` gives it the new socket id). The session itself ends in
`WebsocketSession.delete()`: at once when the user starts a new chat (`clear_session`), or
`project.session_timeout` seconds after a disconnect that no reconnect followed. Chainlit has no
hook there, so web/chainlit_patches.py wraps that one method (where Chainlit closes its own MCP
sessions) to call `session_ended`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("smart_agent.lifetime")
Release = Callable[[], Awaitable[None]]
_releases: dict[str, list[Release]] = {}  # session id -> what to release when it is deleted


def on_session_end(session_id: str, release: Release) -> None:
    """Run `release` when the session `session_id` is deleted (not when its socket drops)."""
    _releases.setdefault(session_id, []).append(release)


async def session_ended(session_id: str) -> None:
    """Run every release registered for the session, each even if another fails."""
    for release in _releases.pop(session_id, []):
        try:
            await release()
        except Exception:  # one failing release must not keep the others from running
            log.exception("releasing a resource of session %s failed", session_id)
