"""The time source the batcher waits on, swappable in tests."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time in seconds and a way to wait for it to pass."""

    def now(self) -> float:
        """Current monotonic time in seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds` to pass."""
        ...


class MonotonicClock:
    """The real clock: time.monotonic and asyncio.sleep."""

    def now(self) -> float:
        """Current monotonic time in seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds` to pass."""
        await asyncio.sleep(seconds)
