"""Makes run logs of either home for the contract tests, and reads them with bounded waits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

from smart_agent.runs.events import TERMINAL, RunEvent
from smart_agent.runs.log import MAX_RETAINED_EVENTS, RunLog
from smart_agent.runs.memory import MemoryRunLog
from smart_agent.runs.redis_dispatch import READER_BUFFER
from smart_agent.runs.redis_log import RedisRunLog

WAIT = 10.0
"""The bound on any single wait for an event in these tests."""


class Logs:
    """Logs of one home that share one store: one MemoryRunLog, or one Redis key prefix."""

    def __init__(self, kind: str, redis_url: str | None) -> None:
        self.kind = kind
        self._url = redis_url
        self._opened: list[RunLog] = []
        self._stores: dict[int, dict[str, Any]] = {}  # id(log) -> its prefix and settings

    def new(
        self,
        *,
        retention: float = 60.0,
        max_events: int = MAX_RETAINED_EVENTS,
        reader_buffer: int = READER_BUFFER,
        lease_seconds: float = 3.0,
    ) -> RunLog:
        """A log on a store of its own (a new key prefix for Redis)."""
        log: RunLog
        if self.kind == "memory":
            log = MemoryRunLog(retention, max_events=max_events)
        else:
            log = self._redis(
                prefix=f"test-{uuid.uuid4().hex[:12]}:",
                retention=retention,
                max_events=max_events,
                reader_buffer=reader_buffer,
                lease_seconds=lease_seconds,
            )
        self._opened.append(log)
        return log

    def peer(self, log: RunLog) -> RunLog:
        """Another instance on the same store (the same object in memory: one process only)."""
        if isinstance(log, MemoryRunLog):
            return log
        peer = self._redis(**self._stores[id(log)])
        self._opened.append(peer)
        return peer

    def _redis(self, **store: Any) -> RedisRunLog:
        assert self._url is not None
        log = RedisRunLog(self._url, **store)
        self._stores[id(log)] = store
        return log

    @staticmethod
    def next_id(event_id: str) -> str:
        """An id just after `event_id` in this log's id format (no event has it yet)."""
        if "-" in event_id:
            ms, _, seq = event_id.partition("-")
            return f"{ms}-{int(seq) + 1}"
        return str(int(event_id) + 1)

    async def aclose(self) -> None:
        """Close every log made."""
        for log in reversed(self._opened):
            await log.aclose()


async def take(events: AsyncIterator[RunEvent], count: int) -> list[RunEvent]:
    """The next `count` events, each awaited at most WAIT seconds."""
    return [await asyncio.wait_for(anext(events), WAIT) for _ in range(count)]


async def read_to_end(events: AsyncIterator[RunEvent]) -> list[RunEvent]:
    """Every event through the terminal one (or until the stream stops), each within WAIT."""
    got: list[RunEvent] = []
    while True:
        try:
            event = await asyncio.wait_for(anext(events), WAIT)
        except StopAsyncIteration:
            return got
        got.append(event)
        if event.kind in TERMINAL:
            return got
