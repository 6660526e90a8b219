"""One function that understands every usual shape of a streamed chat chunk, and the tool-call
accumulator that joins fragments by index."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("smart_agent.llm")
_UNKNOWN_SHAPES: set[str] = set()  # chunk types already logged as unreadable (once each)


@dataclass(frozen=True)
class ToolCallFragment:
    """Part of one tool call: id and name usually come first, arguments in pieces."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None


@dataclass(frozen=True)
class Usage:
    """The server's own token counts of one request (`usage`, when it sends them)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class ChunkDelta:
    """What one chunk adds to the reply: `reasoning` is thinking sent apart from the text."""

    text: str = ""
    tool_calls: tuple[ToolCallFragment, ...] = ()
    finish_reason: str | None = None
    reasoning: str = ""
    usage: Usage | None = None


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        return "".join(str(_get(part, "text") or "") for part in content)
    return ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def read_usage(chunk: Any) -> Usage | None:
    """The chunk's `usage` (OpenAI's shape, reasoning tokens in `completion_tokens_details`), if any."""
    usage = _get(chunk, "usage")
    if usage is None or isinstance(usage, str | int | float):
        return None
    details = _get(usage, "completion_tokens_details")
    return Usage(
        prompt_tokens=_count(_get(usage, "prompt_tokens")),
        completion_tokens=_count(_get(usage, "completion_tokens")),
        reasoning_tokens=_count(_get(details, "reasoning_tokens")) if details is not None else 0,
    )


def _reasoning(delta: Any) -> str:
    # `reasoning_content`: DeepSeek's API, vLLM's reasoning parsers, llama.cpp; `reasoning`: Ollama's
    # OpenAI endpoint, OpenRouter, gpt-oss on vLLM. A server sends one of them.
    for key in ("reasoning_content", "reasoning"):
        value = _get(delta, key)
        if isinstance(value, str) and value:
            return value
    return ""


def _unknown(chunk: Any) -> ChunkDelta:
    kind = type(chunk).__name__
    if kind not in _UNKNOWN_SHAPES:
        _UNKNOWN_SHAPES.add(kind)
        log.debug("a chunk of type %s holds nothing smart-agent can read: %.200r", kind, chunk)
    return ChunkDelta()


def normalize_chunk(chunk: Any) -> ChunkDelta:
    """Read an OpenAI chunk object, a plain dict, a whole-message chunk, a usage-only chunk, a bare
    `{"content": ...}` dict, an object with `.content` (LangChain's message chunks) or a plain
    string as a ChunkDelta; anything else is logged once per type at debug level."""
    if chunk is None:
        return ChunkDelta()
    if isinstance(chunk, str):
        return ChunkDelta(text=chunk)
    choices = _get(chunk, "choices")
    usage = read_usage(chunk)
    if not choices:
        if usage is not None:  # the final usage-only chunk
            return ChunkDelta(usage=usage)
        content, reasoning = _get(chunk, "content"), _reasoning(chunk)
        if isinstance(content, str | list) or reasoning:  # a bare delta: no choices around it
            return ChunkDelta(text=_text(content), reasoning=reasoning)
        if choices is None:  # no `choices` at all, no content: a shape this function does not know
            return _unknown(chunk)
        return ChunkDelta()  # an empty `choices` list (Azure's prompt-filter chunk, say): nothing to add
    choice = choices[0]
    # Streaming servers send `delta`; some send whole `message` objects per chunk instead.
    delta = _get(choice, "delta") or _get(choice, "message")
    if delta is None:
        return ChunkDelta(
            text=_text(_get(choice, "text")), finish_reason=_get(choice, "finish_reason"), usage=usage
        )
    fragments = []
    for position, call in enumerate(_get(delta, "tool_calls") or ()):
        function = _get(call, "function")
        arguments = _get(function, "arguments") if function is not None else None
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments)  # some servers send the arguments as an object
        index = _get(call, "index")
        fragments.append(
            ToolCallFragment(
                index=position if index is None else int(index),
                id=_get(call, "id"),
                name=_get(function, "name") if function is not None else None,
                arguments=arguments,
            )
        )
    return ChunkDelta(
        text=_text(_get(delta, "content")),
        tool_calls=tuple(fragments),
        finish_reason=_get(choice, "finish_reason"),
        reasoning=_reasoning(delta),
        usage=usage,
    )


@dataclass
class ToolCall:
    """A complete tool call, once the model's turn has ended."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""

    def message(self) -> dict[str, Any]:
        """This call as it goes back to the model inside the assistant message."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments or "{}"},
        }


@dataclass
class ToolCallAccumulator:
    """Joins tool-call fragments by their `index`."""

    _calls: dict[int, ToolCall] = field(default_factory=dict)
    # Joined once at the end: appending to one string per fragment is quadratic (measured 21 s on
    # the event loop for 600 KB of arguments in 3-character fragments).
    _arguments: dict[int, list[str]] = field(default_factory=dict)

    def add(self, fragment: ToolCallFragment) -> None:
        """Merge one fragment into its call."""
        call = self._calls.setdefault(fragment.index, ToolCall(index=fragment.index))
        if fragment.id:
            call.id = fragment.id
        if fragment.name:
            call.name = fragment.name
        if fragment.arguments:
            self._arguments.setdefault(fragment.index, []).append(fragment.arguments)

    def calls(self) -> list[ToolCall]:
        """The calls in index order, each with an id."""
        result = [self._calls[i] for i in sorted(self._calls)]
        for call in result:
            call.id = call.id or f"call_{call.index}"
            call.arguments = "".join(self._arguments.get(call.index, ()))
        return result
