"""MCP servers live as long as the chat session, not as long as one socket: a network drop and
reconnect keeps them, and a server that dies has its tools withdrawn with a clear message."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser

from smart_agent.agent.mcp import McpConnections, McpServer
from smart_agent.agent.tools import ToolRegistry
from smart_agent.web.lifetime import on_session_end, session_ended
from tests.chat_page import ChatPage
from tests.harness import clean_env, descendants, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer
from tests.sio_client import connected

ECHO_SCRIPT = str(Path(__file__).with_name("mcp_echo_server.py"))
ECHO = McpServer(name="echo", command=sys.executable, args=(ECHO_SCRIPT,))


def _echo_servers(process: psutil.Process) -> list[psutil.Process]:
    return descendants(ECHO_SCRIPT, process)


@pytest.fixture
def app_with_echo(scripted: ScriptedServer, tmp_path: Path) -> Iterator[tuple[str, psutil.Process]]:
    """The real app with the echo MCP server configured; yields its URL and process."""
    config = tmp_path / "mcp.json"
    servers = {"echo": {"command": sys.executable, "args": [ECHO_SCRIPT]}}
    config.write_text(json.dumps({"mcpServers": servers}))
    flags = ("--base-url", scripted.url, "--model", MODEL_ID, "--mcp-config", str(config))
    env = clean_env(OPENAI_API_KEY="k", SMART_AGENT_TOOL_TIMEOUT="10")
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, process):
        yield url, psutil.Process(process.pid)


async def test_socket_drop_when_session_restored_then_mcp_tool_still_answers(
    app_with_echo: tuple[str, psutil.Process],
) -> None:
    url, app = app_with_echo
    async with connected(url) as first:
        await first.send('#script tool=shout args_raw={"text":"one"}')
        await first.wait_task_ends(3)
        assert first.reply() == "Result: ONE!"
        servers = _echo_servers(app)
    # the socket dropped; the session waits for its client to come back
    async with connected(url, session_id=first.session_id) as again:
        await again.send('#script tool=shout args_raw={"text":"two"}')
        await again.wait_task_ends(2)
        # the restored page first gets the last turn again (the reconnect snapshot), then the new one
        assert again.reply() == "Result: ONE!Result: TWO!"
        assert _echo_servers(app) == servers  # the same server process, never restarted


async def test_new_chat_when_session_cleared_then_its_mcp_server_stops(
    app_with_echo: tuple[str, psutil.Process],
) -> None:
    url, app = app_with_echo
    async with connected(url) as client:
        servers = _echo_servers(app)
        assert len(servers) == 1
        # What Chainlit's page sends for "New chat"; with an ack, so python-socketio's disconnect
        # (which aborts its send queue) cannot drop it.
        await client.sio.call("clear_session", timeout=10)
    _, alive = await asyncio.to_thread(psutil.wait_procs, servers, 15)
    assert not alive, "the MCP server outlived its cleared session"


async def test_mcp_server_when_it_dies_then_user_told_and_tools_withdrawn(
    app_with_echo: tuple[str, psutil.Process], scripted: ScriptedServer
) -> None:
    url, app = app_with_echo
    async with connected(url) as client:
        (server,) = _echo_servers(app)
        server.kill()
        await client.wait_text(lambda text: "MCP server 'echo' is gone" in text, seconds=30)
        assert "its tools (shout, refuse) are no longer offered" in client.reply()
        await client.send('#script tool=shout args_raw={"text":"x"}')
        await client.wait_task_ends(3)
        assert "Result: Error: shout is no longer available: MCP server 'echo' is gone" in client.reply()
        offered = {tool["function"]["name"] for tool in scripted.requests[-1]["tools"]}
        assert offered == {"calculator", "current_time"}


async def test_connections_when_server_dies_then_on_lost_reports_it() -> None:
    lost: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def on_lost(name: str, reason: str) -> None:
        await lost.put((name, reason))

    connections = McpConnections(on_lost=on_lost)
    try:
        registry = ToolRegistry(await connections.connect(ECHO))
        (server,) = _echo_servers(psutil.Process())
        server.kill()
        name, reason = await asyncio.wait_for(lost.get(), 10)
        assert (name, reason) == ("echo", "the server stopped")
        assert connections.names == []
        registry.remove("shout", f"MCP server {name!r} is gone ({reason})")
        result = await registry.call("shout", '{"text": "hi"}')
        assert result.is_error and "shout is no longer available: MCP server 'echo' is gone" in result.content
        assert "shout" not in registry.names
    finally:
        await connections.aclose()


async def test_connections_when_closed_on_purpose_then_no_loss_reported() -> None:
    reported: list[str] = []

    async def on_lost(name: str, reason: str) -> None:
        reported.append(name)

    connections = McpConnections(on_lost=on_lost)
    await connections.connect(ECHO)
    await connections.aclose()
    assert reported == []
    assert _echo_servers(psutil.Process()) == []


async def test_session_end_when_one_release_fails_then_the_others_still_run() -> None:
    released: list[str] = []

    async def fails() -> None:
        raise RuntimeError("boom")

    async def works() -> None:
        released.append("works")

    on_session_end("s1", fails)
    on_session_end("s1", works)
    await session_ended("s1")
    await session_ended("s1")  # a second deletion releases nothing twice
    assert released == ["works"]


@pytest.mark.e2e
def test_new_chat_button_when_clicked_then_old_sessions_mcp_server_stops(
    browser: Browser, app_with_echo: tuple[str, psutil.Process]
) -> None:
    url, app = app_with_echo
    chat = ChatPage.open(browser, url)
    try:
        (old,) = _echo_servers(app)
        chat.page.locator("#new-chat-button").click()
        chat.page.locator("#confirm").click()
        _, alive = psutil.wait_procs([old], timeout=15)
        assert not alive, "the MCP server outlived the chat the user left"
    finally:
        chat.close()
