"""MCP servers as tool sources: the config file, connections over stdio or streamable HTTP, and
their tools adapted to the registry."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client

from smart_agent.agent.tools import Tool
from smart_agent.errors import SmartAgentError

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


@dataclass
class McpConnections:
    """Connected MCP servers; each lives in its own task so its context is entered and exited
    in one task, as anyio requires."""

    connect_seconds: float = CONNECT_TIMEOUT
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

    @staticmethod
    async def _hold(server: McpServer, ready: asyncio.Future[list[Tool]], closing: asyncio.Event) -> None:
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
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                ready.set_result(await session_tools(session))
                await closing.wait()
        except Exception as exc:  # reported to connect(), or logged once the session was up
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.warning("MCP server %s stopped: %s", server.name, _describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    return str(exc) or type(exc).__name__
