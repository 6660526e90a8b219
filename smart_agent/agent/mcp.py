"""MCP servers as tool sources: the config file, connections over stdio or streamable HTTP, and
their tools adapted to the registry."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client

from smart_agent.agent.tools import Tool
from smart_agent.errors import SmartAgentError
from smart_agent.urls import parse_http_url, redact_url_secrets

log = logging.getLogger("smart_agent.mcp")
CONNECT_TIMEOUT = 30.0


class McpError(SmartAgentError):
    """An MCP server could not be configured or reached."""


@dataclass(frozen=True)
class McpServer:
    """One entry of the `mcpServers` config."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    url: str | None = None


def load_mcp_config(path: str | Path) -> list[McpServer]:
    """Read `{"mcpServers": {name: {command, args, env} | {url}}}`."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise McpError(f"cannot read MCP config {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise McpError(f"MCP config {path} is not valid JSON: {exc}") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise McpError(f'MCP config {path} needs an object "mcpServers": {{name: {{...}}}}')
    result = []
    for name, entry in servers.items():
        if not isinstance(entry, dict) or not (entry.get("command") or entry.get("url")):
            raise McpError(f"MCP server {name!r} in {path} needs a 'command' or a 'url'")
        if entry.get("url") is not None:
            try:
                parse_http_url(str(entry["url"]), "http://127.0.0.1:8931/mcp")
            except ValueError as exc:
                shown = redact_url_secrets(str(entry["url"]))
                raise McpError(f"MCP server {name!r} in {path}: invalid url {shown!r}: {exc}") from None
        result.append(
            McpServer(
                name=name,
                command=entry.get("command"),
                args=tuple(str(a) for a in entry.get("args", [])),
                env={str(k): str(v) for k, v in entry["env"].items()} if entry.get("env") else None,
                url=entry.get("url"),
            )
        )
    return result


def _result_text(result: Any) -> str:
    parts = []
    for item in result.content:
        text = getattr(item, "text", None)
        parts.append(text if text is not None else json.dumps(item.model_dump(mode="json")))
    if not parts and getattr(result, "structuredContent", None):
        parts.append(json.dumps(result.structuredContent))
    return "\n".join(parts)


async def session_tools(session: ClientSession) -> list[Tool]:
    """The tools an initialised MCP session offers, as registry tools."""
    listed = await session.list_tools()
    tools = []
    for spec in listed.tools:

        async def run(arguments: dict[str, Any], _name: str = spec.name) -> str:
            result = await session.call_tool(_name, arguments)
            text = _result_text(result)
            if result.isError:
                raise McpError(text or "the MCP tool reported an error")
            return text

        schema = spec.inputSchema or {"type": "object", "properties": {}}
        tools.append(Tool(spec.name, spec.description or spec.name, schema, run))
    return tools


LostCallback = Callable[[str, str], Awaitable[None]]


@dataclass
class McpConnections:
    """Connected MCP servers; each lives in its own task so its context is entered and exited
    in one task, as anyio requires. `on_lost(name, reason)` runs when a server goes away by
    itself (its process exited, its stream closed), so its tools can be withdrawn."""

    connect_seconds: float = CONNECT_TIMEOUT
    on_lost: LostCallback | None = None
    _holders: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = field(default_factory=dict)

    async def connect(self, server: McpServer) -> list[Tool]:
        """Start or reach the server and list its tools; failures raise McpError."""
        ready: asyncio.Future[list[Tool]] = asyncio.get_running_loop().create_future()
        closing = asyncio.Event()
        task = asyncio.create_task(self._hold(server, ready, closing), name=f"mcp-{server.name}")
        self._holders[server.name] = (task, closing)
        try:
            return await asyncio.wait_for(asyncio.shield(ready), self.connect_seconds)
        except TimeoutError:
            await self.disconnect(server.name)
            raise McpError(
                f"MCP server {server.name!r} did not answer within {self.connect_seconds:g} s"
            ) from None
        except Exception as exc:
            await self.disconnect(server.name)
            log.warning("MCP server %r failed to start", server.name, exc_info=exc)  # the class and trace
            raise McpError(f"MCP server {server.name!r} failed to start: {_describe(exc)}") from None

    async def disconnect(self, name: str) -> None:
        """Close one server's session (and stop its process)."""
        holder = self._holders.pop(name, None)
        if holder is None:
            return
        task, closing = holder
        closing.set()
        try:
            await asyncio.wait_for(task, 10)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()

    async def aclose(self) -> None:
        """Close every session."""
        for name in list(self._holders):
            await self.disconnect(name)

    @property
    def names(self) -> list[str]:
        """Names of the servers connected now."""
        return list(self._holders)

    async def _hold(
        self, server: McpServer, ready: asyncio.Future[list[Tool]], closing: asyncio.Event
    ) -> None:
        reason = "its connection closed"
        try:
            async with AsyncExitStack() as stack:
                if server.command:
                    params = StdioServerParameters(
                        command=server.command, args=list(server.args), env=server.env
                    )
                    read, write = await stack.enter_async_context(stdio_client(params))
                else:
                    assert server.url is not None
                    read, write, _ = await stack.enter_async_context(streamablehttp_client(server.url))
                # The session reads through a relay whose end tells us the server went away.
                relay_in, relay_out = anyio.create_memory_object_stream[Any](0)
                relay = asyncio.create_task(_relay(read, relay_in), name=f"mcp-relay-{server.name}")
                stack.push_async_callback(_cancel, relay)
                session = await stack.enter_async_context(ClientSession(relay_out, write))
                await session.initialize()
                ready.set_result(await session_tools(session))
                closed = asyncio.create_task(closing.wait())
                try:
                    await asyncio.wait({closed, relay}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closed.cancel()
                if not closing.is_set():
                    reason = "the server stopped" if server.command else "its stream ended"
        except Exception as exc:  # reported to connect(), or logged once the session was up
            if not ready.done():
                ready.set_exception(exc)
                return
            reason = _describe(exc)
        if closing.is_set() or not ready.done() or ready.cancelled() or ready.exception():
            return
        log.warning("MCP server %s stopped: %s", server.name, reason)
        holder = self._holders.get(server.name)
        if holder is not None and holder[0] is asyncio.current_task():
            del self._holders[server.name]
        if self.on_lost is not None:
            await self.on_lost(server.name, reason)


async def _relay(source: MemoryObjectReceiveStream[Any], sink: MemoryObjectSendStream[Any]) -> None:
    """Forward the transport's messages to the session; return when the transport ends."""
    async with sink:
        async for message in source:
            await sink.send(message)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):  # ending the relay, whatever state it is in
        pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    return str(exc) or "it ended without saying why"
