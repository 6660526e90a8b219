"""The streaming tool loop: text goes out at once, tool calls run between model turns."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam

from smart_agent.agent.events import (
    AgentEvent,
    HistoryTrimmed,
    Notice,
    ReasoningDelta,
    ReasoningMoved,
    ReplyDone,
    ReplyFailed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    UsageReported,
)
from smart_agent.agent.tools import ToolRegistry, ToolResult, parse_arguments
from smart_agent.config import Settings
from smart_agent.errors import ModelError
from smart_agent.llm.chunks import ChunkDelta, ToolCall, ToolCallAccumulator, normalize_chunk
from smart_agent.llm.client import describe_error, ended_early
from smart_agent.llm.context import (
    TurnTooLongError,
    context_size,
    fit,
    is_context_error,
    prompt_budget,
    tools_tokens,
)
from smart_agent.llm.think import Moved, Part, Reasoning, ThinkSplitter

Message = dict[str, Any]
_STREAM_ERRORS = (openai.OpenAIError, httpx2.HTTPError, json.JSONDecodeError)
FALLBACK_PIECE_CHARS = 24
FALLBACK_SPREAD_SECONDS = 0.5
TOO_MANY_TOOL_ROUNDS = (
    "Stopped: the model asked for tools {rounds} rounds in a row, the most one message may take. "
    "Ask again, perhaps for less at once."
)
"""The reply's end when the tool rounds run out (a format string of `rounds`)."""
CONTEXT_REFUSED = (
    "The model server refused the request as longer than its context, even after smart-agent left "
    "out older messages. Send a shorter message, or start a new chat."
)
"""The reply's end when the server refuses a request for its length after every retry with less."""
_SURROGATE = re.compile("[\ud800-\udfff]")
NOT_KEPT = " Your message was not kept in the conversation."  # what to do: the error before says it
EFFORT_REFUSED = (
    "The model server does not accept a reasoning effort, so this reply was asked without one "
    "(clear Reasoning effort in the settings to stop this note)."
)
_OPTIONAL_PARAMS = ("stream_options", "reasoning_effort")
_REFUSED: dict[str, set[str]] = {}
"""Optional request fields each backend (URL and model) refused once: not sent to it again."""


class _ContextRejectedError(ModelError):
    """The server refused a request for its length before answering anything."""


def _history_call(call: ToolCall) -> Message:
    """The call as the history keeps it: arguments the tools refused (too deep, too long, not an
    object, not Unicode) are kept as `{}`, since servers may parse past arguments again; the
    call's error result says what was wrong."""
    message = call.message()
    try:
        parse_arguments(call.arguments)
    except ValueError:
        message["function"]["arguments"] = "{}"
    return message


def _encodable(value: Any) -> Any:
    """`value` with every string made encodable as UTF-8 (lone surrogates become U+FFFD)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {key: _encodable(item) for key, item in value.items()}
    return value


@dataclass
class Agent:
    """Talks to the model with stream=True and runs the tools it asks for."""

    client: openai.AsyncOpenAI
    model: str
    settings: Settings
    tools: ToolRegistry

    async def stream(self, messages: list[Message]) -> AsyncGenerator[AgentEvent, None]:
        """Answer the conversation in `messages`, appending the assistant and tool messages."""
        for round_number in range(self.settings.max_tool_rounds + 1):
            text: list[str] = []
            calls = ToolCallAccumulator()
            finish_reason = "stop"
            splitter = ThinkSplitter(self.settings.think_tags)
            try:
                # aclosing: a consumer that stops at a yield here closes the inner generators
                # (and their HTTP responses) at once, not whenever they are collected.
                async with aclosing(self._fitted_turn(messages)) as deltas:
                    async for delta in deltas:
                        if isinstance(delta, HistoryTrimmed | Notice):
                            yield delta
                            continue
                        if delta.finish_reason:
                            finish_reason = delta.finish_reason
                        if delta.reasoning:
                            yield ReasoningDelta(delta.reasoning)
                        if delta.text:
                            for event in _events(splitter.feed(delta.text), text):
                                yield event
                        for fragment in delta.tool_calls:
                            calls.add(fragment)
                        if delta.usage is not None:
                            usage = delta.usage
                            yield UsageReported(
                                usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens
                            )
                for event in _events(splitter.end(), text):
                    yield event
            except ModelError as exc:
                for event in _events(splitter.end(), text):  # a tag's start held back is text
                    yield event
                code = "limit_exceeded" if isinstance(exc, TurnTooLongError) else "model_error"
                if text:
                    messages.append({"role": "assistant", "content": "".join(text)})
                    yield ReplyFailed(str(exc), code)
                elif round_number == 0 and messages and messages[-1].get("role") == "user":
                    # A turn that failed before any answer leaves no trace: were the message the
                    # cause (too long, refused), keeping it would make every later turn fail too.
                    messages.pop()
                    kept = "" if isinstance(exc, TurnTooLongError) else NOT_KEPT
                    yield ReplyFailed(str(exc) + kept, code)
                else:
                    yield ReplyFailed(str(exc), code)
                return
            except BaseException:  # stopped mid-reply: the history keeps what the user saw
                if text:
                    messages.append({"role": "assistant", "content": "".join(text)})
                raise
            finished = calls.calls()
            if not finished:
                messages.append({"role": "assistant", "content": "".join(text)})
                yield ReplyDone("".join(text), round_number, finish_reason)
                return
            if round_number == self.settings.max_tool_rounds:
                if text:
                    messages.append({"role": "assistant", "content": "".join(text)})
                yield ReplyFailed(TOO_MANY_TOOL_ROUNDS.format(rounds=round_number), "limit_exceeded")
                return
            messages.append(
                {
                    "role": "assistant",
                    "content": "".join(text) or None,
                    "tool_calls": [_history_call(call) for call in finished],
                }
            )
            async with aclosing(self._run_tools(finished, messages)) as events:
                async for event in events:
                    yield event

    @property
    def _backend(self) -> str:
        return f"{self.client.base_url} {self.model}"

    async def _run_tools(
        self, calls: list[ToolCall], messages: list[Message]
    ) -> AsyncGenerator[AgentEvent, None]:
        async def run(call: ToolCall) -> tuple[ToolCall, ToolResult]:
            return call, await self.tools.call(call.name, call.arguments)

        tasks: list[asyncio.Future[tuple[ToolCall, ToolResult]]] = []
        results: dict[str, ToolResult] = {}
        try:
            # Inside the try: a consumer that fails on a call's display must still leave a
            # result for every call in the history, or the server rejects every later turn.
            for call in calls:
                yield ToolCallStarted(call.id, call.name, call.arguments)
            tasks = [asyncio.ensure_future(run(call)) for call in calls]
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

    async def _fitted_turn(
        self, messages: list[Message]
    ) -> AsyncGenerator[ChunkDelta | HistoryTrimmed | Notice, None]:
        """One model turn on the latest messages that fit the context; if the server still finds
        the request too long, once more on half as much (but at least the current turn)."""
        context = context_size(self.settings)
        budget = prompt_budget(context) - tools_tokens(self.tools.specs())
        for attempt in range(2):
            try:
                fitted = fit(messages, budget)
            except TurnTooLongError as exc:
                raise TurnTooLongError(exc.needed, exc.budget, context_tokens=context) from exc
            if fitted.dropped:
                yield HistoryTrimmed(fitted.dropped)
            try:
                async with aclosing(self._model_turn(fitted.messages)) as deltas:
                    async for delta in deltas:
                        yield delta
                return
            except _ContextRejectedError as exc:
                if fitted.tokens <= fitted.required:  # nothing older was sent: nothing to leave out
                    raise TurnTooLongError(
                        fitted.required, budget, context_tokens=context, refused=True
                    ) from exc
                if attempt == 1:
                    raise
                budget = max(fitted.tokens // 2, fitted.required)

    async def _model_turn(self, messages: list[Message]) -> AsyncGenerator[ChunkDelta | Notice, None]:
        """One model turn as deltas; falls back to a non-streaming request when streaming fails
        before anything arrived."""
        notices: list[str] = []
        try:
            stream = await self._create(messages, stream=True, notices=notices)
        except openai.BadRequestError as exc:
            if is_context_error(exc) or "stream" not in str(exc).lower():
                raise self._refusal(exc) from exc
            async for delta in self._fallback(messages):
                yield delta
            return
        except _STREAM_ERRORS as exc:
            raise self._refusal(exc) from exc
        for notice in notices:
            yield Notice(notice)
        produced = ended = False
        failed: BaseException | None = None
        try:
            async for chunk in stream:
                delta = normalize_chunk(chunk)
                produced = produced or bool(delta.text or delta.tool_calls or delta.reasoning)
                ended = ended or delta.finish_reason is not None
                yield delta
            # A complete stream names why it ended (stop, length, tool_calls, ...) in its last
            # choice; without one it was cut off. `[DONE]` proves nothing: the SDK swallows it,
            # and llama-cpp-python sends it when it interrupts a reply for another request.
            if not ended:
                if produced:
                    raise ended_early(self.settings)
                # llama.cpp's server answers a streamed request longer than its context with an
                # empty 200 stream; asked without streaming, it says why (HTTP 400).
                failed = ModelError("the stream ended before anything arrived")
        except _STREAM_ERRORS as exc:
            if produced:
                raise describe_error(exc, self.settings, self.model, mid_stream=True) from exc
            failed = exc
        finally:
            await stream.close()
        if failed is not None:
            async for delta in self._fallback(messages):
                yield delta

    async def _fallback(self, messages: list[Message]) -> AsyncIterator[ChunkDelta | Notice]:
        """Ask once without streaming and hand the answer over in small pieces."""
        notices: list[str] = []
        for attempt in range(2):
            try:
                response = await self._create(messages, stream=False, notices=notices)
                break
            except openai.APIConnectionError as exc:
                # A server may close the connection its failed stream used (llama.cpp's does after
                # a length refusal) while the client pools it for reuse: one fresh try.
                if attempt or isinstance(exc, openai.APITimeoutError):
                    raise self._refusal(exc) from exc
            except _STREAM_ERRORS as exc:
                raise self._refusal(exc) from exc
        for notice in notices:
            yield Notice(notice)
        whole = normalize_chunk(response)
        split = rf".{{1,{FALLBACK_PIECE_CHARS}}}"
        pieces = [
            *(ChunkDelta(reasoning=p) for p in re.findall(split, whole.reasoning, flags=re.DOTALL)),
            *(ChunkDelta(text=p) for p in re.findall(split, whole.text, flags=re.DOTALL)),
        ]
        pause = min(0.02, FALLBACK_SPREAD_SECONDS / max(1, len(pieces)))
        for number, piece in enumerate(pieces):
            if number:
                await asyncio.sleep(pause)  # pacing, so the user sees the answer appear
            yield piece
        if whole.tool_calls or whole.usage is not None:
            yield ChunkDelta(tool_calls=whole.tool_calls, usage=whole.usage)

    def _refusal(self, exc: BaseException) -> ModelError:
        """The error to raise for a failed request: a length refusal is retried with less."""
        if is_context_error(exc):
            return _ContextRejectedError(CONTEXT_REFUSED)
        return describe_error(exc, self.settings, self.model)

    async def _create(self, messages: list[Message], *, stream: bool, notices: list[str]) -> Any:
        """The request; an optional field the server refuses (400/422 naming it) is dropped, remembered
        for this backend, and the request sent once more."""
        refused = _REFUSED.setdefault(self._backend, set())
        while True:
            extra: dict[str, Any] = {"tools": self.tools.specs()} if self.tools.names else {}
            if stream and "stream_options" not in refused:
                extra["stream_options"] = {"include_usage": True}  # the server's own token counts
            if self.settings.reasoning_effort and "reasoning_effort" not in refused:
                extra["reasoning_effort"] = self.settings.reasoning_effort
            try:
                try:
                    return await self._request(messages, stream, extra)
                except UnicodeEncodeError:
                    # A lone surrogate (from a model's JSON escapes, a tool or a client) cannot be
                    # encoded as UTF-8, so the SDK refuses before sending: send U+FFFD instead.
                    return await self._request(_encodable(messages), stream, _encodable(extra))
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                field = _refused_field(exc, extra)
                if field is None:
                    raise
                refused.add(field)
                if field == "reasoning_effort":
                    notices.append(EFFORT_REFUSED)

    async def _request(self, messages: list[Message], stream: bool, extra: dict[str, Any]) -> Any:
        if stream:
            # The SDK's own request, status errors, SSE decoding and mid-stream `error` payloads,
            # but each chunk left as the JSON dict it was: building a ChatCompletionChunk model per
            # token cost ~47 µs, about 40 % of the app's whole cost per streamed token.
            return await self.client.post(
                "/chat/completions",
                body={"model": self.model, "messages": messages, "stream": True, **extra},
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
        return await self.client.chat.completions.create(
            model=self.model,
            messages=cast("list[ChatCompletionMessageParam]", messages),
            stream=False,
            **extra,
        )


def _refused_field(exc: openai.APIStatusError, sent: dict[str, Any]) -> str | None:
    """The optional field a 400/422 names, if it names one this request sent."""
    said = f"{getattr(exc, 'param', None) or ''} {exc.message} {exc.body}".lower()
    return next((field for field in _OPTIONAL_PARAMS if field in sent and field in said), None)


def _events(parts: list[Part], text: list[str]) -> list[AgentEvent]:
    """The agent events of the splitter's parts; `text` (the round's answer so far) follows them."""
    events: list[AgentEvent] = []
    for part in parts:
        if isinstance(part, Reasoning):
            events.append(ReasoningDelta(part.text))
        elif isinstance(part, Moved):
            whole = "".join(text)
            text[:] = [whole[: len(whole) - part.chars]] if len(whole) > part.chars else []
            events.append(ReasoningMoved(part.chars))
        else:
            text.append(part.text)
            events.append(TextDelta(part.text))
    return events
