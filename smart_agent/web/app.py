"""Chainlit handlers: glue between the browser session and the agent."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, cast

import chainlit as cl
from chainlit.input_widget import NumberInput, Switch
from mcp import ClientSession

from smart_agent.agent.loop import Agent
from smart_agent.agent.mcp import McpConnections, McpError, load_mcp_config, session_tools
from smart_agent.agent.tools import ToolRegistry, builtin_tools
from smart_agent.config import SESSION_SETTINGS, ConfigError, Settings, apply_session_settings, load_settings
from smart_agent.errors import ModelError
from smart_agent.llm.client import make_client, resolve_model
from smart_agent.streaming import BatchPolicy, SegmentedReply
from smart_agent.streaming.progress import ReplyMeter, ReplyProgress
from smart_agent.web import lag_probe, resync
from smart_agent.web.reply import ToolStep, deliver
from smart_agent.web.resync import Turn, start_turn

log = logging.getLogger("smart_agent.app")
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
        adaptive=settings.adaptive_batching,
    )


def _settings_panel(settings: Settings) -> cl.ChatSettings:
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
        ]
    )


WAITING = "Waiting for the model…"
STATS_AUTHOR = "stats"


class _Footer:
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
    if SETTINGS.lag_probe:
        lag_probe.start(Path(SETTINGS.lag_probe))
    history: list[dict[str, Any]] = []
    if SETTINGS.system_prompt:
        history.append({"role": "system", "content": SETTINGS.system_prompt})
    cl.user_session.set("history", history)
    cl.user_session.set("settings", SETTINGS)
    await _settings_panel(SETTINGS).send()
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
        await _settings_panel(current).send()


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
    policy = _policy(settings)
    replies: list[SegmentedReply] = []
    turn = start_turn()

    def new_reply() -> SegmentedReply:
        reply = SegmentedReply(
            lambda: cl.Message(content=""), policy, settings.segment_chars, on_segment=turn.add
        )
        replies.append(reply)
        return reply

    footer = _Footer(replies, settings.show_stats, turn)
    meter = ReplyMeter()
    try:
        await footer.start()
        outcome = await deliver(
            agent.stream(history),
            new_reply,
            _Steps(turn),
            meter=meter,
            on_progress=footer.progress,
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
