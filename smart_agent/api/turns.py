"""The agent turns the API runs: the same agent, tools and MCP servers as the chat UI."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import openai

from smart_agent.agent.events import AgentEvent
from smart_agent.agent.loop import Agent
from smart_agent.agent.mcp import McpConnections, McpError, load_mcp_config
from smart_agent.agent.tools import ToolRegistry, builtin_tools
from smart_agent.api.schema import RequestError
from smart_agent.config import Settings
from smart_agent.llm.client import make_client
from smart_agent.llm.context import input_limit
from smart_agent.llm.models import ModelList, available_models, resolve_model
from smart_agent.metrics import metered
from smart_agent.team.definition import concurrency, team_for
from smart_agent.team.events import MemberEvent, TeamStatus
from smart_agent.team.hub import TeamHub

log = logging.getLogger("smart_agent.api")


async def _team_answer(hub: TeamHub, history: list[dict[str, Any]]) -> AsyncGenerator[AgentEvent, None]:
    """The synthesis's events of a team turn: the members' notes feed it and stay out of the run."""
    async with aclosing(hub.stream(history)) as events:
        async for event in events:
            if not isinstance(event, MemberEvent | TeamStatus):
                yield event


class Turns:
    """Builds each run's agent turn; one model client, tool registry and set of MCP servers per process."""

    def __init__(self, settings: Settings, client: openai.AsyncOpenAI | None = None) -> None:
        self.settings = settings
        self._client = client or make_client(settings)
        # The built-in SmolLM2 cannot call tools: offered them, it answers wrongly (issue 25).
        self._tools: ToolRegistry = (
            ToolRegistry() if settings.uses_embedded_model else builtin_tools(settings.tool_timeout)
        )
        self._mcp = McpConnections()
        self._mcp_ready: asyncio.Task[None] | None = None
        self._model: str | None = None

    @property
    def max_content_chars(self) -> int:
        """The longest message content a run accepts (what fits the model's context)."""
        return input_limit(self.settings, self._tools.specs())

    async def backend_models(self) -> ModelList:
        """The backend's models, as listed (cached) by the server."""
        return await available_models(self._client, self.settings)

    async def check_model(self, model: str | None) -> None:
        """RequestError naming `model` when the server lists its models and this is not one of them."""
        if model is None:
            return
        models = await available_models(self._client, self.settings)
        if not models.allows(model):
            shown = ", ".join(models.ids[:50]) or "none"
            raise RequestError("model", f"{model!r} is not a model the server offers (allowed: {shown})")

    async def stream(
        self, messages: list[dict[str, Any]], model: str | None, *, team: bool = False
    ) -> AsyncGenerator[AgentEvent, None]:
        """One agent turn answering `messages` (the conversation, ending with the user's message);
        with `team`, the Team profile's turn, of which the run gets the synthesis (the answer)."""
        await self._connect_mcp()
        history: list[dict[str, Any]] = list(messages)
        if self.settings.system_prompt and not any(item["role"] == "system" for item in history):
            history.insert(0, {"role": "system", "content": self.settings.system_prompt})
        if model is None:
            if self._model is None:
                self._model = await resolve_model(self._client, self.settings)
            model = self._model
        if team:
            members = team_for(self.settings)
            hub = TeamHub(
                members,
                self._client,
                model,
                self.settings,
                self._tools,
                concurrency=concurrency(self.settings, members),
            )
            turn = _team_answer(hub, history)
        else:
            turn = Agent(self._client, model, self.settings, self._tools).stream(history)
        async with aclosing(metered(turn, model)) as events:
            async for event in events:
                yield event

    async def _connect_mcp(self) -> None:
        # Once per process, shared by every run: an MCP server per run would start a process per run.
        if self._mcp_ready is None:
            self._mcp_ready = asyncio.ensure_future(self._connect_all())
        await asyncio.shield(self._mcp_ready)

    async def _connect_all(self) -> None:
        if not self.settings.mcp_config or self.settings.uses_embedded_model:
            return
        for server in load_mcp_config(self.settings.mcp_config):
            try:
                for tool in await self._mcp.connect(server):
                    self._tools.add(tool)
            except McpError as exc:  # the API goes on without it, like the chat does
                log.warning("%s; API runs go on without it", exc)

    async def aclose(self) -> None:
        """Disconnect the MCP servers and close the model client."""
        if self._mcp_ready is not None:
            self._mcp_ready.cancel()
        await self._mcp.aclose()
        await self._client.close()
