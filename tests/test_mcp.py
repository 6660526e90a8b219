"""MCP: the config file, a real stdio server written with the `mcp` package, and the agent
calling its tool end to end over HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from smart_agent.agent.events import TextDelta, ToolCallFinished
from smart_agent.agent.loop import Agent
from smart_agent.agent.mcp import McpConnections, McpError, McpServer, load_mcp_config
from smart_agent.agent.tools import ToolRegistry, builtin_tools
from smart_agent.config import Settings
from smart_agent.llm.client import make_client
from tests.scripted_server import MODEL_ID, ScriptedServer, serve
from tests.sio_client import ChatClient, connected

ECHO = McpServer(
    name="echo", command=sys.executable, args=(str(Path(__file__).with_name("mcp_echo_server.py")),)
)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with serve() as scripted:
        yield scripted


def test_config_when_valid_then_servers(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "local": {"command": "python", "args": ["-m", "x"], "env": {"A": "1"}},
                    "remote": {"url": "http://127.0.0.1:9/mcp"},
                }
            }
        )
    )
    assert load_mcp_config(path) == [
        McpServer("local", "python", ("-m", "x"), {"A": "1"}),
        McpServer("remote", url="http://127.0.0.1:9/mcp"),
    ]


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        ("{not json", "not valid JSON"),
        ('{"servers": {}}', '"mcpServers"'),
        ('{"mcpServers": {"x": {"args": []}}}', "needs a 'command' or a 'url'"),
        ('{"mcpServers": {"x": {"url": "127.0.0.1:8931/mcp"}}}', "url '127.0.0.1:8931/mcp': must be an http"),
        ('{"mcpServers": {"x": {"url": "file:///etc/passwd"}}}', "url 'file:///etc/passwd': must be an http"),
        (
            '{"mcpServers": {"x": {"url": "http://h:99999/mcp?key=hush"}}}',
            r"url 'http://h:99999/mcp\?\*\*\*'",
        ),
    ],
)
def test_config_when_invalid_then_readable_error(tmp_path: Path, content: str, phrase: str) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(content)
    with pytest.raises(McpError, match=phrase):
        load_mcp_config(path)


def test_config_when_missing_then_readable_error(tmp_path: Path) -> None:
    with pytest.raises(McpError, match="cannot read MCP config"):
        load_mcp_config(tmp_path / "absent.json")


async def test_stdio_server_when_connected_then_tools_listed_and_callable() -> None:
    connections = McpConnections()
    try:
        tools = await connections.connect(ECHO)
        registry = ToolRegistry(tools)
        assert sorted(registry.names) == ["refuse", "shout"]
        shout = next(t for t in tools if t.name == "shout")
        assert shout.parameters["properties"]["text"]["type"] == "string"
        ok = await registry.call("shout", '{"text": "hi"}')
        assert (ok.content, ok.is_error) == ("HI!", False)
        failed = await registry.call("refuse", '{"reason": "because"}')
        assert failed.is_error and "refused: because" in failed.content
    finally:
        await connections.aclose()


async def test_server_when_command_fails_then_readable_error() -> None:
    connections = McpConnections(connect_seconds=20)
    broken = McpServer(name="broken", command=sys.executable, args=("-c", "raise SystemExit(3)"))
    with pytest.raises(McpError, match="MCP server 'broken'"):
        await connections.connect(broken)
    await connections.aclose()


async def test_agent_when_model_calls_mcp_tool_then_result_reaches_reply(server: ScriptedServer) -> None:
    connections = McpConnections()
    settings = Settings(api_key="k", base_url=server.url, model=MODEL_ID)
    client = make_client(settings)
    try:
        tools = builtin_tools()
        for tool in await connections.connect(ECHO):
            tools.add(tool)
        agent = Agent(client, MODEL_ID, settings, tools)
        history = [{"role": "user", "content": '#script tool=shout args_raw={"text":"mcp"}'}]
        events = [event async for event in agent.stream(history)]
        assert [e.result for e in events if isinstance(e, ToolCallFinished)] == ["MCP!"]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Result: MCP!"
        offered = [t["function"]["name"] for t in server.requests[-1]["tools"]]
        assert {"calculator", "current_time", "shout", "refuse"} <= set(offered)
    finally:
        await client.close()
        await connections.aclose()


MCP_PORT = 8931  # the loopback port the app's .chainlit/config.toml allows users to add MCP servers on


@pytest.fixture
def http_echo() -> Iterator[str]:
    """The echo MCP server over streamable HTTP on MCP_PORT; yields its URL."""
    echo = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("mcp_echo_server.py")), str(MCP_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{MCP_PORT}/mcp"
    finally:
        echo.terminate()
        echo.wait(timeout=10)


async def _add_from_browser(url: str, client: ChatClient, server_url: str) -> httpx2.Response:
    """POST /mcp as Chainlit's MCP dialog does; retried until the MCP server answers."""
    payload = {
        "sessionId": client.session_id,
        "name": "echo",
        "clientType": "streamable-http",
        "url": server_url,
    }
    async with httpx2.AsyncClient(timeout=30, headers=client.login) as http:  # the page's login cookie
        for _ in range(100):  # the MCP server has no readiness signal but answering
            response = await http.post(f"{url}/mcp", json=payload)
            if response.status_code == 200 or "not enabled" in response.text:
                return response
            await asyncio.sleep(0.2)
    return response


async def test_chainlit_mcp_connect_when_user_servers_on_and_user_adds_http_server_then_its_tools_answer(
    scripted_app: Callable[..., str], http_echo: str
) -> None:
    url = scripted_app("--mcp-user-servers")
    async with connected(url) as client:
        response = await _add_from_browser(url, client, http_echo)
        assert response.status_code == 200, response.text
        await client.send('#script tool=shout args_raw={"text":"browser"}')
        await client.wait_task_ends(3)
        assert client.reply() == "Result: BROWSER!"


async def test_chainlit_mcp_connect_when_user_servers_not_turned_on_then_refused(
    scripted_app: Callable[..., str], http_echo: str
) -> None:
    url = scripted_app()
    async with connected(url) as client:
        response = await _add_from_browser(url, client, http_echo)
        assert response.status_code == 400, response.text
        assert "User-provided MCP servers are not enabled" in response.text
        await client.send('#script tool=shout args_raw={"text":"browser"}')
        await client.wait_task_ends(3)
        assert "BROWSER!" not in client.reply()
