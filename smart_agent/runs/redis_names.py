"""Names that lead to runs in Redis (RunLog.point, pointed, claim, release): a key per name, shared by
instances; runs/names.py is the in-memory side."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from smart_agent.runs.log import TOMBSTONE_SECONDS, RunLogUnavailableError
from smart_agent.runs.redis_keys import as_str

NAME_TTL_MS = round(TOMBSTONE_SECONDS * 1000)
"""A name outlives its run's retention: a reader checks the run itself, which may have expired."""
# Set the name to the value unless it already holds another one (one that is not `replacing`);
# either way answer what it holds now. One script, so two instances claiming at once agree.
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


class RedisNames:
    """RedisRunLog's names, kept apart so the log's module stays one job."""

    _redis: Redis
    _prefix: str

    async def point(self, name: str, run_id: str) -> None:
        """Let `name` lead to `run_id` (a day at most, renewed by each run it leads to)."""
        try:
            await self._redis.set(self._name_key(name), run_id, px=NAME_TTL_MS)
        except (RedisError, OSError) as exc:
            raise RunLogUnavailableError(f"Redis cannot be reached: {exc}") from exc

    async def pointed(self, name: str) -> str | None:
        """The run `name` leads to, or None."""
        try:
            raw = await self._redis.get(self._name_key(name))
        except (RedisError, OSError) as exc:
            raise RunLogUnavailableError(f"Redis cannot be reached: {exc}") from exc
        return None if raw is None else as_str(raw)

    async def claim(self, name: str, value: str, ttl: float, replacing: str | None = None) -> str:
        """See MemoryNames.claim (smart_agent/runs/names.py)."""
        args: list[str | int] = [value, max(1, round(ttl * 1000)), replacing or ""]
        try:
            held = await self._redis.register_script(_CLAIM)(keys=[self._name_key(name)], args=args)
        except (RedisError, OSError) as exc:
            raise RunLogUnavailableError(f"Redis cannot be reached: {exc}") from exc
        return as_str(held)

    async def release(self, name: str, value: str) -> None:
        """Forget `name` if it still holds `value`."""
        try:
            await self._redis.register_script(_RELEASE)(keys=[self._name_key(name)], args=[value])
        except (RedisError, OSError) as exc:
            raise RunLogUnavailableError(f"Redis cannot be reached: {exc}") from exc

    def _name_key(self, name: str) -> str:
        return f"{self._prefix}name:{name}"
