"""A page reloaded mid-reply shows the thread and follows the reply live to its end, from the run log.

A reload is a new Chainlit session resuming the stored thread, while the old session's task goes on
producing (and storing) the turn. If the thread's last turn is a run still in the log, its partial
rows are left out of what the page is sent, and the run is replayed from its first event to its
terminal one by the page presenter, shown but not stored (the old session stores the real rows).

Chainlit 2.12's `connection_successful` socket handler (socket.py) emits `resume_thread` after
`on_chat_resume` returns, and the page replaces its messages with that thread, so the replay may
start only once the handshake is over: web/chainlit_patches.py calls `start_pending` then. It runs
as the session's current task, so the stop button cancels it, and the cancel reaches the turn
through the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import chainlit as cl
from chainlit.context import init_ws_context
from chainlit.data import get_data_layer
from chainlit.session import WebsocketSession
from chainlit.step import StepDict
from chainlit.types import ThreadDict

from smart_agent.agent.events import AgentEvent, ReplyFailed, TextDelta, ToolCallFinished, ToolCallStarted
from smart_agent.config import Settings
from smart_agent.errors import HistoryError
from smart_agent.history.conversation import TOOL_ARGUMENTS_KEY, model_messages
from smart_agent.runs.chat import chat_run_id, live_run, replay
from smart_agent.runs.events import PRODUCER_LOST
from smart_agent.runs.log import RunLog, RunLogError
from smart_agent.web import chainlit_patches, resync
from smart_agent.web.history import LiveConversation, shown_only
from smart_agent.web.ui import present_turn

log = logging.getLogger("smart_agent.follow")
FOLLOW_KEY = "smart_agent_follow"
FOLLOW_GRACE_SECONDS = 10.0
"""A run that ended this recently is followed too while its stored rows lack part of its reply."""
UNFOLLOWABLE = "The reply could not be followed live; reopen the chat later to see all of it."
STOP_SECONDS = 10.0
"""How long a stopped turn may take to end in the log before the model's history makes do without."""
NOT_RETURNED = "Error: stopped before the tool returned"  # what the agent loop keeps (agent/loop.py)


@dataclass
class Follow:
    """A turn a resumed session follows: its run, the thread's steps before it, its events so far."""

    runs: RunLog
    run_id: str
    kept: list[StepDict]
    system_prompt: str | None
    events: list[AgentEvent] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


async def live_turn(thread: ThreadDict, runs: RunLog, owner: str, system_prompt: str | None) -> Follow | None:
    """If the thread's last turn is a live run of `owner`'s, take its partial rows out of `thread`
    (in place: Chainlit sends the page this dict) and return what to follow."""
    steps = thread["steps"]
    users = [index for index, step in enumerate(steps) if step["type"] == "user_message"]
    if not users:
        return None
    last = users[-1]
    record = await live_run(runs, chat_run_id(steps[last]["id"]), owner)
    if record is None:
        return None
    if record.ended is not None and (
        time.time() - record.ended > FOLLOW_GRACE_SECONDS or _stored_reply(steps[last:]) == record.text
    ):
        return None  # a normal reopen: the stored rows are the whole turn (shown as one reply)
    partial = {step["id"] for step in steps[last + 1 :]}
    thread["steps"] = steps[: last + 1]
    thread["elements"] = [e for e in thread.get("elements") or [] if e.get("forId") not in partial]
    # Copies: join_segments, called next, merges the page's segments into their first step in place.
    return Follow(runs, record.id, [step.copy() for step in thread["steps"]], system_prompt)


def _stored_reply(turn: list[StepDict]) -> str:
    """The reply text a turn's stored rows hold, as the model would get it."""
    messages = model_messages(ThreadDict(steps=turn))  # type: ignore[typeddict-item]  # only steps is read
    return "".join(message.get("content") or "" for message in messages if message["role"] == "assistant")


def pend(follow: Follow) -> None:
    """Follow the turn once this session's resume handshake is over."""
    cl.user_session.set(FOLLOW_KEY, follow)


async def followed() -> None:
    """Wait until the turn this session follows (if any) has ended, so the next one sees all of it."""
    follow = cl.user_session.get(FOLLOW_KEY)
    if isinstance(follow, Follow) and follow.task is not None and not follow.task.done():
        await asyncio.wait({follow.task})


def turn_steps(events: list[AgentEvent]) -> list[StepDict]:
    """The rows a turn's events leave, enough for `model_messages` to rebuild the model's side."""
    steps: list[dict[str, Any]] = []
    calls: dict[str, dict[str, Any]] = {}
    text: list[str] = []

    def flush() -> None:
        if text:
            steps.append({"id": f"text{len(steps)}", "type": "assistant_message", "output": "".join(text)})
            text.clear()

    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ToolCallStarted):
            flush()
            call: dict[str, Any] = {"id": event.call_id, "type": "tool", "name": event.name}
            call.update(output=NOT_RETURNED, metadata={TOOL_ARGUMENTS_KEY: event.arguments})
            calls[event.call_id] = call
            steps.append(call)
        elif isinstance(event, ToolCallFinished) and event.call_id in calls:
            calls[event.call_id]["output"] = event.result
        elif isinstance(event, ReplyFailed):
            flush()
            steps.append({"id": f"error{len(steps)}", "type": "assistant_message", "isError": True})
    flush()
    return steps  # type: ignore[return-value]  # the fields model_messages reads


async def _recorded(
    events: AsyncGenerator[AgentEvent, None], into: list[AgentEvent]
) -> AsyncGenerator[AgentEvent, None]:
    async with aclosing(events):  # a stop ends the log reader at once
        async for event in events:
            into.append(event)
            yield event


async def _follow(session: WebsocketSession, follow: Follow) -> None:
    context = init_ws_context(session)
    settings: Settings = cl.user_session.get("settings")
    model = cl.user_session.get("model") or settings.model or "unknown"
    events = _recorded(replay(follow.runs, follow.run_id), follow.events)
    await context.emitter.task_start()
    try:
        with shown_only():
            try:
                # The replay's own meter would count the log's batches as tokens: no stats line.
                shown = settings.model_copy(update={"show_stats": False})
                await present_turn(events, shown, model=model)
            except RunLogError as exc:  # the log lost the run; the stored thread still gets all of it
                log.warning("stopped following run %s: %s", follow.run_id, exc)
                await cl.ErrorMessage(content=UNFOLLOWABLE).send()
        if _producer_died(follow.events):
            await _store_shown(session)
    except asyncio.CancelledError:
        await _stop(follow)
        raise
    finally:
        conversation: LiveConversation = cl.user_session.get("history")
        thread: Any = {"steps": [*follow.kept, *turn_steps(follow.events)]}
        conversation.messages[:] = model_messages(thread, follow.system_prompt)
        await context.emitter.task_end()


def _producer_died(events: list[AgentEvent]) -> bool:
    return bool(events) and isinstance(events[-1], ReplyFailed) and events[-1].code == PRODUCER_LOST


async def _store_shown(session: WebsocketSession) -> None:
    """The instance running the turn died before storing all of it: store what this page was shown."""
    layer = get_data_layer()
    if layer is None:
        return
    steps, elements = resync.shown_steps(session)
    try:
        # What the dead instance had stored of the turn is a prefix of what was shown: replace it.
        thread = await layer.get_thread(session.thread_id)
        stored = thread["steps"] if thread else []
        users = [index for index, step in enumerate(stored) if step["type"] == "user_message"]
        for step in stored[users[-1] + 1 :] if users else []:
            await layer.delete_step(step["id"])
        for step in steps:
            await layer.create_step(step)
        for element in elements:
            await layer.create_element(element)
    except HistoryError:  # logged by the data layer; the page keeps showing the reply
        log.warning("the followed reply of session %s could not be stored", session.id)


async def _stop(follow: Follow) -> None:
    """Stop the turn wherever it runs; the model's history gets what it had produced by then."""
    try:
        await follow.runs.request_cancel(follow.run_id)
        # The page stopped where it was; the stored thread has the turn up to the cancel: so has the
        # model, as on a later reopen.
        async with asyncio.timeout(STOP_SECONDS):
            follow.events = [event async for event in replay(follow.runs, follow.run_id)]
    except (RunLogError, TimeoutError) as exc:
        log.warning("could not stop run %s: %s", follow.run_id, exc)


def start_pending(session: WebsocketSession) -> None:
    """Start following the turn `on_chat_resume` found for this session, as its current task."""
    follow = chainlit_patches.session_values(session.id).get(FOLLOW_KEY)
    if isinstance(follow, Follow) and follow.task is None:
        follow.task = asyncio.get_running_loop().create_task(_follow(session, follow), name="follow")
        session.current_task = follow.task
