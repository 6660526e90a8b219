"""Present one agent turn: thinking into its steps, text into the batched reply, tool calls as steps,
errors kept apart."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from smart_agent.agent.events import (
    AgentEvent,
    HistoryTrimmed,
    Notice,
    ReasoningDelta,
    ReasoningMoved,
    ReplyFailed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    UsageReported,
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


class Thinking(Protocol):
    """Where the model's thinking is shown, apart from the answer."""

    async def add(self, text: str) -> None:
        """More thinking."""
        ...

    async def moved(self, text: str) -> None:
        """Text taken off the answer because it was thinking."""
        ...

    async def answer(self) -> None:
        """Answer text arrives: the thinking before it ended."""
        ...

    async def done(self) -> None:
        """The thinking ended otherwise (a tool call starts, or the turn ends)."""
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

    async def retract(self, chars: int) -> str:
        """Take the last `chars` characters off the reply and return them."""
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


@dataclass
class ServerUsage:
    """The server's own token counts over a turn's model requests."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    reported: bool = False

    def add(self, usage: UsageReported) -> None:
        """Count one request's usage."""
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.reasoning_tokens += usage.reasoning_tokens
        self.reported = True


ProgressSink = Callable[[ReplyProgress], Awaitable[None]]


@dataclass
class TurnViews:
    """The optional parts of the page a turn feeds besides its reply."""

    steps: ToolSteps | None = None
    thinking: Thinking | None = None
    on_trimmed: Callable[[int], Awaitable[None]] | None = None
    on_notice: Callable[[str], Awaitable[None]] | None = None
    usage: ServerUsage | None = None


async def deliver(
    events: AsyncIterator[AgentEvent],
    new_reply: Callable[[], Reply],
    views: TurnViews | None = None,
    meter: ReplyMeter | None = None,
    on_progress: ProgressSink | None = None,
) -> ReplyOutcome:
    """Consume an agent turn; finalise the reply on success, failure and stop alike.

    The reply message is created when its first text arrives, so it follows the thinking and tool
    steps that came before it; the thinking folds when the answer or a tool call starts. With a
    meter, `on_progress` gets a few snapshots a second (thinking counts) and a summary.
    """
    views = views or TurnViews()
    error: str | None = None
    open_steps: dict[str, ToolStep] = {}
    reply: Reply | None = None
    thinking = views.thinking

    async def report(**state: bool) -> None:
        if meter is not None and on_progress is not None and (reply is not None or meter.tokens):
            await on_progress(meter.snapshot(reply.stats.events_out if reply else 0, **state))

    try:
        async for event in events:
            if isinstance(event, TextDelta):
                if thinking is not None:
                    await thinking.answer()
                if reply is None:
                    reply = new_reply()
                await reply.stream_token(event.text)
                if meter is not None and meter.on_token():
                    await report()
            elif isinstance(event, ReasoningDelta):
                if thinking is not None:
                    await thinking.add(event.text)
                if meter is not None and meter.on_token():
                    await report()
            elif isinstance(event, ReasoningMoved):
                moved = await reply.retract(event.chars) if reply is not None else ""
                if thinking is not None:
                    await thinking.moved(moved)
            elif isinstance(event, ToolCallStarted) and views.steps is not None:
                if thinking is not None:
                    await thinking.done()
                open_steps[event.call_id] = await views.steps.start(event.name, event.arguments)
            elif isinstance(event, ToolCallFinished) and event.call_id in open_steps:
                await open_steps.pop(event.call_id).finish(event.result, event.is_error)
            elif isinstance(event, HistoryTrimmed) and views.on_trimmed is not None:
                await views.on_trimmed(event.dropped)
            elif isinstance(event, Notice) and views.on_notice is not None:
                await views.on_notice(event.message)
            elif isinstance(event, UsageReported) and views.usage is not None:
                views.usage.add(event)
            elif isinstance(event, ReplyFailed):
                error = event.message
    except asyncio.CancelledError:
        # The stop button cancels this task: emit nothing more, then finalise what was produced.
        if reply is not None:
            reply.stop()
        await _finalise(reply, open_steps, thinking)
        await report(stopped=True)
        raise
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    await _finalise(reply, open_steps, thinking)
    await report(done=True)
    return ReplyOutcome(text=reply.content if reply is not None else "", error=error)


async def _finalise(reply: Reply | None, open_steps: dict[str, ToolStep], thinking: Thinking | None) -> None:
    if thinking is not None:
        with contextlib.suppress(Exception):  # a step we cannot fold must not hide the reply
            await thinking.done()
    for step in open_steps.values():
        with contextlib.suppress(Exception):  # a step we cannot close must not hide the reply
            await step.finish("Stopped before the tool returned.", True)
    open_steps.clear()
    if reply is not None:
        await reply.finish()
