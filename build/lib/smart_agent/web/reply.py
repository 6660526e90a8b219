"""Present one agent turn: text into the batched reply, tool calls as steps, errors kept apart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from smart_agent.agent.events import (
    AgentEvent,
    HistoryTrimmed,
    ReplyFailed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from smart_agent.streaming.batcher import BatchStats
from smart_agent.streaming.progress import ReplyMeter, ReplyProgress


class ToolStep(Protocol):
    """A tool call shown in the UI."""

    async def finish(self, output: str, is_error: bool) -> None:
        """Show the call's result (or error) and mark it done."""
        ...


class ToolSteps(Protocol):
    """Creates the UI element for a tool call."""

    async def start(self, name: str, arguments: str) -> ToolStep:
        """Show that a tool call started, with its arguments."""
        ...


class Reply(Protocol):
    """Where the reply's text streams: SmoothStreamWrapper or SegmentedReply."""

    @property
    def content(self) -> str:
        """The text so far."""
        ...

    @property
    def stats(self) -> BatchStats:
        """UI events and bytes sent so far."""
        ...

    async def stream_token(self, token: str) -> None:
        """Add text."""
        ...

    def stop(self) -> None:
        """Emit nothing more until finish()."""
        ...

    async def finish(self) -> None:
        """Flush and finalise."""
        ...


@dataclass(frozen=True)
class ReplyOutcome:
    """What a reply ended with."""

    text: str
    error: str | None = None


ProgressSink = Callable[[ReplyProgress], Awaitable[None]]


async def deliver(
    events: AsyncIterator[AgentEvent],
    new_reply: Callable[[], Reply],
    steps: ToolSteps | None = None,
    meter: ReplyMeter | None = None,
    on_progress: ProgressSink | None = None,
    on_trimmed: Callable[[int], Awaitable[None]] | None = None,
) -> ReplyOutcome:
    """Consume an agent turn; finalise the reply on success, failure and stop alike.

    The reply message is created when its first text arrives, so it follows the tool steps
    that came before it. With a meter, `on_progress` gets a few snapshots a second and a summary;
    `on_trimmed` hears when older messages were left out of a request.
    """
    error: str | None = None
    open_steps: dict[str, ToolStep] = {}
    reply: Reply | None = None

    async def report(**state: bool) -> None:
        if meter is not None and on_progress is not None and reply is not None:
            await on_progress(meter.snapshot(reply.stats.events_out, **state))

    try:
        async for event in events:
            if isinstance(event, TextDelta):
                if reply is None:
                    reply = new_reply()
                await reply.stream_token(event.text)
                if meter is not None and meter.on_token():
                    await report()
            elif isinstance(event, ToolCallStarted) and steps is not None:
                open_steps[event.call_id] = await steps.start(event.name, event.arguments)
            elif isinstance(event, ToolCallFinished) and event.call_id in open_steps:
                await open_steps.pop(event.call_id).finish(event.result, event.is_error)
            elif isinstance(event, HistoryTrimmed) and on_trimmed is not None:
                await on_trimmed(event.dropped)
            elif isinstance(event, ReplyFailed):
                error = event.message
    except asyncio.CancelledError:
        # The stop button cancels this task: emit nothing more, then finalise what was produced.
        if reply is not None:
            reply.stop()
        await _finalise(reply, open_steps)
        await report(stopped=True)
        raise
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    await _finalise(reply, open_steps)
    await report(done=True)
    return ReplyOutcome(text=reply.content if reply is not None else "", error=error)


async def _finalise(reply: Reply | None, open_steps: dict[str, ToolStep]) -> None:
    for step in open_steps.values():
        with contextlib.suppress(Exception):  # a step we cannot close must not hide the reply
            await step.finish("Stopped before the tool returned.", True)
    open_steps.clear()
    if reply is not None:
        await reply.finish()
