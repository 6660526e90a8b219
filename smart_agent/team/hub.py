"""The hub: runs every member at once (within the concurrency limit), then the synthesis, as one stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Protocol

import openai

from smart_agent.agent.events import (
    AgentEvent,
    ReasoningDelta,
    ReasoningMoved,
    ReplyFailed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from smart_agent.agent.loop import Agent, Message
from smart_agent.agent.tools import ToolRegistry
from smart_agent.config import Settings
from smart_agent.llm.context import context_size, prompt_budget
from smart_agent.streaming.clock import Clock, MonotonicClock
from smart_agent.team.events import (
    MemberFailed,
    MemberFinished,
    MemberStarted,
    MemberStatus,
    MemberStopped,
    MemberText,
    MemberThinking,
    MemberTool,
    TeamEvent,
    TeamStatus,
)
from smart_agent.team.members import Member, TeamDefinition
from smart_agent.team.synthesis import synthesis_messages

log = logging.getLogger("smart_agent.team")

MEMBER_FAILED = "it failed unexpectedly (the app's log says why)"
"""A member's failure as its step and the synthesiser see it when it raised instead of answering."""
SYNTHESIS_FAILED = (
    "The team's answer could not be written: the synthesis failed unexpectedly. Send your message "
    "again to retry."
)
"""The turn's end when the synthesis raised instead of answering."""

STATUS_INTERVAL = 0.5
"""Seconds between two status snapshots at least: the status line changes at most twice a second."""


class _End:
    """Put on the queue when the synthesis is over."""


class _Stop:
    """Put on the queue by `TeamHub.stop()`."""


@dataclass
class _Member:
    member: Member
    state: str = "waiting"
    tokens: int = 0
    text: str = ""
    error: str | None = None


class Streams(Protocol):
    """What the hub needs of an agent: one turn on `messages` as typed events (Agent fits)."""

    def stream(self, messages: list[Message]) -> AsyncGenerator[AgentEvent, None]:
        """Answer the conversation in `messages`, appending to it."""
        ...


AgentFactory = Callable[[str | None, ToolRegistry], Streams]
"""Builds the agent for a model (None: the chat's) with these tools; swappable in tests."""


class TeamHub:
    """One team turn: members work on the conversation at once, a synthesiser answers from their notes.

    `stream()` yields the members' events as they happen (merged into one stream), status snapshots
    at most every STATUS_INTERVAL seconds, then the synthesis's agent events. Only the synthesis's
    answer is appended to the conversation.
    """

    def __init__(
        self,
        team: TeamDefinition,
        client: openai.AsyncOpenAI,
        model: str,
        settings: Settings,
        tools: ToolRegistry,
        *,
        concurrency: int,
        clock: Clock | None = None,
        status_interval: float = STATUS_INTERVAL,
        agent_for: AgentFactory | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.team = team
        self._client = client
        self._model = model
        self._settings = settings
        self._tools = tools
        self._concurrency = concurrency
        self._clock = clock or MonotonicClock()
        self._interval = status_interval
        self._members = {m.name: _Member(m) for m in team.members}
        self._queue: asyncio.Queue[TeamEvent | _End | _Stop] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._dirty = True
        self._last_status: float | None = None
        self._agent_for = agent_for or self._agent

    def status(self) -> TeamStatus:
        """Every member's state now."""
        return TeamStatus(
            tuple(MemberStatus(m.member.name, m.state, m.tokens) for m in self._members.values())
        )

    def stop(self) -> None:
        """Stop every member and the synthesis at once; the stream then says who was stopped and ends."""
        if self._stopping:
            return
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        self._queue.put_nowait(_Stop())

    async def stream(self, conversation: list[Message]) -> AsyncGenerator[TeamEvent, None]:
        """Run the team on `conversation` (ending with the user's message); append the answer to it."""
        semaphore = asyncio.Semaphore(self._concurrency)
        loop = asyncio.get_running_loop()
        members = [
            loop.create_task(self._run_member(m, conversation, semaphore)) for m in self._members.values()
        ]
        self._tasks = [*members, loop.create_task(self._tick())]
        terminal = 0
        try:
            yield self._snapshot()
            while True:
                event = await self._queue.get()
                if isinstance(event, _Stop) or self._stopping:
                    break
                if isinstance(event, _End):
                    if self._dirty:  # the last snapshot, still no sooner than the interval allows
                        await self._clock.sleep(max(0.0, self._next_status() - self._clock.now()))
                        yield self._snapshot()
                    return
                yield event
                if not isinstance(event, MemberFinished | MemberFailed):
                    continue
                terminal += 1
                if terminal == len(members):  # every member's notes are complete: synthesise
                    self._tasks.append(loop.create_task(self._run_synthesis(conversation)))
            for state in self._members.values():
                if state.state in {"waiting", "writing"}:
                    state.state = "stopped"
                    yield MemberStopped(state.member.name, state.text)
            yield self._snapshot()
        finally:
            self._stopping = True
            for task in self._tasks:
                task.cancel()
            # Wait for them: their HTTP streams are closed when this returns.
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run_member(
        self, state: _Member, conversation: list[Message], semaphore: asyncio.Semaphore
    ) -> None:
        member = state.member
        try:
            async with semaphore:
                self._change(state, "writing")
                self._queue.put_nowait(MemberStarted(member.name))
                messages: list[Message] = [{"role": "system", "content": member.prompt}]
                messages += [dict(m) for m in conversation if m.get("role") != "system"]
                agent = self._agent_for(member.model, self._tools)
                async with aclosing(agent.stream(messages)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            state.text += event.text
                            state.tokens += 1
                            self._dirty = True
                            self._queue.put_nowait(MemberText(member.name, event.text))
                        elif isinstance(event, ReasoningDelta):
                            self._queue.put_nowait(MemberThinking(member.name, event.text))
                        elif isinstance(event, ReasoningMoved):  # its notes so far were thinking
                            state.text = state.text[: max(0, len(state.text) - event.chars)]
                            self._queue.put_nowait(MemberThinking(member.name, moved=event.chars))
                        elif isinstance(event, ToolCallStarted | ToolCallFinished):
                            self._queue.put_nowait(MemberTool(member.name, event))
                        elif isinstance(event, ReplyFailed):
                            state.error = event.message
        except asyncio.CancelledError:
            self._change(state, "stopped")
            raise
        except Exception:  # whatever breaks one member must not stop the others
            log.exception("team member %s failed", member.name)  # the detail, for whoever runs the app
            state.error = MEMBER_FAILED
        if state.error is not None:
            self._change(state, "failed")
            self._queue.put_nowait(MemberFailed(member.name, state.error, state.text))
        else:
            self._change(state, "done")
            self._queue.put_nowait(MemberFinished(member.name, state.text))

    async def _run_synthesis(self, conversation: list[Message]) -> None:
        notes = [(s.member.name, s.text, s.error) for s in self._members.values()]
        # The notes take at most half the prompt's room; the conversation has the rest.
        budget = prompt_budget(context_size(self._settings)) // 2
        messages = synthesis_messages(self.team.synthesiser_prompt, conversation, notes, budget)
        prefix = len(messages)
        agent = self._agent_for(self.team.synthesiser_model, ToolRegistry())
        try:
            async with aclosing(agent.stream(messages)) as events:
                async for event in events:
                    self._queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception:  # an unexpected failure still ends the turn with a readable message
            log.exception("the team's synthesis failed")  # the detail, for whoever runs the app
            self._queue.put_nowait(ReplyFailed(SYNTHESIS_FAILED))
        finally:
            # Only the answer enters the conversation; a failure that dropped the user's message
            # (it may be the cause, see Agent.stream) drops it here too.
            if len(messages) < prefix and conversation and conversation[-1].get("role") == "user":
                conversation.pop()
            conversation.extend(messages[prefix:])
            self._queue.put_nowait(_End())

    def _agent(self, model: str | None, tools: ToolRegistry) -> Agent:
        return Agent(self._client, model or self._model, self._settings, tools)

    async def _tick(self) -> None:
        while True:
            await self._clock.sleep(max(0.0, self._next_status() - self._clock.now()))
            if self._dirty:
                self._queue.put_nowait(self._snapshot())
            else:
                await self._clock.sleep(self._interval)

    def _next_status(self) -> float:
        return (self._last_status if self._last_status is not None else self._clock.now()) + self._interval

    def _snapshot(self) -> TeamStatus:
        self._dirty = False
        self._last_status = self._clock.now()
        return self.status()

    def _change(self, state: _Member, new: str) -> None:
        state.state = new
        self._dirty = True
