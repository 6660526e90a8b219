"""Chainlit handlers: glue between the browser session and the agent."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import chainlit as cl
from mcp import ClientSession

from smart_agent.agent.loop import Agent
from smart_agent.agent.mcp import McpConnections, McpError, load_mcp_config, session_tools
from smart_agent.agent.tools import ToolRegistry, builtin_tools
from smart_agent.config import ConfigError, Settings, apply_session_settings, load_settings
from smart_agent.errors import ModelError
from smart_agent.llm.client import make_client, resolve_model
from smart_agent.web import lag_probe, resync
from smart_agent.web.ui import present_turn, settings_panel

log = logging.getLogger("smart_agent.app")
SETTINGS: Settings = load_settings()
if SETTINGS.debug:
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("smart_agent").setLevel(logging.DEBUG)


resync.install()


@cl.on_chat_start
async def on_chat_start() -> None:
    """Give the session its own client, tools (built-in and MCP) and an empty history."""
    if SETTINGS.lag_probe:
        lag_probe.start(Path(SETTINGS.lag_probe))
    history: list[dict[str, Any]] = []
    if SETTINGS.system_prompt:
        history.append({"role": "system", "content": SETTINGS.system_prompt})
    cl.user_session.set("history", history)
    cl.user_session.set("settings", SETTINGS)
    await settings_panel(SETTINGS).send()
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


@cl.on_settings_update
async def on_settings_update(values: dict[str, Any]) -> None:
    """Validate the panel; good values apply to this session's next reply, bad ones are refused."""
    current: Settings = cl.user_session.get("settings")
    try:
        cl.user_session.set("settings", apply_session_settings(current, values))
        await cl.context.emitter.send_toast("Settings saved: they apply to your next reply.", "success")
    except ConfigError as exc:
        await cl.ErrorMessage(content=f"Setting refused. {exc}. The previous value stays.").send()
        await settings_panel(current).send()


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
    settings: Settings = cl.user_session.get("settings")
    if len(message.content) > settings.max_input_chars:
        await cl.ErrorMessage(
            content=f"Your message has {len(message.content):,} characters; the limit is "
            f"{settings.max_input_chars:,} (SMART_AGENT_MAX_INPUT_CHARS). It was not sent to the model."
        ).send()
        return
    history.append({"role": "user", "content": message.content})
    try:
        model = cl.user_session.get("model") or await resolve_model(client, SETTINGS)
    except ModelError as exc:
        await cl.ErrorMessage(content=str(exc)).send()
        return
    cl.user_session.set("model", model)
    agent = Agent(client, model, settings, cl.user_session.get("tools"))
    await present_turn(agent.stream(history), settings)
