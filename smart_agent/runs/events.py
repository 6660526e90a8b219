"""The events of a run as its readers get them: an SSE event name, JSON data and the log's id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

TOKEN: Final = "token"
REASONING: Final = "reasoning"
"""The model's thinking, in deltas like `token`'s: data {"text": ...}."""
REASONING_MOVED: Final = "reasoning_moved"
"""Data {"chars": N}: the last N characters of the run's text so far were thinking; they move to its
reasoning (a reply whose `<think>` was in the prompt ended thinking with a lone `</think>`)."""
NOTICE: Final = "notice"
"""Data {"message": ...}: something to tell the user that is not an error."""
TOOL_CALL: Final = "tool_call"
TOOL_RESULT: Final = "tool_result"
PROGRESS: Final = "progress"
DONE: Final = "done"
ERROR: Final = "error"
SNAPSHOT: Final = "snapshot"
"""Data {"text": ..., "reasoning": ...}: the run's text and reasoning up to the event it stands for."""
HEARTBEAT: Final = "heartbeat"
TERMINAL: Final = frozenset({DONE, ERROR})
"""Exactly one of these ends every run's stream."""
DELTAS: Final = frozenset({TOKEN, REASONING})
"""The kinds whose text extends the run's text or reasoning."""

RunStatus = Literal["running", "done", "error", "cancelled"]

# The `code` of an `error` event.
CANCELLED: Final = "cancelled"
MODEL_ERROR: Final = "model_error"
PRODUCER_LOST: Final = "producer_lost"
LIMIT_EXCEEDED: Final = "limit_exceeded"
REPLAY_WINDOW_EXCEEDED: Final = "replay_window_exceeded"
INTERNAL_ERROR: Final = "internal_error"

# Whether starting the same run again may succeed.
RETRYABLE: Final = {
    CANCELLED: False,
    MODEL_ERROR: True,
    PRODUCER_LOST: True,
    LIMIT_EXCEEDED: False,
    REPLAY_WINDOW_EXCEEDED: False,
    INTERNAL_ERROR: True,
}


@dataclass(frozen=True)
class RunEvent:
    """One event of a run; `id` is the log's (None only for heartbeats)."""

    kind: str
    data: dict[str, Any]
    id: str | None = None


def error_data(code: str, message: str) -> dict[str, Any]:
    """The data of an `error` event with this code."""
    return {"code": code, "message": message, "retryable": RETRYABLE.get(code, False)}


def status_of(kind: str, data: dict[str, Any]) -> RunStatus:
    """The run's status once its terminal event is (`kind`, `data`)."""
    if kind == DONE:
        return "done"
    return "cancelled" if data.get("code") == CANCELLED else "error"


def fold(text: str, reasoning: str, kind: str, data: dict[str, Any]) -> tuple[str, str]:
    """The run's (text, reasoning) once one more event is applied: what every reader of the log does."""
    if kind == TOKEN:
        return text + data["text"], reasoning
    if kind == REASONING:
        return text, reasoning + data["text"]
    if kind == REASONING_MOVED:
        kept = max(0, len(text) - int(data["chars"]))
        return text[:kept], reasoning + text[kept:]
    if kind == SNAPSHOT:
        return data["text"], data.get("reasoning", "")
    return text, reasoning
