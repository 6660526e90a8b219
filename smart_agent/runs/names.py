"""Names that lead to runs (a client's own handle, such as an AI SDK chat id or a hash of a seed-004
session and question), kept by the run log so every instance sharing it finds the run; this is the
in-memory side, runs/redis_names.py the Redis one. What a name holds is the caller's: compared
whole, never parsed here."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from smart_agent.runs.log import TOMBSTONE_SECONDS

MAX_NAMES = 20_000
"""Names kept in memory at most; beyond, the oldest is forgotten before it expires."""
NAME_SECONDS = TOMBSTONE_SECONDS
"""How long a pointed name lasts: it outlives its run's retention, and readers check the run itself."""


class MemoryNames:
    """MemoryRunLog's names, each until its time is up."""

    _clock: Callable[[], float]
    _names: OrderedDict[str, tuple[str, float]]
    _max_names: int = MAX_NAMES

    async def point(self, name: str, run_id: str) -> None:
        """Let `name` lead to `run_id`, in place of whatever it held."""
        self._hold(name, run_id, NAME_SECONDS)

    async def pointed(self, name: str) -> str | None:
        """What `name` holds, or None."""
        held = self._names.get(name)
        return held[0] if held is not None and held[1] > self._clock() else None

    async def claim(self, name: str, value: str, ttl: float, replacing: str | None = None) -> str:
        """Let `name` hold `value` for `ttl` s unless it holds another value (other than
        `replacing`) already; returns what it holds now. Atomic (one event loop step)."""
        held = await self.pointed(name)
        if held is not None and held != replacing:
            return held
        self._hold(name, value, ttl)
        return value

    async def release(self, name: str, value: str) -> None:
        """Forget `name` if it still holds `value` (its run could not start)."""
        held = self._names.get(name)
        if held is not None and held[0] == value:
            del self._names[name]

    def _hold(self, name: str, value: str, ttl: float) -> None:
        self._names[name] = (value, self._clock() + ttl)
        self._names.move_to_end(name)
        while len(self._names) > self._max_names:
            self._names.popitem(last=False)
