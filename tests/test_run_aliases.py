"""Names of runs next to the run log: one contract for the in-memory and the Redis store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from smart_agent.runs.aliases import MemoryRunAliases, RedisRunAliases, RunAliases
from tests.fakes import FakeClock
from tests.redis_server import RedisServer


@pytest.fixture(params=["memory", "redis"])
async def aliases(request: pytest.FixtureRequest) -> AsyncIterator[RunAliases]:
    """Each store, the Redis one under a prefix of its own."""
    store: RunAliases
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        store = RedisRunAliases(server.url, f"test-{uuid.uuid4().hex}:")
    else:
        store = MemoryRunAliases()
    try:
        yield store
    finally:
        await store.aclose()


async def test_claim_when_the_name_is_free_then_it_holds_the_value(aliases: RunAliases) -> None:
    assert await aliases.claim("n", "run_a", 60) == "run_a"
    assert await aliases.claim("n", "run_b", 60) == "run_a", "the first claim wins"


async def test_claim_when_replacing_what_it_holds_then_the_new_value(aliases: RunAliases) -> None:
    await aliases.claim("n", "run_a", 60)
    assert await aliases.claim("n", "run_b", 60, replacing="run_x") == "run_a"
    assert await aliases.claim("n", "run_b", 60, replacing="run_a") == "run_b"


async def test_claim_when_many_race_then_all_agree_on_one(aliases: RunAliases) -> None:
    held = await asyncio.gather(*(aliases.claim("race", f"run_{i}", 60) for i in range(20)))
    assert len(set(held)) == 1


async def test_release_when_it_holds_another_value_then_kept(aliases: RunAliases) -> None:
    await aliases.claim("n", "run_a", 60)
    await aliases.release("n", "run_b")
    assert await aliases.claim("n", "run_c", 60) == "run_a"
    await aliases.release("n", "run_a")
    assert await aliases.claim("n", "run_c", 60) == "run_c"


async def test_memory_claim_when_the_ttl_passed_then_the_name_is_free() -> None:
    clock = FakeClock()
    aliases = MemoryRunAliases(clock.now)
    await aliases.claim("n", "run_a", 10)
    clock.t += 9.9
    assert await aliases.claim("n", "run_b", 10) == "run_a"
    clock.t += 0.2
    assert await aliases.claim("n", "run_b", 10) == "run_b"


async def test_memory_names_when_beyond_the_bound_then_the_oldest_forgotten() -> None:
    aliases = MemoryRunAliases(max_names=2)
    for name in ("a", "b", "c"):
        await aliases.claim(name, f"run_{name}", 60)
    assert await aliases.claim("a", "run_new", 60) == "run_new"
    assert await aliases.claim("c", "run_new", 60) == "run_c"


async def test_redis_claim_when_set_then_the_key_expires_after_the_ttl(redis_server: RedisServer) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    aliases = RedisRunAliases(redis_server.url, prefix)
    client: Redis = Redis.from_url(redis_server.url)
    try:
        await aliases.claim("n", "run_a", 30)
        assert 29_000 < await client.pttl(f"{prefix}alias:n") <= 30_000
    finally:
        await client.aclose()
        await aliases.aclose()
