"""Names that lead to runs: one contract for the in-memory and the Redis run log, read from peers."""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from smart_agent.runs.log import RunLog
from smart_agent.runs.memory import MemoryRunLog
from smart_agent.runs.redis_log import RedisRunLog
from tests.fakes import FakeClock
from tests.redis_server import RedisServer
from tests.run_logs import Logs


@pytest.fixture(params=["memory", "redis"])
async def logs(request: pytest.FixtureRequest) -> AsyncIterator[Logs]:
    """Logs of each home (Redis under a key prefix of its own), closed after the test."""
    url = None
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        url = server.url
    maker = Logs(request.param, url)
    try:
        yield maker
    finally:
        await maker.aclose()


async def test_claim_when_the_name_is_free_then_it_holds_the_value_for_every_instance(logs: Logs) -> None:
    log = logs.new()
    other = logs.peer(log)
    assert await log.claim("n", "run_a", 60) == "run_a"
    assert await other.claim("n", "run_b", 60) == "run_a", "the first claim wins"
    assert await other.pointed("n") == "run_a"


async def test_claim_when_replacing_what_it_holds_then_the_new_value(logs: Logs) -> None:
    log = logs.new()
    await log.claim("n", "run_a", 60)
    assert await log.claim("n", "run_b", 60, replacing="run_x") == "run_a"
    assert await log.claim("n", "run_b", 60, replacing="run_a") == "run_b"


async def test_claim_when_many_race_on_two_instances_then_all_agree_on_one(logs: Logs) -> None:
    log = logs.new()
    both: list[RunLog] = [log, logs.peer(log)]
    held = await asyncio.gather(*(both[i % 2].claim("race", f"run_{i}", 60) for i in range(20)))
    assert len(set(held)) == 1


async def test_release_when_it_holds_another_value_then_kept(logs: Logs) -> None:
    log = logs.new()
    await log.claim("n", "run_a", 60)
    await log.release("n", "run_b")
    assert await log.claim("n", "run_c", 60) == "run_a"
    await log.release("n", "run_a")
    assert await log.claim("n", "run_c", 60) == "run_c"


async def test_point_when_a_name_was_claimed_then_it_leads_to_the_new_run(logs: Logs) -> None:
    log = logs.new()
    await log.claim("n", "run_a", 60)
    await log.point("n", "run_b")
    assert await logs.peer(log).pointed("n") == "run_b"


async def test_memory_claim_when_the_ttl_passed_then_the_name_is_free() -> None:
    clock = FakeClock()
    log = MemoryRunLog(60.0, clock=clock.now)
    await log.claim("n", "run_a", 10)
    clock.t += 9.9
    assert await log.claim("n", "run_b", 10) == "run_a"
    clock.t += 0.2
    assert await log.pointed("n") is None
    assert await log.claim("n", "run_b", 10) == "run_b"


async def test_memory_names_when_beyond_the_bound_then_the_oldest_forgotten() -> None:
    log = MemoryRunLog(60.0)
    log._max_names = 2
    for name in ("a", "b", "c"):
        await log.claim(name, f"run_{name}", 60)
    assert isinstance(log._names, OrderedDict) and list(log._names) == ["b", "c"]
    assert await log.claim("a", "run_new", 60) == "run_new"
    assert await log.claim("c", "run_new", 60) == "run_c"


async def test_redis_claim_when_set_then_the_key_expires_after_the_ttl(redis_server: RedisServer) -> None:
    prefix = f"test-{uuid.uuid4().hex}:"
    log = RedisRunLog(redis_server.url, 60.0, prefix=prefix)
    client: Redis = Redis.from_url(redis_server.url)
    try:
        await log.claim("n", "run_a", 30)
        assert 29_000 < await client.pttl(f"{prefix}name:n") <= 30_000
    finally:
        await client.aclose()
        await log.aclose()
