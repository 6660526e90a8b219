"""A run's log events as AG-UI events (ag_ui.core's own types), with the SSE id each one gets."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Final

from ag_ui.core import (
    BaseEvent,
    CustomEvent,
    ReasoningEndEvent,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    ReasoningStartEvent,
    RunErrorEvent,
    RunFinishedCancelledOutcome,
    RunFinishedEvent,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.encoder import EventEncoder

from smart_agent.runs.events import (
    CANCELLED,
    DONE,
    ERROR,
    REASONING,
    TERMINAL,
    TOKEN,
    TOOL_CALL,
    TOOL_RESULT,
    RunEvent,
)
from smart_agent.runs.log import InvalidEventIdError, RunLog
from smart_agent.runs.reading import read_through

START_ID: Final = "start"
"""The SSE id of RUN_STARTED, the one event no log event stands behind."""
METADATA_KEY: Final = "smart-agent"
"""Where RUN_STARTED's metadata names our run (for the runs API's cancel route)."""
_ENCODER = EventEncoder()
_CLOSING: Final = frozenset({TOOL_CALL, TOOL_RESULT, DONE, ERROR})
"""The log events that end the open text or reasoning message."""


@dataclass(frozen=True)
class Position:
    """A resume point: after the `index`-th AG-UI event made from log event `log_id` (None: after
    RUN_STARTED)."""

    log_id: str | None
    index: int = 0

    @classmethod
    def parse(cls, value: str) -> Position:
        """`start` or `<log event id>:<n>`; InvalidEventIdError otherwise."""
        if value.strip() == START_ID:
            return cls(None)
        log_id, colon, index = value.strip().rpartition(":")
        if not (colon and log_id and index.isascii() and index.isdigit()):
            raise InvalidEventIdError(f"{value!r} is not an event id of this stream")
        return cls(log_id, int(index))


class Presenter:
    """Turns one run's log events into AG-UI events, remembering which message is open."""

    def __init__(self, thread_id: str, run_id: str) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self._text: str | None = None  # the open text message's id
        self._thinking: str | None = None  # the open reasoning message's id

    def started(self, our_run_id: str) -> RunStartedEvent:
        """RUN_STARTED, naming our run in its metadata."""
        return RunStartedEvent(
            thread_id=self.thread_id,
            run_id=self.run_id,
            metadata={METADATA_KEY: {"runId": our_run_id}},
        )

    def present(self, event: RunEvent) -> list[BaseEvent]:
        """The AG-UI events that stand for one log event (none for some)."""
        kind, data = event.kind, event.data
        # A message id from the id of the log event that opened it: the same on every instance.
        opened = f"{self.run_id}:{event.id}"
        if kind == TOKEN:
            out = self._close_thinking()
            if self._text is None:
                self._text = opened
                out.append(TextMessageStartEvent(message_id=opened, role="assistant"))
            out.append(TextMessageContentEvent(message_id=self._text, delta=data["text"]))
            return out
        if kind == REASONING:
            out = self._close_text()
            if self._thinking is None:
                self._thinking = opened
                out += [
                    ReasoningStartEvent(message_id=opened),
                    ReasoningMessageStartEvent(message_id=opened, role="reasoning"),
                ]
            out.append(ReasoningMessageContentEvent(message_id=self._thinking, delta=data["text"]))
            return out
        if kind not in _CLOSING:
            # progress, notice, reasoning_moved, snapshot: AG-UI has no event of its own for them,
            # and they leave the open message open.
            return [CustomEvent(name=f"{METADATA_KEY}.{kind}", value=data)]
        out = self._close_text() + self._close_thinking()
        if kind == TOOL_CALL:
            call = data["call_id"]
            out.append(ToolCallStartEvent(tool_call_id=call, tool_call_name=data["name"]))
            if data["arguments"]:
                out.append(ToolCallArgsEvent(tool_call_id=call, delta=data["arguments"]))
            out.append(ToolCallEndEvent(tool_call_id=call))
        elif kind == TOOL_RESULT:
            out.append(
                ToolCallResultEvent(
                    message_id=opened, tool_call_id=data["call_id"], content=data["result"], role="tool"
                )
            )
        elif kind == DONE:
            out.append(self._finished(RunFinishedSuccessOutcome(), data))
        elif kind == ERROR and data.get("code") == CANCELLED:
            out.append(self._finished(RunFinishedCancelledOutcome(), data))
        else:
            out.append(RunErrorEvent(message=data.get("message", ""), code=data.get("code")))
        return out

    def _finished(self, outcome: Any, data: dict[str, Any]) -> RunFinishedEvent:
        return RunFinishedEvent(thread_id=self.thread_id, run_id=self.run_id, outcome=outcome, result=data)

    def _close_text(self) -> list[BaseEvent]:
        if self._text is None:
            return []
        message, self._text = self._text, None
        return [TextMessageEndEvent(message_id=message)]

    def _close_thinking(self) -> list[BaseEvent]:
        if self._thinking is None:
            return []
        message, self._thinking = self._thinking, None
        return [ReasoningMessageEndEvent(message_id=message), ReasoningEndEvent(message_id=message)]


def encode(event: BaseEvent, event_id: str) -> bytes:
    """One SSE event: our `id:` line, then what ag_ui's encoder writes (`data: …` and a blank line)."""
    return f"id: {event_id}\n{_ENCODER.encode(event)}".encode()


async def stream(
    runs: RunLog, our_run_id: str, presenter: Presenter, after: Position | None
) -> AsyncGenerator[bytes, None]:
    """The run as encoded AG-UI events, strictly after `after` (from RUN_STARTED when None).

    A resumed stream reads the run from its start and shows only what follows `after`: which
    message is open there is known from the log alone, so any instance can resume it.
    """
    if after is None:
        yield encode(presenter.started(our_run_id), START_ID)
    skip_to = after.log_id if after is not None else None  # None: nothing (more) to skip
    skip_index = after.index if after is not None else 0
    async with aclosing(read_through(runs, our_run_id)) as events:
        async for event in events:
            for index, shown in enumerate(presenter.present(event)):
                if skip_to is None or (event.id == skip_to and index > skip_index):
                    yield encode(shown, f"{event.id}:{index}")
            if event.id == skip_to:
                skip_to = None
            if event.kind in TERMINAL:
                return
