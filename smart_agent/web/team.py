"""The Team profile on the page: one "Team" step, a step per member streaming through the page-wide
pacer, a status line, then the synthesis as the normal reply."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import chainlit as cl
import openai

from smart_agent.agent.events import AgentEvent, ReasoningDelta, TextDelta, ToolCallFinished, ToolCallStarted
from smart_agent.agent.loop import Message
from smart_agent.agent.tools import ToolRegistry
from smart_agent.config import Settings
from smart_agent.history.conversation import TEAM_STEP_KEY
from smart_agent.streaming import Pacer, SmoothStreamWrapper
from smart_agent.streaming.batcher import policy_for
from smart_agent.streaming.clock import Clock
from smart_agent.team.definition import concurrency, team_for
from smart_agent.team.events import (
    MemberFailed,
    MemberFinished,
    MemberStarted,
    MemberStopped,
    MemberText,
    MemberThinking,
    MemberTool,
    TeamEvent,
    TeamStatus,
)
from smart_agent.team.hub import TeamHub
from smart_agent.web import pacing
from smart_agent.web.pacing import turn_pacer
from smart_agent.web.reply import ReplyOutcome
from smart_agent.web.resync import Turn, start_turn
from smart_agent.web.thinking import StepText, ThinkingSteps
from smart_agent.web.ui import _pretty as pretty_arguments
from smart_agent.web.ui import present_turn

log = logging.getLogger("smart_agent.team")

ASSISTANT_PROFILE = "Assistant"
TEAM_PROFILE = "Team"
TEAM_STEP = "Team"


def chat_profiles(settings: Settings) -> list[cl.ChatProfile]:
    """The two chat profiles; `settings.profile` says which one a new chat starts with."""
    return [
        cl.ChatProfile(
            name=ASSISTANT_PROFILE,
            markdown_description="One assistant answers, using the tools when it needs them.",
            default=settings.profile == "assistant",
        ),
        cl.ChatProfile(
            name=TEAM_PROFILE,
            markdown_description="Several agents work on your message at once, each visible live; "
            "then one answer is written from their notes.",
            default=settings.profile == "team",
        ),
    ]


def is_team_chat(settings: Settings) -> bool:
    """Whether this session's chat profile is Team (a client that names none gets the default)."""
    chosen = cl.user_session.get("chat_profile")
    return chosen == TEAM_PROFILE if chosen else settings.profile == "team"


def _step(name: str, parent: cl.Step | None, **kwargs: Any) -> cl.Step:
    # type "tool": the project's `cot = "tool_call"` shows only tool steps; `start` set, or the page
    # shows the step as "Used" and collapses it at once; the parent is sent before its children,
    # or the page drops them.
    step = cl.Step(name=name, type="tool", parent_id=parent.id if parent else None, **kwargs)
    step.metadata = {TEAM_STEP_KEY: True}
    step.start = cl.utils.utc_now()
    return step


class TeamView:
    """The team's steps on the page, fed by the hub's member events and status snapshots."""

    def __init__(self, turn: Turn, settings: Settings, clock: Clock | None = None) -> None:
        self._turn = turn
        self._settings = settings
        self._clock = clock
        self._render = pacing.control(settings, clock)
        self._pacer = turn_pacer(settings, self._render, clock)
        self._shared = settings.team_shared_budget
        self._team: cl.Step | None = None
        self._members: dict[str, tuple[cl.Step, SmoothStreamWrapper]] = {}
        self._open: set[str] = set()  # members still writing
        self._tools: dict[tuple[str, str], cl.Step] = {}
        self._live = settings.team_stream_live
        self._texts: dict[str, str] = {}  # each member's notes so far
        self._thoughts: dict[str, ThinkingSteps] = {}  # each member's thinking, in steps of its own
        self.collapsed = False

    @property
    def pacer(self) -> Pacer:
        """The page's budget for the turn: the members' streams share it, then the synthesis has it."""
        return self._pacer

    async def start(self) -> None:
        """Put the Team step on the page, under the turn's run."""
        # Open while it runs, folded by the page once it has an `end` (Chainlit 2.12 autoCollapse).
        self._team = _step(TEAM_STEP, cl.context.current_step, default_open=True, auto_collapse=True)
        self._team.output = "Starting…"
        self._turn.add(self._team)
        await self._team.send()

    async def handle(self, event: TeamEvent) -> None:
        """Show one member event or status snapshot."""
        if isinstance(event, MemberStarted):
            step = _step(event.member, self._team, default_open=True, auto_collapse=True)
            self._turn.add(step)
            await step.send()
            wrapper = SmoothStreamWrapper(
                StepText(step),
                policy_for(self._settings),
                self._clock,
                f"member {event.member}",
                self._pacer if self._shared else None,
            )
            self._members[event.member] = (step, wrapper)
            self._open.add(event.member)
        elif isinstance(event, MemberThinking):
            await self._thinking(event)
        elif isinstance(event, MemberText):
            if event.member in self._thoughts:
                await self._thoughts[event.member].answer()
            self._texts[event.member] = self._texts.get(event.member, "") + event.text
            if self._live:
                await self._members[event.member][1].stream_token(event.text)
        elif isinstance(event, MemberTool):
            await self._tool(event)
        elif isinstance(event, MemberFinished):
            await self._end_member(event.member, "")
        elif isinstance(event, MemberFailed):
            await self._end_member(event.member, f"\n\n**Failed:** {event.message}", error=True)
        elif isinstance(event, MemberStopped):
            await self._stop_member(event.member)
        elif isinstance(event, TeamStatus) and self._team is not None:
            self._team.output = event.text()
            await self._team.update()

    async def collapse(self) -> None:
        """The answer starts: end the members' steps and the Team step, so the page folds them."""
        self.collapsed = True
        now = cl.utils.utc_now()
        for step, _ in self._members.values():
            step.end = now
            await step.update()
        if self._team is not None:
            self._team.end = now
            await self._team.update()

    async def finish(self) -> None:
        """After the turn (stopped or not): no member step is left writing, and all are folded."""
        for name in list(self._open):
            await self._stop_member(name)
        if not self.collapsed:
            await self.collapse()
        pacing.end_turn(self._pacer, self._render)

    async def _thinking(self, event: MemberThinking) -> None:
        """A member's thinking goes into a step inside the member's own step."""
        step, wrapper = self._members[event.member]
        thoughts = self._thoughts.get(event.member)
        if thoughts is None:
            pacer = self._pacer if self._shared else None
            thoughts = ThinkingSteps(self._turn, self._settings, pacer, self._clock, parent=step)
            self._thoughts[event.member] = thoughts
        if not event.moved:
            await thoughts.add(event.text)
            return
        notes = self._texts.get(event.member, "")
        kept = notes[: max(0, len(notes) - event.moved)]
        self._texts[event.member] = kept
        if self._live:
            wrapper.set_content(kept)  # drops what it still buffers
            await step.update()
        await thoughts.moved(notes[len(kept) :])

    async def _tool(self, event: MemberTool) -> None:
        parent = self._members[event.member][0]
        call = event.event
        key = (event.member, call.call_id)
        if isinstance(call, ToolCallStarted):
            step = _step(call.name, parent, show_input="json")
            step.input = pretty_arguments(call.arguments)
            self._tools[key] = step
            self._turn.add(step)
            await step.send()
        elif isinstance(call, ToolCallFinished) and key in self._tools:
            step = self._tools.pop(key)
            step.output, step.is_error, step.end = call.result, call.is_error, cl.utils.utc_now()
            await step.update()

    async def _end_member(self, name: str, note: str, error: bool = False) -> None:
        self._open.discard(name)
        if name in self._thoughts:
            await self._thoughts[name].done()
        step, wrapper = self._members[name]
        await wrapper.close()  # the last text, then no more stream events for this step
        step.output = self._texts.get(name, "") + note
        step.is_error = error
        await step.update()

    async def _stop_member(self, name: str) -> None:
        self._open.discard(name)
        if name in self._thoughts:
            with contextlib.suppress(Exception):  # a step we cannot fold must not hide the others
                await self._thoughts[name].done()
        step, wrapper = self._members[name]
        wrapper.stop()
        step.output = self._texts.get(name, "") + "\n\n_Stopped._"
        for key in [k for k in self._tools if k[0] == name]:
            tool = self._tools.pop(key)
            tool.output, tool.is_error, tool.end = (
                "Stopped before the tool returned.",
                True,
                cl.utils.utc_now(),
            )
            with contextlib.suppress(Exception):  # a step we cannot close must not hide the others
                await tool.update()
        await step.update()


async def _answer(
    events: AsyncGenerator[TeamEvent, None], view: TeamView
) -> AsyncGenerator[AgentEvent, None]:
    """The synthesis's events for the reply; the members' events go to the view on the way."""
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(
                event,
                MemberStarted | MemberText | MemberThinking | MemberTool | MemberFinished | MemberFailed,
            ):
                await view.handle(event)
            elif isinstance(event, MemberStopped | TeamStatus):
                await view.handle(event)
            else:
                if isinstance(event, TextDelta | ReasoningDelta) and not view.collapsed:
                    await view.collapse()
                yield event


async def present_team_turn(
    events: AsyncGenerator[TeamEvent, None], settings: Settings, clock: Clock | None = None, *, model: str
) -> ReplyOutcome:
    """Show one team turn: the Team step with a step per member, then the answer like any reply."""
    turn = start_turn()
    view = TeamView(turn, settings, clock)
    try:
        await view.start()
        return await present_turn(
            _answer(events, view), settings, clock, model=model, turn=turn, pacer=view.pacer
        )
    finally:
        await view.finish()


async def team_turn(
    conversation: list[Message],
    client: openai.AsyncOpenAI,
    model: str,
    settings: Settings,
    tools: ToolRegistry,
) -> ReplyOutcome:
    """Run the configured team on the conversation and show it; only the answer joins the conversation."""
    team = team_for(settings)
    hub = TeamHub(team, client, model, settings, tools, concurrency=concurrency(settings, team))
    return await present_team_turn(hub.stream(conversation), settings, model=model)
