"""Re-send the current turn to a browser that reconnects, so no text is lost while it was away.

Events Chainlit emits while a page's socket is down go to the dead socket and are never
re-sent; a reply that ends in that window stays truncated for good. Chainlit restores the
session on reconnect (same session id, new socket) and the page keeps its messages, so
re-sending each element of the turn (`new_message` replaces by id) makes the page whole again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import chainlit as cl
from chainlit.context import init_ws_context
from chainlit.server import sio
from chainlit.session import WebsocketSession

from smart_agent.streaming import SmoothStreamWrapper

log = logging.getLogger("smart_agent.resync")
TURN_KEY = "smart_agent_turn"


@dataclass
class Turn:
    """Every UI element of the latest turn, in the order it was created."""

    elements: list[Any] = field(default_factory=list)  # cl.Step, cl.Message, cl.Element or a segment
    removed: list[Any] = field(default_factory=list)  # messages taken off the page
    running: bool = True

    def add(self, element: Any) -> None:
        """Record an element (a segment is recorded when it opens)."""
        self.elements.append(element)

    def remove(self, element: Any) -> None:
        """Record that an element was taken off the page."""
        if element in self.elements:
            self.elements.remove(element)
        self.removed.append(element)


def start_turn() -> Turn:
    """Begin recording a new turn for this session."""
    turn = Turn()
    cl.user_session.set(TURN_KEY, turn)
    return turn


async def resend_turn(session: WebsocketSession) -> None:
    """Re-send the session's latest turn to its (new) socket."""
    context = init_ws_context(session)
    turn: Turn | None = cl.user_session.get(TURN_KEY)
    if turn is None:
        return
    emitter = context.emitter
    for gone in list(turn.removed):
        await emitter.delete_step(gone.to_dict())
    for element in list(turn.elements):
        if isinstance(element, SmoothStreamWrapper):
            message = element.wrapped
            if not element.finished and getattr(message, "streaming", False):
                # still streaming: restart it with everything emitted so far; later tokens append
                await element.replay(lambda m: emitter.stream_start(m.to_dict()))  # type: ignore[attr-defined]
            else:
                await element.replay(lambda m: emitter.send_step(m.to_dict()))  # type: ignore[attr-defined]
        elif isinstance(element, cl.Element):
            await emitter.send_element(element.to_dict())
        else:
            await emitter.send_step(element.to_dict())
    if turn.running:
        await emitter.task_start()  # the reconnect handshake told the page the task had ended
    log.debug("re-sent %d elements after a reconnect", len(turn.elements))


def install() -> None:
    """Run `resend_turn` after Chainlit's own reconnect handshake."""
    handlers = sio.handlers.setdefault("/", {})
    original = handlers.get("connection_successful")
    if original is None or getattr(original, "_smart_agent", False):
        return

    async def connection_successful(sid: str) -> None:
        await original(sid)
        session = WebsocketSession.get(sid)
        if session is not None and session.restored:
            await resend_turn(session)

    connection_successful._smart_agent = True  # type: ignore[attr-defined]
    handlers["connection_successful"] = connection_successful
