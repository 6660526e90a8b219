"""What only the Redis run log does: many instances, a lost producer, key expiry, one reader task."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator

import pytest
from redis.asyncio import Redis

from smart_agent.agent.events import AgentEvent, TextDelta
from smart_agent.runs.events import CANCELLED, DONE, ERROR, PRODUCER_LOST, REASONING, SNAPSHOT, TOKEN
from smart_agent.runs.log import RunExpiredError, RunLogUnavailableError
from smart_agent.runs.manager import RunManager
from smart_agent.runs.redis_dispatch import XREAD_BLOCK_MS
from smart_agent.runs.redis_log import RedisRunLog, RunKeys
from smart_agent.streaming.batcher import BatchPolicy
from tests.redis_server import RedisServer, running_redis
from tests.run_logs import WAIT, read_to_end, take


@pytest.fixture
async def pair(redis_server: RedisServer) -> AsyncIterator[tuple[RedisRunLog, RedisRunLog, str]]:
    """Two instances sharing one Redis (and a prefix of their own), and that prefix."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    a = RedisRunLog(redis_server.url, 30.0, prefix=prefix)
    b = RedisRunLog(redis_server.url, 30.0, prefix=prefix)
    try:
        yield a, b, prefix
    finally:
        await a.aclose()
        await b.aclose()


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain client to look at the keys."""
    client = Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


async def test_events_written_by_one_instance_reach_a_live_reader_on_another(
    pair: tuple[RedisRunLog, RedisRunLog, str],
) -> None:
    a, b, _ = pair
    await a.create("run_1", "key", 5)
    reader = b.read("run_1")
    first = asyncio.ensure_future(anext(reader))
    ids = [await a.append("run_1", TOKEN, {"text": f"{i} "}) for i in range(3)]
    done_id = await a.finish("run_1", DONE, {})

    got = [await asyncio.wait_for(first, WAIT), *await read_to_end(reader)]

    assert [e.id for e in got] == [*ids, done_id]
    assert (await b.get("run_1")).text == "0 1 2 "


async def test_a_run_whose_producer_died_ends_producer_lost_for_readers_elsewhere(
    redis_server: RedisServer, pair: tuple[RedisRunLog, RedisRunLog, str]
) -> None:
    _, b, prefix = pair
    producer = RedisRunLog(redis_server.url, 30.0, prefix=prefix)
    await producer.create("run_1", "key", 5)
    await producer.append("run_1", TOKEN, {"text": "partial "})
    reader = b.read("run_1")
    await take(reader, 1)
    pending = asyncio.ensure_future(read_to_end(reader))

    await producer.aclose()  # its lease is no longer refreshed; it never finished the run
    died = time.monotonic()
    got = await asyncio.wait_for(pending, WAIT)
    detected = time.monotonic() - died

    assert [(e.kind, e.data["code"]) for e in got] == [(ERROR, PRODUCER_LOST)]
    assert got[0].data["retryable"] is True
    assert detected < 6.0, f"producer_lost came {detected:.1f} s after the producer stopped"
    record = await b.get("run_1")
    assert (record.status, record.text) == ("error", "partial ")
    assert await b.running("key") == 0


async def test_get_ends_a_run_whose_producer_died_even_with_no_reader(
    redis_server: RedisServer, pair: tuple[RedisRunLog, RedisRunLog, str], raw: Redis
) -> None:
    _, b, prefix = pair
    producer = RedisRunLog(redis_server.url, 30.0, prefix=prefix)
    await producer.create("run_1", "key", 5)
    await producer.append("run_1", TOKEN, {"text": "partial"})
    await producer.aclose()
    await raw.delete(RunKeys.of(prefix, "run_1").lease)  # as if its lease had lapsed

    record = await b.get("run_1")

    assert (record.status, record.text) == ("error", "partial")
    events = await read_to_end(b.read("run_1"))
    assert [e.kind for e in events] == [TOKEN, ERROR] and events[-1].data["code"] == PRODUCER_LOST


async def test_keys_expire_while_running_unless_refreshed_and_after_the_retention_once_ended(
    redis_server: RedisServer, raw: Redis
) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    log = RedisRunLog(redis_server.url, 20.0, lease_seconds=3.0, prefix=prefix)
    try:
        await log.create("run_1", "key", 5)
        await log.append("run_1", REASONING, {"text": "hm"})
        await log.append("run_1", TOKEN, {"text": "a"})
        keys = RunKeys.of(prefix, "run_1")
        data_keys = [keys.meta, keys.events, keys.text, keys.reasoning]
        running_ttls = [await raw.pttl(key) for key in data_keys]
        assert all(20_000 < ttl <= 29_000 for ttl in running_ttls), running_ttls  # retention + 3 leases
        assert 0 < await raw.pttl(keys.lease) <= 3_000
        assert await raw.pttl(f"{prefix}running:key") > 0

        await log.finish("run_1", DONE, {})

        ended_ttls = [await raw.pttl(key) for key in data_keys]
        assert all(15_000 < ttl <= 20_000 for ttl in ended_ttls), ended_ttls
        assert await raw.exists(keys.lease) == 0
        assert await raw.pttl(keys.known) > 20_000  # the tombstone outlives the run
    finally:
        await log.aclose()


async def _registered_live(log: RedisRunLog, key: str) -> None:
    deadline = time.monotonic() + WAIT
    while key not in log._dispatcher.watched():  # a reader's registration is not observable otherwise
        assert time.monotonic() < deadline, f"no live reader of {key}"
        await asyncio.sleep(0.001)


@pytest.mark.timing
async def test_a_new_reader_gets_live_events_without_waiting_for_the_read_under_way(
    pair: tuple[RedisRunLog, RedisRunLog, str],
) -> None:
    a, b, prefix = pair
    await a.create("run_1", "key", 5)
    await a.create("run_2", "key", 5)
    first = b.read("run_1")
    waiting = asyncio.ensure_future(anext(first))
    await _registered_live(b, RunKeys.of(prefix, "run_1").events)  # b's reader task is in XREAD
    second = b.read("run_2")
    pending = asyncio.ensure_future(anext(second))
    await _registered_live(b, RunKeys.of(prefix, "run_2").events)  # the XREAD under way lacks it

    started = time.monotonic()
    await a.append("run_2", TOKEN, {"text": "y"})
    await asyncio.wait_for(pending, WAIT)
    latency = time.monotonic() - started

    assert latency < XREAD_BLOCK_MS / 1000 / 4, f"{latency * 1000:.0f} ms"
    await a.append("run_1", TOKEN, {"text": "x"})
    await asyncio.wait_for(waiting, WAIT)
    await first.aclose()  # type: ignore[attr-defined]  # an async generator
    await second.aclose()  # type: ignore[attr-defined]


async def test_the_log_prints_its_url_without_the_password(redis_server: RedisServer) -> None:
    log = RedisRunLog(f"redis://user:s3cret@127.0.0.1:{redis_server.port}/0", 1.0)
    try:
        assert "s3cret" not in log.description
        assert f"127.0.0.1:{redis_server.port}" in log.description
    finally:
        await log.aclose()


async def test_a_live_reader_of_a_run_whose_keys_vanished_ends_with_run_expired(
    pair: tuple[RedisRunLog, RedisRunLog, str], raw: Redis
) -> None:
    a, b, prefix = pair
    await a.create("run_1", "key", 5)
    await a.append("run_1", TOKEN, {"text": "a"})
    reader = b.read("run_1")
    await take(reader, 1)
    pending = asyncio.ensure_future(anext(reader))
    keys = RunKeys.of(prefix, "run_1")

    await raw.delete(keys.meta, keys.events, keys.text, keys.lease)  # as an emptied Redis would

    with pytest.raises(RunExpiredError):
        await asyncio.wait_for(pending, WAIT)


async def test_readers_and_writers_get_run_log_unavailable_when_redis_goes_away() -> None:
    with running_redis() as server:
        log = RedisRunLog(server.url, 30.0)
        try:
            await log.create("run_1", "key", 5)
            reader = log.read("run_1")
            pending = asyncio.ensure_future(anext(reader))
            await _registered_live(log, RunKeys.of("smart-agent:", "run_1").events)

            server.kill()

            with pytest.raises(RunLogUnavailableError):
                await asyncio.wait_for(pending, WAIT)
            with pytest.raises(RunLogUnavailableError):
                await log.append("run_1", TOKEN, {"text": "into the void"})
            with pytest.raises(RunLogUnavailableError):
                await log.get("run_1")
        finally:
            await log.aclose()


async def test_a_run_cancelled_through_another_instance_ends_cancelled_with_its_text_kept(
    pair: tuple[RedisRunLog, RedisRunLog, str],
) -> None:
    a, b, _ = pair
    producing, other = RunManager(a, BatchPolicy()), RunManager(b, BatchPolicy())
    never = asyncio.Event()

    async def turn() -> AsyncGenerator[AgentEvent, None]:
        yield TextDelta("Hello")
        await never.wait()  # a model that stalls until cancelled
        yield TextDelta("never sent")

    record = await producing.start("key", turn(), 5)
    reader = b.read(record.id)
    assert [e.data for e in await take(reader, 1)] == [{"text": "Hello"}]

    await other.cancel(record.id)

    rest = await read_to_end(reader)
    assert (rest[-1].kind, rest[-1].data["code"]) == (ERROR, CANCELLED)
    assert TOKEN not in [e.kind for e in rest]
    assert (await b.get(record.id)).text == "Hello"
    assert (await b.get(record.id)).status == "cancelled"
    await producing.wait(record.id)


async def test_cancelling_a_run_nobody_produces_any_more_ends_it_cancelled(
    redis_server: RedisServer, pair: tuple[RedisRunLog, RedisRunLog, str], raw: Redis
) -> None:
    _, b, prefix = pair
    producer = RedisRunLog(redis_server.url, 30.0, prefix=prefix)
    await producer.create("run_1", "key", 5)
    await producer.append("run_1", TOKEN, {"text": "partial"})
    await producer.aclose()
    await raw.delete(RunKeys.of(prefix, "run_1").lease)  # as if its lease had lapsed

    await b.request_cancel("run_1")

    events = await read_to_end(b.read("run_1"))
    assert (events[-1].kind, events[-1].data["code"]) == (ERROR, CANCELLED)
    assert (await b.get("run_1")).status == "cancelled"


async def test_a_run_written_before_the_reasoning_had_a_key_still_resumes_with_a_snapshot(
    pair: tuple[RedisRunLog, RedisRunLog, str], raw: Redis
) -> None:
    a, _, prefix = pair
    await a.create("run_1", "key", 5)
    keys = RunKeys.of(prefix, "run_1")
    # Two token events in the older header format "n text kind"; the first trimmed away.
    first = await raw.xadd(keys.events, {"h": "1 0 token", "d": '{"text": "ab"}'})
    await raw.xadd(keys.events, {"h": "2 2 token", "d": '{"text": "cd"}'})
    await raw.xtrim(keys.events, maxlen=1, approximate=False)
    await raw.append(keys.text, "abcd")
    await raw.hset(keys.meta, mapping={"n": 2, "cut": first})
    done_id = await a.finish("run_1", DONE, {})

    got = await read_to_end(a.read("run_1"))

    assert [(e.kind, e.data) for e in got] == [
        (SNAPSHOT, {"text": "ab", "reasoning": ""}),
        (TOKEN, {"text": "cd"}),
        (DONE, {}),
    ]
    assert got[-1].id == done_id
