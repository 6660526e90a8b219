"""The page-wide pacer: one budget of stream events per second shared by every stream of a turn."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from smart_agent.streaming.clock import Clock, MonotonicClock

HOLD_POLL = 0.025  # seconds between two looks at a held page


class Pacer:
    """Grants stream events at most `max_events_per_second` per second in total, first come first served.

    Each stream's batcher asks for a slot before a flush instead of keeping its own rate cap, so
    however many streams a turn has, the page gets no more events per second than one reply would.
    Waiting streams are served in the order they started waiting (the one that waited longest goes
    first). A stream's first event is granted at once but counted, so the streams after it wait
    a little longer: a new stream shows its first words at once and the budget still holds.

    With `spacing` (e.g. a `RenderControl`'s), the gap between grants is read from it at each grant
    instead of being `1 / max_events_per_second`, so the page's render reports can set the pace.
    While `held()` (a `RenderControl`'s: the page fell silent) no slot is granted; the waiting
    streams then go in order as usual, each flushing all it buffered meanwhile as one event.
    Events sent at once (a stream's first, its last) are not held.
    """

    def __init__(
        self,
        max_events_per_second: float,
        clock: Clock | None = None,
        spacing: Callable[[], float] | None = None,
        held: Callable[[], bool] | None = None,
    ) -> None:
        if max_events_per_second <= 0:
            raise ValueError("max_events_per_second must be > 0")
        fixed = 1.0 / max_events_per_second
        self._spacing = spacing or (lambda: fixed)
        self._held = held or (lambda: False)
        self._clock = clock or MonotonicClock()
        self._next_free = float("-inf")
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._dispatcher: asyncio.Task[None] | None = None
        self.granted = 0

    @property
    def spacing(self) -> float:
        """The gap between two grants now, in seconds."""
        return self._spacing()

    @property
    def waiting(self) -> int:
        """Streams waiting for a slot now."""
        return sum(1 for future in self._waiting if not future.done())

    @property
    def held(self) -> bool:
        """Whether the page is held now (it fell silent): no slot is granted."""
        return self._held()

    def grant_now(self) -> None:
        """Count an event sent at once (a stream's first), pushing the next slot back by one spacing."""
        now = self._clock.now()
        self._next_free = max(self._next_free, now) + self.spacing
        self.granted += 1

    def try_acquire(self) -> bool:
        """Take a slot if one is free now and nobody is waiting for it; never waits."""
        if self.waiting or self._clock.now() < self._next_free or self._held():
            return False
        self.grant_now()
        return True

    async def acquire(self) -> None:
        """Wait for this stream's turn; cancelling the wait gives the place up."""
        if self.try_acquire():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())
        await future

    def close(self) -> None:
        """Stop granting: every waiting stream is cancelled (the turn is over or stopped)."""
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            dispatcher.cancel()
        while self._waiting:
            self._waiting.popleft().cancel()

    async def _dispatch(self) -> None:
        while True:
            while self._waiting and self._waiting[0].done():  # the stream gave its place up
                self._waiting.popleft()
            if not self._waiting:
                return
            delay = HOLD_POLL if self._held() else self._next_free - self._clock.now()
            if delay > 0:
                await self._clock.sleep(delay)
                continue  # the queue may have changed while sleeping
            future = self._waiting.popleft()
            if not future.done():
                self.grant_now()
                future.set_result(None)
