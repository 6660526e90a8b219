"""The streaming tool loop: text goes out at once, tool calls run between model turns."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam

from smart_agent.agent.events import (
    AgentEvent,
    ReplyDone,
    ReplyFailed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from smart_agent.agent.tools import ToolRegistry, ToolResult
from smart_agent.config import Settings
from smart_agent.errors import ModelError
from smart_agent.llm.chunks import ChunkDelta, ToolCall, ToolCallAccumulator, normalize_chunk
from smart_agent.llm.client import describe_error, ended_early

Message = dict[str, Any]
_STREAM_ERRORS = (openai.OpenAIError, httpx2.HTTPError, json.JSONDecodeError)
FALLBACK_PIECE_CHARS = 24
FALLBACK_SPREAD_SECONDS = 0.5


@dataclass
class Agent:
    """Talks to the model with stream=True and runs the tools it asks for."""

    client: openai.AsyncOpenAI
    model: str
    settings: Settings
    tools: ToolRegistry

    async def stream(self, messages: list[Message]) -> AsyncIterator[AgentEvent]:
        """Answer the conversation in `messages`, appending the assistant and tool messages."""
        for round_number in range(self.settings.max_tool_rounds + 1):
            text: list[str] = []
            calls = ToolCallAccumulator()
            try:
                async for delta in self._model_turn(messages):
                    if delta.text:
                        text.append(delta.text)
                        yield TextDelta(delta.text)
                    for fragment in delta.tool_calls:
                        calls.add(fragment)
            except ModelError as exc:
                if text:
                    messages.append({"role": "assistant", "content": "".join(text)})
                yield ReplyFailed(str(exc))
                return
            except BaseException:  # stopped mid-reply: the history keeps what the user saw
                if text:
                    messages.append({"role": "assistant", "content": "".join(text)})
                raise
            finished = calls.calls()
            if not finished:
                messages.append({"role": "assistant", "content": "".join(text)})
                yield ReplyDone("".join(text), round_number)
                return
            if round_number == self.settings.max_tool_rounds:
                if text:
                    messages.append({"role": "assistant", "content": "".join(text)})
                yield ReplyFailed(
                    f"Stopped: the model asked for tools {round_number} rounds in a row "
                    "(limit SMART_AGENT_MAX_TOOL_ROUNDS)."
                )
                return
            messages.append(
                {
                    "role": "assistant",
                    "content": "".join(text) or None,
                    "tool_calls": [call.message() for call in finished],
                }
            )
            async for event in self._run_tools(finished, messages):
                yield event

    async def _run_tools(self, calls: list[ToolCall], messages: list[Message]) -> AsyncIterator[AgentEvent]:
        for call in calls:
            yield ToolCallStarted(call.id, call.name, call.arguments)

        async def run(call: ToolCall) -> tuple[ToolCall, ToolResult]:
            return call, await self.tools.call(call.name, call.arguments)

        tasks = [asyncio.ensure_future(run(call)) for call in calls]
        results: dict[str, ToolResult] = {}
        try:
            for next_done in asyncio.as_completed(tasks):
                call, result = await next_done
                results[call.id] = result
                yield ToolCallFinished(call.id, call.name, call.arguments, result.content, result.is_error)
        finally:
            for task in tasks:
                task.cancel()
            # Results go back in call order, whatever order they finished in; every call gets
            # one, even when the turn is stopped, so the history stays valid for the next turn.
            for call in calls:
                result = results.get(call.id, ToolResult("Error: stopped before the tool returned", True))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result.content})

    async def _model_turn(self, messages: list[Message]) -> AsyncIterator[ChunkDelta]:
        """One model turn as deltas; falls back to a non-streaming request when streaming fails
        before anything arrived."""
        try:
            stream = await self._create(messages, stream=True)
        except openai.BadRequestError as exc:
            if "stream" not in str(exc).lower():
                raise describe_error(exc, self.settings, self.model) from exc
            async for delta in self._fallback(messages):
                yield delta
            return
        except _STREAM_ERRORS as exc:
            raise describe_error(exc, self.settings, self.model) from exc
        produced = finished = False
        failed: BaseException | None = None
        try:
            async for chunk in stream:
                delta = normalize_chunk(chunk)
                produced = produced or bool(delta.text or delta.tool_calls)
                finished = finished or delta.finish_reason is not None
                yield delta
        except _STREAM_ERRORS as exc:
            if produced:
                raise describe_error(exc, self.settings, self.model, mid_stream=True) from exc
            failed = exc
        finally:
            await stream.close()
        # A complete stream names why it ended (stop, length, tool_calls, ...) in its last choice;
        # without one it was cut off. `[DONE]` proves nothing: the SDK swallows it, and
        # llama-cpp-python sends it when it interrupts a reply for another request.
        if failed is None and not finished:
            if produced:
                raise ended_early(self.settings)
            failed = ModelError("empty stream")
        if failed is not None:
            async for delta in self._fallback(messages):
                yield delta

    async def _fallback(self, messages: list[Message]) -> AsyncIterator[ChunkDelta]:
        """Ask once without streaming and hand the answer over in small pieces."""
        try:
            response = await self._create(messages, stream=False)
        except _STREAM_ERRORS as exc:
            raise describe_error(exc, self.settings, self.model) from exc
        whole = normalize_chunk(response)
        pieces = re.findall(rf".{{1,{FALLBACK_PIECE_CHARS}}}", whole.text, flags=re.DOTALL)
        pause = min(0.02, FALLBACK_SPREAD_SECONDS / max(1, len(pieces)))
        for number, piece in enumerate(pieces):
            if number:
                await asyncio.sleep(pause)  # pacing, so the user sees the answer appear
            yield ChunkDelta(text=piece)
        if whole.tool_calls:
            yield ChunkDelta(tool_calls=whole.tool_calls)

    async def _create(self, messages: list[Message], *, stream: bool) -> Any:
        extra: dict[str, Any] = {"tools": self.tools.specs()} if self.tools.names else {}
        return await self.client.chat.completions.create(
            model=self.model,
            messages=cast("list[ChatCompletionMessageParam]", messages),
            stream=stream,
            **extra,
        )
