"""The context budget: estimate tokens without a tokenizer and leave out the oldest turns so a
request fits the model's context with room for the reply."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from smart_agent.config import Settings
from smart_agent.errors import ModelError

Message = dict[str, Any]

DEFAULT_CONTEXT_TOKENS = 8192
EMBEDDED_CONTEXT_TOKENS = 4096  # each slot of the embedded llama.cpp server (its n_ctx: this times the slots)
# No tokenizer can be downloaded, so tokens are estimated, erring on the high side: a token per 3
# ASCII letters or spaces, a token per digit and per ASCII punctuation mark, and two tokens per 3
# bytes of other UTF-8 text, plus each message's framing. Measured against SmolLM2's tokenizer:
# English prose 14 real tokens for 27 estimated, digits 100 for 100, JSON punctuation 150 for 217,
# Japanese 90 for 100. When a server still refuses a request, the agent sends less and retries.
LETTERS_PER_TOKEN = 3
MESSAGE_OVERHEAD_TOKENS = 8
REPLY_SHARE = 4  # a quarter of the context stays free for the reply ...
MAX_REPLY_RESERVE = 4096  # ... but never more than this many tokens
IMAGE_TOKENS = 1_100  # an image part (scaled to 2048 px): OpenAI's high detail counts 765-1,105
_LETTERS_AND_SPACES = bytes(c for c in range(128) if chr(c).isalpha() or chr(c).isspace())


def context_size(settings: Settings) -> int:
    """The model's context in tokens: SMART_AGENT_CONTEXT_TOKENS (set to a slot's context of the
    embedded server when that server is used), else DEFAULT_CONTEXT_TOKENS."""
    return settings.context_tokens or DEFAULT_CONTEXT_TOKENS


def estimate_tokens(text: str) -> int:
    """A conservative token count for `text` (see LETTERS_PER_TOKEN)."""
    if not text:
        return 0
    ascii_part = text.encode("ascii", "ignore")
    other_bytes = len(text.encode("utf-8", "surrogatepass")) - len(ascii_part)
    marks = len(ascii_part.translate(None, _LETTERS_AND_SPACES))  # digits, punctuation
    letters = len(ascii_part) - marks
    return math.ceil(letters / LETTERS_PER_TOKEN + marks + other_bytes * 2 / 3)


def message_tokens(message: Message) -> int:
    """The estimated tokens one chat message takes in a request."""
    tokens = MESSAGE_OVERHEAD_TOKENS
    content = message.get("content")
    if isinstance(content, str):
        tokens += estimate_tokens(content)
    elif isinstance(content, list):  # content parts: text, and images at a flat rate
        for part in content:
            if isinstance(part, dict) and part.get("type") == "image_url":
                tokens += IMAGE_TOKENS
            else:
                tokens += estimate_tokens(str(part.get("text", "")) if isinstance(part, dict) else str(part))
    elif content is not None:
        tokens += estimate_tokens(json.dumps(content))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        tokens += MESSAGE_OVERHEAD_TOKENS + estimate_tokens(str(function.get("name") or ""))
        tokens += estimate_tokens(str(function.get("arguments") or ""))
    return tokens


def tools_tokens(tool_specs: Sequence[Message]) -> int:
    """The estimated tokens the tool descriptions take in every request."""
    return estimate_tokens(json.dumps(list(tool_specs))) if tool_specs else 0


def reply_reserve(context_tokens: int) -> int:
    """Tokens kept free for the model's reply."""
    return min(context_tokens // REPLY_SHARE, MAX_REPLY_RESERVE)


def prompt_budget(context_tokens: int) -> int:
    """Tokens a request's messages (and tool descriptions) may take."""
    return context_tokens - reply_reserve(context_tokens)


def input_chars_that_fit(context_tokens: int, fixed_tokens: int = 0) -> int:
    """The longest user message (in plain-text characters) that fits the context by the estimate,
    next to `fixed_tokens` (system prompt, tool descriptions)."""
    room = prompt_budget(context_tokens) - fixed_tokens - MESSAGE_OVERHEAD_TOKENS
    return max(1, room * LETTERS_PER_TOKEN)


def input_limit(settings: Settings, tool_specs: Sequence[Message] = ()) -> int:
    """The longest user message accepted: SMART_AGENT_MAX_INPUT_CHARS, else what fits the context
    next to the system prompt and the tool descriptions."""
    if settings.max_input_chars is not None:
        return settings.max_input_chars
    fixed = tools_tokens(tool_specs)
    if settings.system_prompt:
        fixed += message_tokens({"role": "system", "content": settings.system_prompt})
    return input_chars_that_fit(context_size(settings), fixed)


def input_refusal(text: str, settings: Settings, tool_specs: Sequence[Message] = ()) -> str | None:
    """Why a user message is refused before it reaches the model, or None when it is accepted."""
    limit = input_limit(settings, tool_specs)
    if len(text) <= limit:
        return None
    why = (
        "the limit this app was started with"
        if settings.max_input_chars is not None
        else f"about what fits the model's context of {context_size(settings):,} tokens"
    )
    return (
        f"Your message has {len(text):,} characters; the limit is {limit:,} ({why}). "
        "It was not sent to the model: shorten it, or send it in parts."
    )


class TurnTooLongError(ModelError):
    """The current turn does not fit the context even with every earlier message left out."""

    def __init__(
        self, needed: int, budget: int, *, context_tokens: int | None = None, refused: bool = False
    ) -> None:
        model = (
            f"the model's context ({context_tokens:,} tokens)" if context_tokens else "the model's context"
        )
        why = (
            "the model server refused it as too long"
            if refused
            else f"about {needed:,} tokens by smart-agent's estimate, and {budget:,} fit in a request"
        )
        super().__init__(
            f"This message is too long for {model}: {why}, even with all earlier "
            "messages left out. It was not kept in the conversation; send a shorter message."
        )
        self.needed = needed
        self.budget = budget


@dataclass(frozen=True)
class Fitted:
    """The messages to send, how many older ones were left out, their estimated size, and the
    size of what must always be sent (system messages and the current turn)."""

    messages: list[Message]
    dropped: int
    tokens: int
    required: int


def _turns(messages: Sequence[Message]) -> list[list[Message]]:
    """Split messages into turns, each starting at a user message (tool calls stay with their
    results, since both belong to the turn of the user message before them)."""
    turns: list[list[Message]] = []
    for message in messages:
        if message.get("role") == "user" or not turns:
            turns.append([])
        turns[-1].append(message)
    return turns


def fit(messages: Sequence[Message], budget: int) -> Fitted:
    """The leading system messages, the current turn, and as many of the latest earlier turns as
    fit in `budget` tokens; raises TurnTooLongError when even the first two do not fit."""
    start = 0
    while start < len(messages) and messages[start].get("role") == "system":
        start += 1
    head = list(messages[:start])
    turns = _turns(messages[start:])
    if not turns:
        size = sum(map(message_tokens, head))
        return Fitted(head, 0, size, size)
    required = needed = sum(map(message_tokens, head)) + sum(map(message_tokens, turns[-1]))
    if needed > budget:
        raise TurnTooLongError(needed, budget)
    kept: list[list[Message]] = [turns[-1]]
    for turn in reversed(turns[:-1]):
        size = sum(map(message_tokens, turn))
        if needed + size > budget:
            break  # the oldest go first; the history sent stays one unbroken stretch
        needed += size
        kept.append(turn)
    sent = head + [message for turn in reversed(kept) for message in turn]
    return Fitted(sent, len(messages) - len(sent), needed, required)


def is_context_error(exc: BaseException) -> bool:
    """True when a server refused a request for its length (OpenAI's `context_length_exceeded`;
    llama.cpp's server says "exceeds the available context size" (`exceed_context_size_error`),
    llama-cpp-python "exceed context window"; others name the "maximum context length")."""
    if getattr(exc, "code", None) == "context_length_exceeded":
        return True
    text = str(exc).lower()
    return any(
        phrase in text
        for phrase in (
            "context_length_exceeded",
            "exceed_context_size_error",
            "exceeds the available context size",
            "exceed context window",
            "maximum context length",
        )
    )
