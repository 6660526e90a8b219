"""Names for runs (a client's own key, such as a hash of its session and question) kept next to
the run log, in this process or in the same Redis, so any instance finds the run a name stands for.
What a name holds is the caller's (a run id, maybe with more): compared whole, never parsed here."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from smart_agent.runs.log import RunLogUnavailableError

MAX_NAMES = 10_000
"""Names kept in memory at most; beyond, the oldest is forgotten before it expires."""

# Set the name to the run unless it already names another one (one that is not `replacing`);
# either way answer the run it names now. One script, so two instances claiming at once agree.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return current
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RunAliases(Protocol):
    """Names of runs, each for a bounded time; claiming one is atomic."""

    async def claim(self, name: str, value: str, ttl: float, replacing: str | None = None) -> str:
        """Let `name` hold `value` for `ttl` s unless it holds another value (other than
        `replacing`) already; returns what it holds now."""
        ...

    async def release(self, name: str, value: str) -> None:
        """Forget `name` if it still holds `value` (its run could not start)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryRunAliases:
    """Names in this process's memory, for the in-memory run log."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_names: int = MAX_NAMES) -> None:
        self._clock = clock
        self._max = max_names
        self._names: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def claim(self, name: str, value: str, ttl: float, replacing: str | None = None) -> str:
        """See RunAliases.claim."""
        now = self._clock()
        held = self._names.get(name)
        if held is not None and held[1] > now and held[0] != replacing:
            return held[0]
        self._names[name] = (value, now + ttl)
        self._names.move_to_end(name)
        while len(self._names) > self._max:
            self._names.popitem(last=False)
        return value

    async def release(self, name: str, value: str) -> None:
        """See RunAliases.release."""
        held = self._names.get(name)
        if held is not None and held[0] == value:
            del self._names[name]

    async def aclose(self) -> None:
        """Nothing to release."""


class RedisRunAliases:
    """Names as keys with a TTL in the Redis of the run log, so every instance sees them."""

    def __init__(self, url: str, prefix: str) -> None:
        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=5.0)
        self._prefix = f"{prefix}alias:"
        self._claim = self._redis.register_script(_CLAIM)
        self._release = self._redis.register_script(_RELEASE)

    async def claim(self, name: str, value: str, ttl: float, replacing: str | None = None) -> str:
        """See RunAliases.claim."""
        args: list[str | int] = [value, max(1, round(ttl * 1000)), replacing or ""]
        try:
            held = await self._claim(keys=[self._prefix + name], args=args)
        except RedisError as exc:
            raise RunLogUnavailableError(f"Redis: {type(exc).__name__}") from None
        return held.decode() if isinstance(held, bytes) else str(held)

    async def release(self, name: str, value: str) -> None:
        """See RunAliases.release."""
        try:
            await self._release(keys=[self._prefix + name], args=[value])
        except RedisError as exc:
            raise RunLogUnavailableError(f"Redis: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        """Close the connections."""
        await self._redis.aclose()
