"""Test doubles: a manual clock and a message that records what Chainlit would send."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field


class FakeClock:
    """A clock that moves only when a test advances it."""

    def __init__(self) -> None:
        self.t = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._ids = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._ids), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its due time and letting it run."""
        target = self.t + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            due, _, future = heapq.heappop(self._sleepers)
            self.t = max(self.t, due)
            if not future.done():
                future.set_result(None)
            await settle()
        self.t = target
        await settle()


async def settle() -> None:
    """Let every task that is ready run until none is (no wall-clock waiting)."""
    for _ in range(20):
        await asyncio.sleep(0)


class EmitError(Exception):
    """A scripted failure of the UI transport."""


@dataclass
class RecordingMessage:
    """Behaves like cl.Message for streaming, recording each UI event instead of emitting it."""

    content: str = ""
    author: str = "Assistant"
    streaming: bool = False
    events: list[tuple[str, str, bool]] = field(default_factory=list)
    fail_next: int = 0
    clock: FakeClock | None = None
    event_times: list[float] = field(default_factory=list)
    sent_at: float | None = None

    async def stream_token(self, token: str, is_sequence: bool = False) -> None:
        if not token:
            return
        self.content = token if is_sequence else self.content + token
        await asyncio.sleep(0)  # a real emit yields to the loop
        if self.fail_next:
            self.fail_next -= 1
            raise EmitError("socket write failed")
        if self.streaming:
            self.events.append(("stream_token", token, is_sequence))
        else:  # Chainlit's stream_start carries the whole message so far
            self.streaming = True
            self.events.append(("stream_start", self.content, True))
        if self.clock is not None:
            self.event_times.append(self.clock.now())

    async def send(self) -> RecordingMessage:
        self.streaming = False
        self.events.append(("send", self.content, True))
        if self.clock is not None:
            self.sent_at = self.clock.now()
        return self

    async def update(self) -> bool:
        self.events.append(("update", self.content, True))
        return True

    async def remove(self) -> bool:
        self.events.append(("remove", "", False))
        return True

    def browser_text(self) -> str:
        """What the browser shows after applying every event in order."""
        text = ""
        for kind, payload, replaces in self.events:
            if kind in {"stream_start", "stream_token"}:
                text = payload if replaces else text + payload
            elif kind in {"send", "update"}:
                text = payload
        return text

    def stream_events(self) -> int:
        return sum(1 for kind, _, _ in self.events if kind in {"stream_start", "stream_token"})


class NoOpMessage:
    """A message sink that keeps nothing, so only the streaming code's own work costs CPU."""

    content = ""

    async def stream_token(self, token: str, is_sequence: bool = False) -> None:
        return None

    async def send(self) -> None:
        return None

    async def update(self) -> None:
        return None

    async def remove(self) -> None:
        return None
