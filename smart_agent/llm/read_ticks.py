"""Read flowing model streams once per tick, all together, when many flow at once: their sockets
are paused between ticks.

A model streaming 50 tokens a second sends a chunk every 20 ms, and each chunk woke the event loop,
fed aiohttp's buffer and resumed its reading task on its own. Paused, a socket keeps what arrives;
at the tick every paused socket is resumed at once, so one pass of the event loop reads them all,
several chunks each. That shared pass is what saves the CPU: a timer per socket saved almost nothing
(issue 28: 100 sessions at 50 tok/s, app CPU 13.1 s against 19.5 s; `docs/performance.md`). The page
shows a few updates a second, so a chunk held for at most a tick changes little of what it shows;
but a reply's last words would wait for the tick too (a reply's end showed ~75 ms later on the page),
so a server with few streams, a person chatting alone, reads each chunk as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Protocol

# How long a flowing stream's socket may wait before it is read again.
READ_TICK = 0.06
# A read within this long of the previous one means the stream is flowing. The first read of a
# stream, and the first after a pause in the model's output (a tool call, a long prefill), go at once.
FLOWING = 0.1
# Streams open at once from which the ticker pauses sockets: the CPU it saves is worth the later
# reply ends only for a server with many.
BUSY_STREAMS = 10


class Pausable(Protocol):
    """The part of an asyncio read transport the ticker uses."""

    def is_closing(self) -> bool: ...
    def is_reading(self) -> bool: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class ReadTicker:
    """Resumes every socket paused since its last tick, on one timer."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, tick: float = READ_TICK, busy_at: int = BUSY_STREAMS
    ) -> None:
        self._loop = loop
        self._tick = tick
        self._busy_at = busy_at
        self._paused: list[Pausable] = []
        self._timer: asyncio.TimerHandle | None = None
        self.streams = 0  # open now (`streaming()`)
        self.pauses = 0  # sockets paused so far

    @property
    def busy(self) -> bool:
        """Whether enough streams are open for pausing to pay."""
        return self.streams >= self._busy_at

    @contextlib.contextmanager
    def streaming(self) -> Iterator[None]:
        """Count a stream as open while inside."""
        self.streams += 1
        try:
            yield
        finally:
            self.streams -= 1

    def pause(self, transport: Pausable) -> None:
        """Stop reading `transport` until the tick; one not reading (paused by aiohttp's own flow
        control, or closing) is left as it is."""
        if transport.is_closing() or not transport.is_reading():
            return
        transport.pause_reading()
        self.pauses += 1
        self._paused.append(transport)
        if self._timer is None:
            self._timer = self._loop.call_later(self._tick, self._resume)

    def _resume(self) -> None:
        self._timer = None
        paused, self._paused = self._paused, []
        for transport in paused:
            if not transport.is_closing() and not transport.is_reading():
                transport.resume_reading()


_TICKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReadTicker] = weakref.WeakKeyDictionary()


def ticker() -> ReadTicker:
    """The running loop's ticker, shared by all its streams."""
    loop = asyncio.get_running_loop()
    found = _TICKERS.get(loop)
    if found is None:
        found = _TICKERS[loop] = ReadTicker(loop)
    return found


async def in_ticks(
    reads: AsyncIterator[bytes], pause: Callable[[], None], flowing: float = FLOWING
) -> AsyncIterator[bytes]:
    """`reads`, each given at once; after a read that follows the previous one within `flowing`
    seconds, `pause()` stops the socket until the tick, so the next read takes what the tick brought."""
    loop = asyncio.get_running_loop()
    last: float | None = None
    async for data in reads:
        now = loop.time()
        if last is not None and now - last < flowing:
            pause()
        last = now
        yield data
