"""The typed events an agent turn yields; UI code only consumes them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextDelta:
    """Reply text, to be shown at once."""

    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """The model's thinking, shown apart from the answer and never sent back to the model."""

    text: str


@dataclass(frozen=True)
class ReasoningMoved:
    """The last `chars` characters of the turn's text so far were thinking: a reply whose `<think>`
    was in the prompt ended its thinking with a lone `</think>` (llm/think.py)."""

    chars: int


@dataclass(frozen=True)
class UsageReported:
    """The server's own token counts for one model request of the turn."""

    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True)
class Notice:
    """Something the user should know about the turn that is not a failure."""

    message: str


@dataclass(frozen=True)
class ToolCallStarted:
    """The model asked for a tool; it runs now."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCallFinished:
    """A tool returned (or failed); its result goes back to the model."""

    call_id: str
    name: str
    arguments: str
    result: str
    is_error: bool


@dataclass(frozen=True)
class HistoryTrimmed:
    """The oldest `dropped` messages were left out of the request so it fits the model's context."""

    dropped: int


@dataclass(frozen=True)
class ReplyDone:
    """The model answered in text; the turn is over."""

    text: str
    tool_rounds: int
    finish_reason: str = "stop"


@dataclass(frozen=True)
class ReplyFailed:
    """The turn ended early; `message` is written for the user; `code` says why, for API clients."""

    message: str
    code: str = "model_error"


AgentEvent = (
    TextDelta
    | ReasoningDelta
    | ReasoningMoved
    | UsageReported
    | Notice
    | ToolCallStarted
    | ToolCallFinished
    | HistoryTrimmed
    | ReplyDone
    | ReplyFailed
)
