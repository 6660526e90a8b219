"""Chainlit UI pieces for a turn: the settings panel, tool steps, notes, the turn (footer: footer.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import chainlit as cl
from chainlit.input_widget import NumberInput, Select, Switch, Tab, TextInput

from smart_agent import metrics
from smart_agent.agent.events import AgentEvent
from smart_agent.config import REASONING_EFFORTS, Settings
from smart_agent.history.conversation import TOOL_ARGUMENTS_KEY
from smart_agent.streaming import SegmentedReply
from smart_agent.streaming.batcher import policy_for
from smart_agent.streaming.clock import Clock
from smart_agent.streaming.pacer import Pacer
from smart_agent.streaming.progress import ReplyMeter
from smart_agent.streaming.render_control import RenderControl
from smart_agent.web import pacing, shutdown
from smart_agent.web.chat_settings import SESSION_SETTINGS, SMOOTHNESS, smoothness
from smart_agent.web.footer import STATS_AUTHOR as STATS_AUTHOR
from smart_agent.web.footer import Footer
from smart_agent.web.progress_bar import ReplyBar
from smart_agent.web.reply import ReplyOutcome, ServerUsage, ToolStep, TurnViews, deliver
from smart_agent.web.resync import Turn, start_turn
from smart_agent.web.thinking import ThinkingSteps

log = logging.getLogger("smart_agent.ui")


PACING_LABEL = "Render pacing (this page)"
MODELS_KEY = "models"
"""The session's list of the server's models (llm/models.py), for the picker."""
MODEL_KEY = "model"
"""The session's model: picked in the panel, else resolved at the first message; kept with the thread."""
EFFORT_DEFAULT = "server default"
"""The reasoning effort choice that sends none."""


def settings_panel(settings: Settings, render: RenderControl | None = None) -> cl.ChatSettings:
    """The chat settings panel, initialised from `settings`: what a user tunes first, the streaming
    internals (and whether the page is paced down) under Advanced."""
    labels = SESSION_SETTINGS
    if not settings.render_pacing:
        state = "Off: every page gets the fixed cap (--no-render-pacing)"
    elif render is None:
        state = f"Full speed: up to {settings.max_events_per_second:g} updates/s (no render reports yet)"
    else:
        state = render.describe()
    chat: list[Any] = []
    models: list[str] = cl.user_session.get(MODELS_KEY) or []
    if models:  # the server's list; a server without /v1/models gets no picker
        current = cl.user_session.get(MODEL_KEY) or settings.model or models[0]
        chat.append(
            Select(
                id="model",
                label="Model",
                values=models if current in models else [current, *models],
                initial_value=current,
                description="For this chat's next replies.",
            )
        )
    chat += [
        Switch(id="show_thinking", label=labels["show_thinking"], initial=settings.show_thinking),
        Select(
            id="reasoning_effort",
            label=labels["reasoning_effort"],
            values=[EFFORT_DEFAULT, *REASONING_EFFORTS],
            initial_value=settings.reasoning_effort or EFFORT_DEFAULT,
            description="Sent to reasoning models that accept it (OpenAI, gpt-oss, vLLM).",
        ),
        Select(
            id="smoothness",
            label="Smoothness",
            items={label: choice for choice, (label, _) in SMOOTHNESS.items()},
            initial_value=smoothness(settings),
            description="How the reply's words reach the page.",
        ),
        Switch(id="team_stream_live", label=labels["team_stream_live"], initial=settings.team_stream_live),
        NumberInput(
            id="team_concurrency", label=labels["team_concurrency"], initial=settings.team_concurrency
        ),
        TextInput(id="attachments", label="Attachments", initial=attachment_limits(settings), disabled=True),
    ]
    advanced = [
        TextInput(id="render_pacing", label=PACING_LABEL, initial=state, disabled=True),
        Switch(id="stream_batching", label=labels["stream_batching"], initial=settings.stream_batching),
        NumberInput(id="batch_size", label=labels["batch_size"], initial=settings.batch_size),
        NumberInput(id="flush_interval", label=labels["flush_interval"], initial=settings.flush_interval),
        Switch(id="adaptive_batching", label=labels["adaptive_batching"], initial=settings.adaptive_batching),
        NumberInput(id="segment_chars", label=labels["segment_chars"], initial=settings.segment_chars),
    ]
    return cl.ChatSettings(
        [Tab(id="chat", label="Chat", inputs=chat), Tab(id="advanced", label="Advanced", inputs=advanced)]
    )


def attachment_limits(settings: Settings) -> str:
    """What a user may attach, in one line (the paperclip's limits)."""
    return (
        f"Up to {settings.attachment_max_files} files of {settings.attachment_max_mb} MB each: "
        + ", ".join(settings.attachment_types)
    )


NOTE_AUTHOR = "note"
TRIM_NOTE = "_Earlier messages were left out so the conversation fits the model's context._"


async def show_note(turn: Turn, text: str) -> None:
    """A small italic note in the turn (page decoration: never part of the model's conversation)."""
    note = cl.Message(content=f"_{text}_", author=NOTE_AUTHOR)
    turn.add(note)
    await note.send()


class TrimNote:
    """Says once per chat session, in a small note, that older messages were left out."""

    def __init__(self, turn: Turn) -> None:
        self._turn = turn

    async def show(self, dropped: int) -> None:
        """Show the note unless this session has already seen it."""
        if cl.user_session.get("trim_noted"):
            return
        cl.user_session.set("trim_noted", True)
        await show_note(self._turn, TRIM_NOTE.strip("_"))


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
    pacer: Pacer | None = None,
) -> ReplyOutcome:
    """Show one agent turn: progress, tool steps, the reply in segments, an error, the footer.

    Every element is recorded in the session's turn, which a reconnecting page gets again; the
    UI events the batching sent are counted in the metrics under `model`. With render-aware pacing
    every stream event and live-line update of the turn shares one budget (`pacer`, a team turn's,
    or one of its own) that the page's render reports set.
    """
    turn = turn or start_turn()  # a team turn has begun already (web/team.py)
    replies: list[SegmentedReply] = []
    render = pacing.control(settings, clock)
    own_pacer = pacer is None and render is not None
    if own_pacer:
        pacer = pacing.turn_pacer(settings, render, clock)

    def new_reply() -> SegmentedReply:
        reply = SegmentedReply(
            lambda: cl.Message(content=""),
            policy_for(settings),
            render.segment_chars if render is not None else settings.segment_chars,
            clock,
            on_segment=turn.add,
            pacer=pacer,
            on_removed=turn.remove,
        )
        replies.append(reply)
        return reply

    counted = pacer if render is not None and render.reporting else None
    usage = ServerUsage()
    bar = ReplyBar(model)
    footer = Footer(replies, settings.show_stats, turn, counted, render, clock, usage, bar)
    meter = ReplyMeter(clock)

    async def notice(text: str) -> None:
        await show_note(turn, text)

    views = TurnViews(
        steps=ToolSteps(turn),
        thinking=ThinkingSteps(turn, settings, pacer, clock),
        on_trimmed=TrimNote(turn).show,
        on_notice=notice,
        usage=usage,
    )
    try:
        await footer.start()
        try:
            outcome = await deliver(events, new_reply, views, meter=meter, on_progress=footer.progress)
        except asyncio.CancelledError:
            if shutdown.shutting_down():  # not the stop button: say why the reply ends here
                with contextlib.suppress(Exception):
                    await show_note(turn, shutdown.STOPPED_NOTE)
            raise
        if outcome.error is None and meter.tokens:
            bar.ended(meter.snapshot(0, done=True))
        if settings.debug and replies:
            log.debug("reply %s", meter.snapshot(replies[0].stats.events_out, done=True).details())
        if outcome.error is not None:
            error = cl.ErrorMessage(content=outcome.error)
            turn.add(error)
            await error.send()
    finally:
        await footer.finish()  # on stop too: the summary says "Stopped"
        turn.running = False
        if own_pacer and pacer is not None:
            pacing.end_turn(pacer, render)
        metrics.ui_events(model, sum(reply.stats.events_out for reply in replies))
        if render is not None:
            await _after_paced_turn(settings, render)
    return outcome


_SHOWN_PACING = "render_pacing_shown"


async def _after_paced_turn(settings: Settings, render: RenderControl) -> None:
    """Log the turn's pacing decisions; show the page's pace in the panel when it changed."""
    if settings.debug:
        log.debug("reply pacing %s", render.decisions.take())
    shown = render.describe()
    if cl.user_session.get(_SHOWN_PACING) != shown:
        cl.user_session.set(_SHOWN_PACING, shown)
        try:
            await settings_panel(settings, render).send()
        except Exception as exc:  # the panel is decoration: it must never cost the turn
            log.warning("could not update the settings panel: %s", exc)
