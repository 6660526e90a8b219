"""Chainlit handlers: glue between the browser session and the agent."""

from __future__ import annotations

import json
import logging
from typing import Any, cast

import chainlit as cl
from mcp import ClientSession

from smart_agent.agent.loop import Agent
from smart_agent.agent.mcp import McpConnections, McpError, load_mcp_config, session_tools
from smart_agent.agent.tools import ToolRegistry, builtin_tools
from smart_agent.config import Settings, load_settings
from smart_agent.errors import ModelError
from smart_agent.llm.client import make_client, resolve_model
from smart_agent.streaming import BatchPolicy, SegmentedReply
from smart_agent.web import resync
from smart_agent.web.reply import ToolStep, deliver
from smart_agent.web.resync import Turn, start_turn

SETTINGS: Settings = load_settings()
if SETTINGS.debug:
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("smart_agent").setLevel(logging.DEBUG)


resync.install()


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

    def __init__(self, turn: Turn) -> None:
        self._turn = turn

    async def start(self, name: str, arguments: str) -> ToolStep:
        # A manual step does not pick up the on_message run as its parent (only `async with`
        # does); without it the step would float below the whole run, after the reply.
        run = cl.context.current_step
        step = cl.Step(name=name, type="tool", show_input="json", parent_id=run.id if run else None)
        step.input = _pretty(arguments)
        step.start = cl.utils.utc_now()
        self._turn.add(step)
        await step.send()
        return _Step(step)


@cl.on_chat_start
async def on_chat_start() -> None:
    """Give the session its own client, tools (built-in and MCP) and an empty history."""
    history: list[dict[str, Any]] = []
    if SETTINGS.system_prompt:
        history.append({"role": "system", "content": SETTINGS.system_prompt})
    cl.user_session.set("history", history)
    cl.user_session.set("client", make_client(SETTINGS))
    tools = builtin_tools(SETTINGS.tool_timeout)
    cl.user_session.set("tools", tools)
    connections = McpConnections()
    cl.user_session.set("mcp", connections)
    if SETTINGS.mcp_config:
        for server in load_mcp_config(SETTINGS.mcp_config):
            try:
                for tool in await connections.connect(server):
                    tools.add(tool)
            except McpError as exc:
                await cl.ErrorMessage(content=f"{exc}. The chat goes on without it.").send()


@cl.on_chat_end
async def on_chat_end() -> None:
    """Stop the session's MCP servers."""
    connections: McpConnections | None = cl.user_session.get("mcp")
    if connections is not None:
        await connections.aclose()


@cl.on_mcp_connect
async def on_mcp_connect(connection: Any, session: ClientSession) -> None:
    """A server added from the browser: offer its tools to the model."""
    tools: ToolRegistry = cl.user_session.get("tools")
    added = await session_tools(session)
    for tool in added:
        tools.add(tool)
    mcp_tools: dict[str, list[str]] = cl.user_session.get("mcp_tools") or {}
    mcp_tools[connection.name] = [tool.name for tool in added]
    cl.user_session.set("mcp_tools", mcp_tools)


@cl.on_mcp_disconnect
async def on_mcp_disconnect(name: str, session: ClientSession) -> None:
    """A server removed in the browser: withdraw its tools."""
    tools: ToolRegistry = cl.user_session.get("tools")
    mcp_tools: dict[str, list[str]] = cl.user_session.get("mcp_tools") or {}
    for tool_name in mcp_tools.pop(name, []):
        tools.remove(tool_name)


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
    replies: list[SegmentedReply] = []
    turn = start_turn()

    def new_reply() -> SegmentedReply:
        reply = SegmentedReply(
            lambda: cl.Message(content=""), policy, SETTINGS.segment_chars, on_segment=turn.add
        )
        replies.append(reply)
        return reply

    try:
        outcome = await deliver(agent.stream(history), new_reply, _Steps(turn))
        if replies and len(replies[0].segments) > 1:
            await _offer_copy(replies[0])
        if outcome.error is not None:
            error = cl.ErrorMessage(content=outcome.error)
            turn.add(error)
            await error.send()
    finally:
        turn.running = False


async def _offer_copy(reply: SegmentedReply) -> None:
    """A reply split into segments gets one button that copies all of its markdown."""
    last = cast(cl.Message, reply.segments[-1].wrapped)
    element = cl.CustomElement(name="CopyReply", props={"text": reply.content}, display="inline")
    await element.send(for_id=last.id)
