"""Chainlit handlers: glue between the browser session and the agent."""

from __future__ import annotations

import json
import logging
from typing import Any

import chainlit as cl

from smart_agent.agent.loop import Agent
from smart_agent.agent.tools import builtin_tools
from smart_agent.config import Settings, load_settings
from smart_agent.errors import ModelError
from smart_agent.llm.client import make_client, resolve_model
from smart_agent.streaming import BatchPolicy, SmoothStreamWrapper
from smart_agent.web.reply import ToolStep, deliver

SETTINGS: Settings = load_settings()
if SETTINGS.debug:
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("smart_agent").setLevel(logging.DEBUG)


def _policy(settings: Settings) -> BatchPolicy:
    return BatchPolicy(
        enabled=settings.stream_batching,
        batch_size=settings.batch_size,
        flush_interval=settings.flush_interval,
        max_events_per_second=settings.max_events_per_second,
    )


def _pretty(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments or "{}"), indent=2, ensure_ascii=False)
    except ValueError:
        return arguments


class _Step:
    def __init__(self, step: cl.Step) -> None:
        self._step = step

    async def finish(self, output: str, is_error: bool) -> None:
        self._step.output = output
        self._step.is_error = is_error
        self._step.end = cl.utils.utc_now()
        await self._step.update()


class _Steps:
    """Each tool call becomes a Chainlit step of type tool."""

    async def start(self, name: str, arguments: str) -> ToolStep:
        # A manual step does not pick up the on_message run as its parent (only `async with`
        # does); without it the step would float below the whole run, after the reply.
        run = cl.context.current_step
        step = cl.Step(name=name, type="tool", show_input="json", parent_id=run.id if run else None)
        step.input = _pretty(arguments)
        step.start = cl.utils.utc_now()
        await step.send()
        return _Step(step)


@cl.on_chat_start
async def on_chat_start() -> None:
    """Give the session its own client, tools and an empty history."""
    history: list[dict[str, Any]] = []
    if SETTINGS.system_prompt:
        history.append({"role": "system", "content": SETTINGS.system_prompt})
    cl.user_session.set("history", history)
    cl.user_session.set("client", make_client(SETTINGS))
    cl.user_session.set("tools", builtin_tools(SETTINGS.tool_timeout))


@cl.on_message
async def on_message(message: cl.Message) -> None:
    """Answer the user's message; text streams through the batching wrapper."""
    history: list[dict[str, Any]] = cl.user_session.get("history")
    client = cl.user_session.get("client")
    history.append({"role": "user", "content": message.content})
    try:
        model = cl.user_session.get("model") or await resolve_model(client, SETTINGS)
    except ModelError as exc:
        await cl.ErrorMessage(content=str(exc)).send()
        return
    cl.user_session.set("model", model)
    agent = Agent(client, model, SETTINGS, cl.user_session.get("tools"))
    policy = _policy(SETTINGS)
    outcome = await deliver(
        agent.stream(history), lambda: SmoothStreamWrapper(cl.Message(content=""), policy), _Steps()
    )
    if outcome.error is not None:
        await cl.ErrorMessage(content=outcome.error).send()
