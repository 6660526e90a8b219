"""The events of a run as its readers get them: an SSE event name, JSON data and the log's id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

TOKEN: Final = "token"
TOOL_CALL: Final = "tool_call"
TOOL_RESULT: Final = "tool_result"
PROGRESS: Final = "progress"
DONE: Final = "done"
ERROR: Final = "error"
SNAPSHOT: Final = "snapshot"
HEARTBEAT: Final = "heartbeat"
TERMINAL: Final = frozenset({DONE, ERROR})
"""Exactly one of these ends every run's stream."""

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
