"""The run log in this process's memory: the default, for one instance."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any

from smart_agent.runs.events import SNAPSHOT, TERMINAL, RunEvent, fold, status_of
from smart_agent.runs.log import (
    EXPIRED_RUNS_REMEMBERED,
    MAX_RETAINED_EVENTS,
    TOMBSTONE_SECONDS,
    CancelHandler,
    InvalidEventIdError,
    ReaderTooSlowError,
    RunExpiredError,
    RunLimitError,
    RunRecord,
    UnknownRunError,
)
from smart_agent.runs.names import MemoryNames

MAX_RUNS_KEPT = 10_000
"""Ended runs kept in memory at most; beyond, the oldest is forgotten before its retention ends."""


@dataclass
class _Run:
    record: RunRecord
    events: deque[tuple[int, RunEvent]] = field(default_factory=deque)
    next_seq: int = 1
    # The text and reasoning up to the oldest retained event: its events folded as they leave.
    trimmed_text: str = ""
    trimmed_reasoning: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    expires: float | None = None

    @property
    def first_seq(self) -> int:
        return self.events[0][0] if self.events else self.next_seq

    def notify(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class MemoryRunLog(MemoryNames):
    """Runs and their events in a dict; ids are decimal sequence numbers per run."""

    def __init__(
        self,
        retention: float,
        *,
        max_events: int = MAX_RETAINED_EVENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._retention = retention
        self._max_events = max_events
        self._clock = clock
        self._runs: dict[str, _Run] = {}
        self._expired: OrderedDict[str, float] = OrderedDict()
        self._cancel_handlers: list[CancelHandler] = []
        self._names: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def create(self, run_id: str, owner: str, max_running: int) -> RunRecord:
        """Register a new running run; RunLimitError when `owner` has `max_running` running."""
        self._sweep()
        running = await self.running(owner)
        if running >= max_running:
            raise RunLimitError(running, max_running)
        if run_id in self._runs or run_id in self._expired:
            raise ValueError(f"run id {run_id!r} is taken")
        record = RunRecord(id=run_id, owner=owner, created=time.time())
        self._runs[run_id] = _Run(record)
        return record

    async def append(self, run_id: str, kind: str, data: dict[str, Any]) -> str:
        """Add one non-terminal event; returns its id."""
        run = self._live(run_id)
        return self._add(run, kind, data)

    async def finish(
        self, run_id: str, kind: str, data: dict[str, Any], usage: dict[str, Any] | None = None
    ) -> str | None:
        """End the run with its terminal event, once; None if it had already ended."""
        run = self._runs.get(run_id)
        if run is None or run.record.status != "running":
            return None
        event_id = self._add(run, kind, data)
        run.record.status = status_of(kind, data)
        run.record.usage = dict(usage or {})
        run.record.ended = time.time()
        run.expires = self._clock() + self._retention
        self._forget_oldest_ended()
        return event_id

    async def get(self, run_id: str) -> RunRecord:
        """The run's record."""
        self._sweep()
        return self._find(run_id).record

    async def read(self, run_id: str, after: str | None = None) -> AsyncGenerator[RunEvent, None]:
        """Events strictly after `after`, then live ones, through the terminal event."""
        self._sweep()
        run = self._find(run_id)
        seq = self._parse(run, after)
        if seq < run.first_seq - 1:
            # The events after `seq` are no longer all here: the text up to what is retained
            # replaces them (its id resumes right there).
            seq = run.first_seq - 1
            snapshot = {"text": run.trimmed_text, "reasoning": run.trimmed_reasoning}
            yield RunEvent(SNAPSHOT, snapshot, str(seq))
        while True:
            changed = run.changed
            # The position is looked up again after every yield: while the reader was away the
            # window may have moved, and an index taken before would skip events silently.
            while seq + 1 < run.next_seq:
                if seq + 1 < run.first_seq:
                    raise ReaderTooSlowError(f"the reader fell behind the {self._max_events} events kept")
                number, event = run.events[seq + 1 - run.first_seq]
                seq = number
                yield event
                if event.kind in TERMINAL:
                    return
            if run.record.status != "running":
                return  # the terminal event was consumed on an earlier pass
            await changed.wait()

    async def check_id(self, run_id: str, event_id: str) -> None:
        """InvalidEventIdError unless `event_id` is an id this run has given."""
        self._parse(self._find(run_id), event_id)

    async def request_cancel(self, run_id: str) -> None:
        """Cancel a running run (this process is the only producer)."""
        run = self._find(run_id)
        if run.record.status == "running":
            for handler in self._cancel_handlers:
                handler(run_id)

    def on_cancel_request(self, handler: CancelHandler) -> None:
        """Call `handler` with the id of each run asked to cancel."""
        self._cancel_handlers.append(handler)

    async def running(self, owner: str) -> int:
        """How many of `owner`'s runs are running."""
        return sum(
            1 for run in self._runs.values() if run.record.owner == owner and run.record.status == "running"
        )

    async def aclose(self) -> None:
        """Nothing to release; wake readers so they see the end."""
        for run in self._runs.values():
            run.notify()

    def _add(self, run: _Run, kind: str, data: dict[str, Any]) -> str:
        seq = run.next_seq
        run.next_seq += 1
        event = RunEvent(kind, data, str(seq))
        run.events.append((seq, event))
        record = run.record
        record.text, record.reasoning = fold(record.text, record.reasoning, kind, data)
        while len(run.events) > self._max_events:
            _, old = run.events.popleft()
            run.trimmed_text, run.trimmed_reasoning = fold(
                run.trimmed_text, run.trimmed_reasoning, old.kind, old.data
            )
        run.notify()
        return event.id or ""

    def _live(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is None or run.record.status != "running":
            raise UnknownRunError(f"no running run {run_id!r}")
        return run

    def _find(self, run_id: str) -> _Run:
        run = self._runs.get(run_id)
        if run is not None:
            return run
        if run_id in self._expired:
            raise RunExpiredError(f"run {run_id!r} ended more than {self._retention:g} s ago")
        raise UnknownRunError(f"no run {run_id!r}")

    @staticmethod
    def _parse(run: _Run, after: str | None) -> int:
        if after is None:
            return 0
        text = after.strip()
        # ASCII only: int() also takes other scripts' digits, which no id of ours has.
        if not (text.isascii() and text.isdigit()) or int(text) >= run.next_seq:
            raise InvalidEventIdError(f"{after!r} is not an event id of this run")
        return int(text)

    def _sweep(self) -> None:
        now = self._clock()
        for run_id in [
            key for key, run in self._runs.items() if run.expires is not None and run.expires <= now
        ]:
            del self._runs[run_id]
            self._remember_expired(run_id, now)
        while self._expired and next(iter(self._expired.values())) <= now:
            self._expired.popitem(last=False)

    def _forget_oldest_ended(self) -> None:
        ended = [run for run in self._runs.values() if run.expires is not None]
        for run in sorted(ended, key=lambda run: run.expires or 0.0)[: max(0, len(ended) - MAX_RUNS_KEPT)]:
            del self._runs[run.record.id]
            self._remember_expired(run.record.id, self._clock())

    def _remember_expired(self, run_id: str, now: float) -> None:
        self._expired[run_id] = now + TOMBSTONE_SECONDS
        while len(self._expired) > EXPIRED_RUNS_REMEMBERED:
            self._expired.popitem(last=False)
