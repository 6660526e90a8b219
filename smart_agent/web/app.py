"""Chainlit handlers: glue between the browser session and the agent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import chainlit as cl
from chainlit.server import app as _chainlit_app
from chainlit.types import ThreadDict
from mcp import ClientSession

from smart_agent.agent.events import AgentEvent
from smart_agent.agent.loop import Agent
from smart_agent.agent.mcp import McpConnections, McpError, load_mcp_config, session_tools
from smart_agent.agent.tools import Tool, ToolRegistry, builtin_tools
from smart_agent.agent.workers import shared_workers
from smart_agent.attachments.content import room_for_files, user_content
from smart_agent.attachments.files import Attachment, Limits
from smart_agent.config import ConfigError, Settings
from smart_agent.errors import ModelError
from smart_agent.history.conversation import MODEL_TEXT_KEY, model_messages
from smart_agent.history.reopen import join_segments
from smart_agent.llm.client import make_client
from smart_agent.llm.context import input_limit, input_refusal
from smart_agent.llm.models import available_models, resolve_model, unlisted
from smart_agent.metrics import metered
from smart_agent.runs.chat import ChatRuns, chat_owner, chat_run_id
from smart_agent.streaming.batcher import policy_for
from smart_agent.web import (
    attachments,
    chainlit_patches,
    follow,
    heap,
    history,
    lag_probe,
    lifetime,
    pacing,
)
from smart_agent.web.chat_settings import apply_session_settings
from smart_agent.web.handoff import handed_settings
from smart_agent.web.history import LiveConversation, forget_refused, shown_only
from smart_agent.web.hooks import app_hooks
from smart_agent.web.origins import is_loopback
from smart_agent.web.team import chat_profiles, is_team_chat, team_turn
from smart_agent.web.ui import (
    EFFORT_DEFAULT,
    MODEL_KEY,
    MODELS_KEY,
    NOTE_AUTHOR,
    present_turn,
    settings_panel,
)

log = logging.getLogger("smart_agent.app")
SETTINGS: Settings = handed_settings()  # the launcher's, parsed once (web/handoff.py)
if SETTINGS.debug:
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("smart_agent").setLevel(logging.DEBUG)


# Chainlit 2.12 has no hook for these: the one place its internals are changed (checked there).
chainlit_patches.install(app_hooks())
ATTACHMENT_LIMITS = Limits.from_settings(SETTINGS)
attachments.configure(ATTACHMENT_LIMITS)
attachments.harden_session_files(_chainlit_app)
CHAT_RUNS: ChatRuns | None = None  # with history on: every turn is also a run, for a reloaded page
if SETTINGS.history and SETTINGS.data_dir is not None:
    from chainlit.config import config as _chainlit_config

    from smart_agent.api.mount import shared_run_log

    history.install(SETTINGS, SETTINGS.data_dir, loopback=is_loopback(_chainlit_config.run.host))
    attachments.install(_chainlit_app)
    if (_run_log := shared_run_log()) is not None:
        CHAT_RUNS = ChatRuns(_run_log, policy_for(SETTINGS))


@cl.on_app_startup
def on_app_startup() -> None:
    """Everything is imported and built: keep the garbage collector's pauses and the loop's timer
    heap small under many sessions (issue 14)."""
    heap.freeze_startup_heap()
    heap.collect_young_less_often()
    _background.add(asyncio.get_running_loop().create_task(_check_configured_model()))


_background: set[asyncio.Task[None]] = set()  # held, so the tasks are not collected mid-way


async def _check_configured_model() -> None:
    """Warn once, in the log, when the configured model is not among the models the server lists."""
    if not SETTINGS.model:
        return
    client = make_client(SETTINGS)
    try:
        warning = unlisted(SETTINGS.model, await available_models(client, SETTINGS))
    finally:
        await client.close()
    if warning:
        log.warning("%s; chats ask for it all the same (--model sets another)", warning)


@cl.set_chat_profiles
async def set_chat_profiles(user: cl.User | None = None, language: str | None = None) -> list[cl.ChatProfile]:
    """Assistant and Team; SMART_AGENT_PROFILE says which a new chat starts with."""
    return chat_profiles(SETTINGS)


@cl.on_chat_start
async def on_chat_start() -> None:
    """Give the session its own client, tools (built-in and MCP) and an empty history."""
    history: list[dict[str, Any]] = []
    if SETTINGS.system_prompt:
        history.append({"role": "system", "content": SETTINGS.system_prompt})
    await _open_session(history)
    if SETTINGS.uses_embedded_model:
        await cl.Message(content=f"_{EMBEDDED_NOTE}_", author=NOTE_AUTHOR).send()


EMBEDDED_NOTE = (
    "You are chatting with the built-in SmolLM2-135M, a tiny model for trying smart-agent out: it "
    "answers simple questions, often wrongly, and cannot use tools. Connect a real model with "
    "--base-url and --model (see the Readme)."
)


@cl.on_chat_resume
async def on_chat_resume(thread: ThreadDict) -> None:
    """A stored thread reopened: the model sees its conversation again, and the chat goes on; a
    reply still being generated is followed live to its end."""
    live = None
    user = cl.context.session.user
    if CHAT_RUNS is not None and user is not None:
        owner = chat_owner(user.identifier)
        live = await follow.live_turn(thread, CHAT_RUNS.log, owner, SETTINGS.system_prompt)
    images = await attachments.stored_images(thread)  # the model sees them again, as the first time
    await _open_session(model_messages(thread, SETTINGS.system_prompt, images))
    join_segments(thread)  # after the rebuild: only what the page shows changes
    if live is not None:
        follow.pend(live)


async def _open_session(history: list[dict[str, Any]]) -> None:
    """Give the session its own client, tools (built-in and MCP) and this history."""
    if SETTINGS.lag_probe:
        lag_probe.start(Path(SETTINGS.lag_probe))
    cl.user_session.set("history", LiveConversation(history))
    cl.user_session.set("settings", SETTINGS)
    client = make_client(SETTINGS)
    cl.user_session.set("client", client)
    lifetime.on_session_end(cl.context.session.id, client.close)
    # Asked when a chat starts (bounded, cached): Chainlit has no "settings opened" event.
    cl.user_session.set(MODELS_KEY, list((await available_models(client, SETTINGS)).ids))
    await settings_panel(SETTINGS).send()
    await pacing.greet(SETTINGS)
    # The built-in SmolLM2 cannot call tools: offered them, it answers wrongly (issue 25).
    embedded = SETTINGS.uses_embedded_model
    if not embedded:
        await shared_workers().warm()
    tools = ToolRegistry() if embedded else builtin_tools(SETTINGS.tool_timeout)
    cl.user_session.set("tools", tools)
    cl.user_session.set("mcp_tools", {})
    connections = McpConnections(on_lost=_on_mcp_lost)
    # Not in on_chat_end: Chainlit calls it on every socket drop, and the session may come back.
    lifetime.on_session_end(cl.context.session.id, connections.aclose)
    if SETTINGS.mcp_config and not embedded:
        for server in load_mcp_config(SETTINGS.mcp_config):
            try:
                _offer(server.name, await connections.connect(server))
            except McpError as exc:
                await cl.ErrorMessage(content=f"{exc}. The chat goes on without it.").send()


def _offer(server: str, added: list[Tool]) -> None:
    """Offer an MCP server's tools to the model, remembering which server they came from."""
    tools: ToolRegistry = cl.user_session.get("tools")
    for tool in added:
        tools.add(tool)
    mcp_tools: dict[str, list[str]] = cl.user_session.get("mcp_tools")
    mcp_tools[server] = [tool.name for tool in added]


def _withdraw(server: str, reason: str | None = None) -> list[str]:
    """Withdraw an MCP server's tools; with a reason, a later call of one is answered with it."""
    tools: ToolRegistry = cl.user_session.get("tools")
    mcp_tools: dict[str, list[str]] = cl.user_session.get("mcp_tools")
    names = mcp_tools.pop(server, [])
    for name in names:
        tools.remove(name, reason)
    return names


async def _on_mcp_lost(server: str, reason: str) -> None:
    """A configured MCP server went away by itself: withdraw its tools and tell the user."""
    names = _withdraw(server, f"MCP server {server!r} is gone ({reason})")
    await cl.ErrorMessage(
        content=f"MCP server {server!r} is gone ({reason}); its tools ({', '.join(names) or 'none'}) "
        "are no longer offered. The chat goes on without them."
    ).send()


@cl.on_settings_update
async def on_settings_update(values: dict[str, Any]) -> None:
    """Validate the panel; good values apply to this session's next reply, bad ones are refused."""
    current: Settings = cl.user_session.get("settings")
    picked = values.get("model")
    if picked and picked in (cl.user_session.get(MODELS_KEY) or []):
        cl.user_session.set(MODEL_KEY, picked)  # kept with the thread (Chainlit stores the session)
    if values.get("reasoning_effort") == EFFORT_DEFAULT:
        values = {**values, "reasoning_effort": ""}  # the choice that sends none
    try:
        cl.user_session.set("settings", apply_session_settings(current, values))
        await cl.context.emitter.send_toast("Settings saved: they apply to your next reply.", "success")
    except ConfigError as exc:
        await cl.ErrorMessage(content=f"Setting refused. {exc}. The previous value stays.").send()
        await settings_panel(current, pacing.control(current)).send()


@cl.on_window_message
async def on_window_message(data: Any) -> None:
    """The page's render reports (public/smart-agent.js) set the pace of its replies."""
    await pacing.on_report(data)


@cl.on_mcp_connect
async def on_mcp_connect(connection: Any, session: ClientSession) -> None:
    """A server added from the browser: offer its tools to the model."""
    _offer(connection.name, await session_tools(session))


@cl.on_mcp_disconnect
async def on_mcp_disconnect(name: str, session: ClientSession) -> None:
    """A server removed in the browser: withdraw its tools."""
    _withdraw(name)


async def _with_files(
    message: cl.Message, files: list[Attachment], settings: Settings, tools: ToolRegistry
) -> str | list[dict[str, Any]]:
    """The user's content for the model: text files as marked context (cut to the context, said so),
    images as parts; the text is kept in the message's metadata for a reopened chat."""
    if not files:
        return message.content
    room = room_for_files(input_limit(settings, tools.specs()), message.content, files)
    built = user_content(message.content, files, room)
    for notice in built.notices:
        await cl.Message(content=notice, author=NOTE_AUTHOR).send()
    message.metadata = {**(message.metadata or {}), MODEL_TEXT_KEY: built.text}
    await message.update()
    return built.content


@cl.on_message
async def on_message(message: cl.Message) -> None:
    """Answer the user's message; text streams through the batching wrapper."""
    await follow.followed()  # a reply still followed after a reload comes first
    history: list[dict[str, Any]] = cl.user_session.get("history").messages
    client = cl.user_session.get("client")
    settings: Settings = cl.user_session.get("settings")
    tools: ToolRegistry = cl.user_session.get("tools")
    refusal = input_refusal(message.content, settings, tools.specs())
    files: list[Attachment] = []
    if not refusal and message.elements:
        files, refused = await attachments.collect(message, ATTACHMENT_LIMITS)
        refusal = attachments.refusal_text(refused, ATTACHMENT_LIMITS) if refused else None
    if refusal:
        with shown_only():  # refused input is never stored, nor what says it was refused
            await cl.ErrorMessage(content=refusal).send()
        await forget_refused(message.id)
        return
    try:
        model = cl.user_session.get(MODEL_KEY) or await resolve_model(client, SETTINGS)
    except ModelError as exc:
        await cl.ErrorMessage(content=str(exc)).send()
        return
    cl.user_session.set(MODEL_KEY, model)
    history.append({"role": "user", "content": await _with_files(message, files, settings, tools)})
    if is_team_chat(SETTINGS):
        await team_turn(history, client, model, settings, tools)
        return
    agent = Agent(client, model, settings, tools)
    events: AsyncIterator[AgentEvent] = metered(agent.stream(history), model)
    user = cl.context.session.user
    if CHAT_RUNS is not None and user is not None:
        events = await CHAT_RUNS.record(chat_run_id(message.id), chat_owner(user.identifier), events)
    await present_turn(events, settings, model=model)
