"""The run log: where a run's events go and where every reader reads them from, live or later."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from smart_agent.runs.events import RunEvent, RunStatus

MAX_RETAINED_EVENTS = 5_000
"""Events kept per run; a reader resuming from before them gets a snapshot of the text and reasoning."""
EXPIRED_RUNS_REMEMBERED = 10_000
"""Ended runs whose ids are remembered after their retention, so a late reader learns why."""
TOMBSTONE_SECONDS = 24 * 3600.0


class RunLogError(Exception):
    """Base of the run log's errors."""


class UnknownRunError(RunLogError):
    """No run has this id (or it is not visible to the caller)."""


class RunExpiredError(RunLogError):
    """The run existed but its retention passed: its events are gone."""


class RunLimitError(RunLogError):
    """The owner already has as many running runs as allowed."""

    def __init__(self, running: int, limit: int) -> None:
        super().__init__(f"{running} runs are running for this key; at most {limit} may run at once")
        self.running = running
        self.limit = limit


class RunLogUnavailableError(RunLogError):
    """The log's store (Redis) cannot be reached; the request may be retried later."""


class ReaderTooSlowError(RunLogError):
    """A reader fell so far behind that its bounded buffer overflowed; it may resume by id."""


class InvalidEventIdError(RunLogError, ValueError):
    """A resume id that cannot be an id of this log."""


@dataclass
class RunRecord:
    """What is known of a run besides its events."""

    id: str
    owner: str
    status: RunStatus = "running"
    text: str = ""
    reasoning: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    ended: float | None = None


CancelHandler = Callable[[str], None]
"""Called with a run's id when some instance asked to cancel it."""


class RunLog(Protocol):
    """One interface, two homes: in this process's memory, or in Redis shared by many instances.

    Both are held to the same contract tests (tests/test_run_log_contract.py).
    """

    async def create(self, run_id: str, owner: str, max_running: int) -> RunRecord:
        """Register a new running run produced by this process; RunLimitError when `owner`
        already has `max_running` running runs (checked and registered atomically)."""
        ...

    async def append(self, run_id: str, kind: str, data: dict[str, Any]) -> str:
        """Add one non-terminal event and return its id; `token`, `reasoning` and `reasoning_moved`
        events change the run's text and reasoning as `events.fold` says."""
        ...

    async def finish(
        self, run_id: str, kind: str, data: dict[str, Any], usage: dict[str, Any] | None = None
    ) -> str | None:
        """End the run with its terminal event (`done` or `error`) and return that event's id,
        or None when it had already ended (the first terminal event wins, once)."""
        ...

    async def get(self, run_id: str) -> RunRecord:
        """The run's record; UnknownRunError, or RunExpiredError past its retention."""
        ...

    def read(self, run_id: str, after: str | None = None) -> AsyncGenerator[RunEvent, None]:
        """The run's events strictly after id `after` (from the start when None), then live ones,
        ending with its terminal event. When `after` is older than the retained events, a
        `snapshot` of the text and reasoning up to the oldest retained event comes first. Raises
        UnknownRunError, RunExpiredError, InvalidEventIdError or ReaderTooSlowError."""
        ...

    async def check_id(self, run_id: str, event_id: str) -> None:
        """InvalidEventIdError unless `event_id` could be an id of this run's events (so a bad
        resume id gets a 400 before the event stream starts)."""
        ...

    async def request_cancel(self, run_id: str) -> None:
        """Ask the process producing the run to cancel it (possibly another instance)."""
        ...

    def on_cancel_request(self, handler: CancelHandler) -> None:
        """Call `handler` with the id of each run of this process that some instance asked to cancel."""
        ...

    async def running(self, owner: str) -> int:
        """How many of `owner`'s runs are running."""
        ...

    async def point(self, name: str, run_id: str) -> None:
        """Let `name` (a client's own handle, such as an AI SDK chat id) lead to `run_id`, in place of
        the run it led to before; any instance sharing the log then finds the run by its name."""
        ...

    async def pointed(self, name: str) -> str | None:
        """The run `name` leads to (it may have ended or expired since), or None."""
        ...

    async def claim(self, name: str, value: str, ttl: float, replacing: str | None = None) -> str:
        """Let `name` hold `value` for `ttl` s unless it holds another value (other than
        `replacing`) already; returns what it holds now. Atomic across instances."""
        ...

    async def release(self, name: str, value: str) -> None:
        """Forget `name` if it still holds `value` (its run could not start)."""
        ...

    async def aclose(self) -> None:
        """Release connections and background tasks."""
        ...
