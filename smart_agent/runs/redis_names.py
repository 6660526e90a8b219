"""Names that lead to runs in Redis (RunLog.point and pointed): a key per name, shared by instances."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from smart_agent.runs.log import TOMBSTONE_SECONDS, RunLogUnavailableError
from smart_agent.runs.redis_keys import as_str

NAME_TTL_MS = round(TOMBSTONE_SECONDS * 1000)
"""A name outlives its run's retention: a reader checks the run itself, which may have expired."""


class RedisNames:
    """RedisRunLog's names, kept apart so the log's module stays one job."""

    _redis: Redis
    _prefix: str

    async def point(self, name: str, run_id: str) -> None:
        """Let `name` lead to `run_id` (a day at most, renewed by each run it leads to)."""
        try:
            await self._redis.set(f"{self._prefix}name:{name}", run_id, px=NAME_TTL_MS)
        except (RedisError, OSError) as exc:
            raise RunLogUnavailableError(f"Redis cannot be reached: {exc}") from exc

    async def pointed(self, name: str) -> str | None:
        """The run `name` leads to, or None."""
        try:
            raw = await self._redis.get(f"{self._prefix}name:{name}")
        except (RedisError, OSError) as exc:
            raise RunLogUnavailableError(f"Redis cannot be reached: {exc}") from exc
        return None if raw is None else as_str(raw)
