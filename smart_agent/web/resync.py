"""Re-send the current turn to a page that reconnects, so the page ends with exactly the reply.

Chainlit 2.12 re-sends nothing itself, and has no hook for it: web/chainlit_patches.py calls
`session_restored` and `resend_turn` from its socket handlers and routes the turn's emits through
the turn's gate (`start_turn`). When a page comes back, Chainlit restores its session (same
session id, new socket) and points the session's emit at the new socket. Whatever the turn
emitted meanwhile went to the old socket and is lost for good — and the server may learn of a
drop only much later, so events written to a half-dead socket are lost too, before any
reconnect. The page keeps its messages and treats `new_message` for an id it has as a
replacement, so a snapshot of the turn makes it whole again.

The snapshot must neither miss nor repeat what the turn emits while it goes out. The turn's
task emits through a gated emitter (`chainlit_patches.gate_task_emits`), whose events pass the
turn's gate: from the moment a reconnect restores the session until the snapshot is taken they
are dropped (the snapshot holds their effect, and they must not reach the page before it: an
element the page missed would then land after a later one); while the snapshot goes out they
wait; then they follow it in order. A state change and its event happen in one step of the
event loop (Chainlit changes a message, then awaits its emit at once, and python-socketio
encodes and queues the event before it first pauses), so everything before the snapshot's
instant is in it and everything after reaches the page after it.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, cast

import chainlit as cl
from chainlit.context import get_context
from chainlit.element import Element
from chainlit.session import WebsocketSession
from chainlit.step import Step, StepDict, check_add_step_in_cot, stub_step

from smart_agent.streaming import SmoothStreamWrapper
from smart_agent.web import chainlit_patches
from smart_agent.web.chainlit_patches import Emit

log = logging.getLogger("smart_agent.resync")
TURN_KEY = "smart_agent_turn"

_SHOWING = frozenset({"new_message", "stream_start", "element"})
"""The events with which a message, step or element first appears on the page."""


class _Gate(enum.Enum):
    OPEN = "open"  # the turn's events go out as they happen
    DROP = "drop"  # a reconnect is pending: the coming snapshot will hold their effect
    HOLD = "hold"  # the snapshot is going out: they follow it


@dataclass
class Turn:
    """Every UI element of the latest turn, in order, and the gate its events pass."""

    run: Step | None = None  # Chainlit's on_message step: the page drops a message whose parent it lacks
    elements: list[Any] = field(default_factory=list)  # cl.Step, cl.Message, Element or a segment
    removed: list[Any] = field(default_factory=list)  # messages taken off the page
    running: bool = True
    _gate: _Gate = field(default=_Gate.OPEN, init=False, repr=False)
    _held: list[tuple[str, Any]] = field(default_factory=list, init=False, repr=False)
    _epoch: int = field(default=0, init=False, repr=False)  # reconnects: an overtaken re-send stops
    # The order in which the turn's messages and steps first went to the page: a segment is recorded
    # when it opens but shows at its first words, which may wait for the page's next slot while a
    # tool step goes out (hypothesis found it: tests/test_resync_properties.py).
    _shown: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def add(self, element: Any) -> None:
        """Record an element (a segment is recorded when it opens)."""
        self.elements.append(element)

    def remove(self, element: Any) -> None:
        """Record that an element was taken off the page."""
        if element in self.elements:
            self.elements.remove(element)
        self.removed.append(element)

    async def emit(self, send: Emit, event: str, data: Any) -> Any:
        """Send one of the turn's own events with `send`, unless the gate is closed."""
        if event in _SHOWING and isinstance(data, dict) and "id" in data:
            self._shown.setdefault(str(data["id"]), len(self._shown))
        if self._gate is _Gate.OPEN:
            return await send(event, data)
        if self._gate is _Gate.HOLD:
            self._held.append((event, data))
        return None

    def reconnected(self) -> None:
        """The page is back on a new socket: the turn's events wait for the snapshot."""
        self._epoch += 1
        self._gate = _Gate.DROP
        self._held = []

    def snapshot(self) -> list[tuple[str, Any]]:
        """The events that rebuild the turn on a page that may have missed any of it."""
        events: list[tuple[str, Any]] = [("delete_message", gone.to_dict()) for gone in self.removed]
        if self.run is not None:
            events.append(("new_message", _step_dict(self.run)))
        for element in sorted(self.elements, key=self._shown_at):
            if isinstance(element, SmoothStreamWrapper):
                message = element.wrapped
                if message.content:  # an empty segment has not been shown yet
                    events.append(("new_message", message.to_dict()))  # type: ignore[attr-defined]
            elif isinstance(element, Element):
                if element.persisted:  # sent, or being sent in this very step
                    events.append(("element", element.to_dict()))
            elif isinstance(element, Step):
                events.append(("new_message", _step_dict(element)))
            else:
                events.append(("new_message", element.to_dict()))
        if self.running:
            events.append(("task_start", {}))  # the reconnect handshake told the page it had ended
        return events

    def _shown_at(self, element: Any) -> float:
        """When the element first went to the page (never yet: last, in recorded order: sort is stable)."""
        target = element.wrapped if isinstance(element, SmoothStreamWrapper) else element
        return self._shown.get(str(getattr(target, "id", "")), math.inf)

    async def resend(self, send: Emit) -> None:
        """Send the snapshot with `send`; the turn's events emitted meanwhile follow it."""
        epoch = self._epoch
        events = self.snapshot()
        self._gate, self._held = _Gate.HOLD, []
        for event, data in events:
            if self._epoch != epoch:  # another reconnect: its own re-send takes over
                return
            await send(event, data)
        while self._held and self._epoch == epoch:
            event, data = self._held.pop(0)
            await send(event, data)
        if self._epoch == epoch:
            self._gate = _Gate.OPEN
        log.debug("re-sent %d events after a reconnect", len(events))


def _step_dict(step: Step) -> Any:
    # what Step.send emits (a stub when the chain of thought is hidden)
    return step.to_dict() if check_add_step_in_cot(step) else stub_step(step)


def start_turn() -> Turn:
    """Begin recording a new turn for this session; route the task's events through its gate."""
    turn = Turn(run=get_context().current_step)
    cl.user_session.set(TURN_KEY, turn)
    # tasks started by the turn (the batcher's timers) share this context, so its emitter
    chainlit_patches.gate_task_emits(turn.emit)
    return turn


def _turn_of(session: WebsocketSession) -> Turn | None:
    turn = chainlit_patches.session_values(session.id).get(TURN_KEY)
    return turn if isinstance(turn, Turn) else None


def shown_steps(session: WebsocketSession) -> tuple[list[StepDict], list[Element]]:
    """The steps and elements the session's latest turn has on the page, in order (to store them)."""
    turn = _turn_of(session)
    steps: list[StepDict] = []
    elements: list[Element] = []
    for element in turn.elements if turn is not None else []:
        if isinstance(element, SmoothStreamWrapper):
            if element.wrapped.content:
                steps.append(element.wrapped.to_dict())  # type: ignore[attr-defined]
        elif isinstance(element, Element):
            elements.append(element)
        else:
            steps.append(element.to_dict())
    return steps, elements


def session_restored(session: WebsocketSession) -> None:
    """Chainlit restored `session` on a new socket: close the gate of its latest turn."""
    turn = _turn_of(session)
    if turn is not None:
        turn.reconnected()


async def resend_turn(session: WebsocketSession) -> None:
    """Re-send the session's latest turn to its current socket."""
    turn = _turn_of(session)
    if turn is not None:
        await turn.resend(lambda event, data: cast(Awaitable[Any], session.emit(event, data)))
