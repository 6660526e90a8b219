"""Tools the model can call: the registry, argument parsing, time limits and the built-ins."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smart_agent.agent.calculator import calculate_text
from smart_agent.agent.workers import ToolWorkers, shared_workers

ToolFunction = Callable[[dict[str, Any]], Awaitable[str]]
MAX_ARGUMENT_CHARS = 100_000  # no built-in or MCP tool needs more; a model's junk may be far longer


@dataclass(frozen=True)
class Tool:
    """A function the model may call, described by a JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]
    run: ToolFunction

    def spec(self) -> dict[str, Any]:
        """The OpenAI `tools` entry for this tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True)
class ToolResult:
    """What a call returned, or why it failed; both go back to the model."""

    content: str
    is_error: bool = False


def parse_arguments(raw: str | None) -> dict[str, Any]:
    """The call's arguments as a dict; empty or null arguments mean `{}`; anything else that is
    not a JSON object of bounded size and depth raises ValueError."""
    if raw is None or not raw.strip() or raw.strip() == "null":
        return {}
    if len(raw) > MAX_ARGUMENT_CHARS:
        raise ValueError(f"arguments are {len(raw):,} characters long; the limit is {MAX_ARGUMENT_CHARS:,}")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("arguments are not valid Unicode (lone surrogates)") from None
    try:
        value = json.loads(raw)
    except RecursionError:  # e.g. '{"a":' * 1000: json's parser recurses per level
        raise ValueError("arguments are nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"arguments must be a JSON object, got {type(value).__name__}")
    return value


class ToolRegistry:
    """The tools offered to the model, by name."""

    def __init__(self, tools: Iterable[Tool] = (), time_limit: float = 30.0) -> None:
        self.time_limit = time_limit
        self._tools: dict[str, Tool] = {}
        self._withdrawn: dict[str, str] = {}  # name -> why it is no longer offered
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        """Offer a tool (replacing one of the same name)."""
        self._tools[tool.name] = tool
        self._withdrawn.pop(tool.name, None)

    def remove(self, name: str, reason: str | None = None) -> None:
        """Withdraw a tool; with a reason, a later call of it is answered with that reason."""
        self._tools.pop(name, None)
        if reason is not None:
            self._withdrawn[name] = reason

    @property
    def names(self) -> list[str]:
        """Names of the tools on offer."""
        return list(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        """The OpenAI `tools` list."""
        return [tool.spec() for tool in self._tools.values()]

    async def call(self, name: str, raw_arguments: str | None) -> ToolResult:
        """Run one call; every failure becomes an error result for the model, never an exception."""
        tool = self._tools.get(name)
        if tool is None and name in self._withdrawn:
            return ToolResult(f"Error: {name} is no longer available: {self._withdrawn[name]}", True)
        if tool is None:
            shown = name if len(name) <= 100 else name[:100] + "…"
            return ToolResult(f"Error: no tool named {shown!r}; available: {', '.join(self.names)}", True)
        try:
            arguments = parse_arguments(raw_arguments)
        except ValueError as exc:
            return ToolResult(f"Error: invalid JSON arguments for {name}: {exc}", True)
        try:
            return ToolResult(await asyncio.wait_for(tool.run(arguments), self.time_limit))
        except TimeoutError:
            return ToolResult(f"Error: {name} timed out after {self.time_limit:g} s", True)
        except Exception as exc:  # a tool's failure is reported to the model, not raised
            return ToolResult(f"Error: {name} failed: {str(exc) or type(exc).__name__}", True)


def _calculator(workers: ToolWorkers) -> ToolFunction:
    async def run(arguments: dict[str, Any]) -> str:
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            raise ValueError("missing string argument 'expression'")
        result: str = await workers.run(calculate_text, expression)
        return result

    return run


async def _current_time(arguments: dict[str, Any]) -> str:
    zone = arguments.get("timezone")
    try:
        tz = ZoneInfo(zone) if zone else None
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r}") from None
    now = datetime.now(tz).astimezone(tz)
    return now.strftime("%Y-%m-%d %H:%M:%S %Z (UTC%z)")


def calculator_tool(workers: ToolWorkers) -> Tool:
    """The calculator; it computes in `workers`, off the event loop."""
    return Tool(
        name="calculator",
        description="Evaluate an arithmetic expression, e.g. '2 * (3 + 4) ** 2' or 'sqrt(2) * pi'.",
        parameters={
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "The expression."}},
            "required": ["expression"],
        },
        run=_calculator(workers),
    )


CURRENT_TIME = Tool(
    name="current_time",
    description="The current date and time, with time zone.",
    parameters={
        "type": "object",
        "properties": {
            "timezone": {"type": "string", "description": "IANA zone such as 'Europe/Paris'; default local."}
        },
    },
    run=_current_time,
)


def builtin_tools(time_limit: float = 30.0, workers: ToolWorkers | None = None) -> ToolRegistry:
    """A registry with the built-in tools; CPU-bound ones run in `workers` (default: the shared pool)."""
    return ToolRegistry([calculator_tool(workers or shared_workers()), CURRENT_TIME], time_limit)
