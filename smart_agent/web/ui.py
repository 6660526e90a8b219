"""Chainlit UI pieces for a turn: the settings panel, tool steps, the progress line, the turn."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, cast

import chainlit as cl
from chainlit.input_widget import NumberInput, Switch

from smart_agent import metrics
from smart_agent.agent.events import AgentEvent
from smart_agent.config import SESSION_SETTINGS, Settings
from smart_agent.history.conversation import TOOL_ARGUMENTS_KEY
from smart_agent.streaming import SegmentedReply
from smart_agent.streaming.batcher import policy_for
from smart_agent.streaming.clock import Clock
from smart_agent.streaming.progress import ReplyMeter, ReplyProgress
from smart_agent.web.reply import ReplyOutcome, ToolStep, deliver
from smart_agent.web.resync import Turn, start_turn

log = logging.getLogger("smart_agent.ui")


def settings_panel(settings: Settings) -> cl.ChatSettings:
    """The chat settings panel, initialised from `settings`."""
    labels = SESSION_SETTINGS
    return cl.ChatSettings(
        [
            Switch(id="stream_batching", label=labels["stream_batching"], initial=settings.stream_batching),
            NumberInput(id="batch_size", label=labels["batch_size"], initial=settings.batch_size),
            NumberInput(id="flush_interval", label=labels["flush_interval"], initial=settings.flush_interval),
            Switch(
                id="adaptive_batching", label=labels["adaptive_batching"], initial=settings.adaptive_batching
            ),
            NumberInput(id="segment_chars", label=labels["segment_chars"], initial=settings.segment_chars),
            Switch(
                id="team_stream_live", label=labels["team_stream_live"], initial=settings.team_stream_live
            ),
            NumberInput(
                id="team_concurrency", label=labels["team_concurrency"], initial=settings.team_concurrency
            ),
        ]
    )


WAITING = "Waiting for the model…"
STATS_AUTHOR = "stats"
NOTE_AUTHOR = "note"
TRIM_NOTE = "_Earlier messages were left out so the conversation fits the model's context._"


class TrimNote:
    """Says once per chat session, in a small note, that older messages were left out."""

    def __init__(self, turn: Turn) -> None:
        self._turn = turn

    async def show(self, dropped: int) -> None:
        """Show the note unless this session has already seen it."""
        if cl.user_session.get("trim_noted"):
            return
        cl.user_session.set("trim_noted", True)
        note = cl.Message(content=TRIM_NOTE, author=NOTE_AUTHOR)
        self._turn.add(note)
        await note.send()


class Footer:
    """Live progress while the reply streams, then a summary and a copy button under it.

    The live line is a small message of its own, updated in place: Chainlit re-renders only
    that message. (An element update re-renders every message of the chat — measured ~30 ms at
    5,000 tokens and ~170 ms at 20,000 in Chromium — so elements are used once, at the end.)
    """

    def __init__(self, replies: list[SegmentedReply], show_stats: bool, turn: Turn) -> None:
        self._replies = replies
        self._show_stats = show_stats
        self._turn = turn
        self._live: cl.Message | None = None
        self._props: dict[str, Any] = {}

    async def start(self) -> None:
        """Put the live line in place before anything else of the turn, so it sits above it."""
        if self._show_stats:
            await self._guarded(self._show_live(WAITING))

    async def _guarded(self, action: Awaitable[None]) -> None:
        try:
            await action
        except Exception as exc:  # the stats are decoration: they must never cost the reply
            log.warning("could not show the reply stats: %s", exc)

    async def progress(self, progress: ReplyProgress) -> None:
        """Show live progress, or the summary once the reply is over."""
        if not self._show_stats:
            return
        if progress.done or progress.stopped:
            self._props.update(text=progress.text(), done=True)
        else:
            await self._guarded(self._show_live(progress.text()))

    async def _show_live(self, text: str) -> None:
        if self._live is None:
            self._live = cl.Message(content=text, author=STATS_AUTHOR)
            self._turn.add(self._live)
            await self._live.send()
        else:
            self._live.content = text
            await self._live.update()

    async def finish(self) -> None:
        """Attach the summary (and, for a segmented reply, a copy-all button) to the reply."""
        if self._live is not None:
            self._turn.remove(self._live)
            await self._guarded(self._live.remove())
            self._live = None
        if len(self._replies[0].segments if self._replies else []) > 1:
            self._props["copyText"] = self._replies[0].content
        if not self._props or not self._replies or not self._replies[0].segments:
            return
        target = cast(cl.Message, self._replies[0].segments[-1].wrapped).id
        element = cl.CustomElement(name="ReplyFooter", props=self._props, display="inline")
        self._turn.add(element)
        await self._guarded(element.send(for_id=target))


SHOWN_ARGUMENT_CHARS = 10_000


def _pretty(arguments: str) -> str:
    """Arguments as indented JSON when they parse, else as sent; cut to a readable length."""
    if len(arguments) > SHOWN_ARGUMENT_CHARS:
        return arguments[:SHOWN_ARGUMENT_CHARS] + f"… ({len(arguments):,} characters)"
    try:
        return json.dumps(json.loads(arguments or "{}"), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # whatever a model sends, the step must show
        return arguments


class _Step:
    def __init__(self, step: cl.Step) -> None:
        self._step = step

    async def finish(self, output: str, is_error: bool) -> None:
        self._step.output = output
        self._step.is_error = is_error
        self._step.end = cl.utils.utc_now()
        await self._step.update()


class ToolSteps:
    """Each tool call becomes a Chainlit step of type tool."""

    def __init__(self, turn: Turn) -> None:
        self._turn = turn

    async def start(self, name: str, arguments: str) -> ToolStep:
        # A manual step does not pick up the on_message run as its parent (only `async with`
        # does); without it the step would float below the whole run, after the reply.
        run = cl.context.current_step
        step = cl.Step(name=name, type="tool", show_input="json", parent_id=run.id if run else None)
        step.input = _pretty(arguments)
        # The input shown is reformatted and cut; history rebuilds the model's call from these.
        step.metadata = {TOOL_ARGUMENTS_KEY: arguments}
        step.start = cl.utils.utc_now()
        self._turn.add(step)
        await step.send()
        return _Step(step)


async def present_turn(
    events: AsyncIterator[AgentEvent],
    settings: Settings,
    clock: Clock | None = None,
    *,
    model: str,
    turn: Turn | None = None,
) -> ReplyOutcome:
    """Show one agent turn: progress, tool steps, the reply in segments, an error, the footer.

    Every element is recorded in the session's turn, which a reconnecting page gets again; the
    UI events the batching sent are counted in the metrics under `model`.
    """
    turn = turn or start_turn()  # a team turn has begun already (web/team.py)
    replies: list[SegmentedReply] = []

    def new_reply() -> SegmentedReply:
        reply = SegmentedReply(
            lambda: cl.Message(content=""),
            policy_for(settings),
            settings.segment_chars,
            clock,
            on_segment=turn.add,
        )
        replies.append(reply)
        return reply

    footer = Footer(replies, settings.show_stats, turn)
    meter = ReplyMeter(clock)
    try:
        await footer.start()
        outcome = await deliver(
            events,
            new_reply,
            ToolSteps(turn),
            meter=meter,
            on_progress=footer.progress,
            on_trimmed=TrimNote(turn).show,
        )
        if settings.debug and replies:
            log.debug("reply %s", meter.snapshot(replies[0].stats.events_out, done=True).text())
        if outcome.error is not None:
            error = cl.ErrorMessage(content=outcome.error)
            turn.add(error)
            await error.send()
    finally:
        await footer.finish()  # on stop too: the summary says "Stopped"
        turn.running = False
        metrics.ui_events(model, sum(reply.stats.events_out for reply in replies))
    return outcome
