"""One contract for both homes of the run log: in memory and in Redis Streams."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_agent.runs.events import (
    CANCELLED,
    DONE,
    ERROR,
    PROGRESS,
    REASONING,
    REASONING_MOVED,
    SNAPSHOT,
    TOKEN,
    TOOL_CALL,
    RunEvent,
    error_data,
    fold,
)
from smart_agent.runs.log import (
    InvalidEventIdError,
    ReaderTooSlowError,
    RunExpiredError,
    RunLimitError,
    RunLog,
    UnknownRunError,
)
from tests.redis_server import RedisServer
from tests.run_logs import WAIT, Logs, read_to_end, take

KINDS = ["memory", "redis"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Which home of the run log the test runs against."""
    return str(request.param)


@pytest.fixture
def redis_url(kind: str, request: pytest.FixtureRequest) -> str | None:
    """The test Redis server's URL, for the Redis home only."""
    if kind != "redis":
        return None
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
async def logs(kind: str, redis_url: str | None) -> AsyncIterator[Logs]:
    """A maker of logs of this home, all closed after the test."""
    maker = Logs(kind, redis_url)
    try:
        yield maker
    finally:
        await maker.aclose()


def _run_id() -> str:
    return f"run_{uuid.uuid4().hex}"


async def _started(log: RunLog, owner: str = "key-1", max_running: int = 10) -> str:
    run_id = _run_id()
    await log.create(run_id, owner, max_running)
    return run_id


async def test_reading_from_the_start_yields_every_event_then_the_terminal_one(logs: Logs) -> None:
    log = logs.new()
    run_id = await _started(log)
    ids = [
        await log.append(run_id, TOKEN, {"text": "Hel"}),
        await log.append(run_id, TOOL_CALL, {"call_id": "c1", "name": "calc", "arguments": "{}"}),
        await log.append(run_id, TOKEN, {"text": "lo"}),
    ]
    done_id = await log.finish(run_id, DONE, {"finish_reason": "stop"})

    got = await read_to_end(log.read(run_id))

    assert [e.id for e in got] == [*ids, done_id]
    assert [e.kind for e in got] == [TOKEN, TOOL_CALL, TOKEN, DONE]
    assert got[1].data == {"call_id": "c1", "name": "calc", "arguments": "{}"}
    assert len(set(ids)) == 3


async def test_resuming_after_an_id_while_live_yields_the_rest_without_duplicate_or_gap(
    logs: Logs,
) -> None:
    log = logs.new()
    run_id = await _started(log)
    first = [await log.append(run_id, TOKEN, {"text": f"t{i} "}) for i in range(5)]
    reader = log.read(run_id, first[1])
    early = await take(reader, 3)  # t2 t3 t4: then it waits live
    pending = asyncio.ensure_future(anext(reader))
    later = [await log.append(run_id, TOKEN, {"text": f"t{i} "}) for i in range(5, 8)]
    done_id = await log.finish(run_id, DONE, {})
    rest = [await asyncio.wait_for(pending, WAIT), *await read_to_end(reader)]

    assert [e.id for e in early + rest] == [*first[2:], *later, done_id]
    assert [e.data.get("text") for e in early + rest][:-1] == [f"t{i} " for i in range(2, 8)]


async def test_resuming_from_before_the_kept_events_starts_with_an_exact_snapshot(logs: Logs) -> None:
    log = logs.new(max_events=3)
    run_id = await _started(log)
    texts = ["naïve ", "日本語 ", "🙂 ", "ß", "é\u0301 ", "end"]
    ids = [await log.append(run_id, TOKEN, {"text": text}) for text in texts]
    progress_id = await log.append(run_id, PROGRESS, {"tokens": 6})
    done_id = await log.finish(run_id, DONE, {})

    got = await read_to_end(log.read(run_id, ids[0]))

    # Kept: "end", the progress event and `done`; the snapshot holds the text before them.
    assert got[0].kind == SNAPSHOT
    assert got[0].data == {"text": "".join(texts[:-1]), "reasoning": ""}
    assert [e.id for e in got[1:]] == [ids[-1], progress_id, done_id]
    resumed = await read_to_end(log.read(run_id, got[0].id))
    assert [e.id for e in resumed] == [ids[-1], progress_id, done_id]
    assert (await log.get(run_id)).text == "".join(texts)


async def test_finishing_twice_writes_one_terminal_event_and_ends_live_readers(logs: Logs) -> None:
    log = logs.new()
    run_id = await _started(log)
    await log.append(run_id, TOKEN, {"text": "a"})
    reader = log.read(run_id)
    await take(reader, 1)
    pending = asyncio.ensure_future(read_to_end(reader))

    first = await log.finish(run_id, DONE, {"finish_reason": "stop"}, {"tokens": 1})
    second = await log.finish(run_id, ERROR, error_data(CANCELLED, "late"))

    assert first is not None and second is None
    assert [(e.kind, e.id) for e in await asyncio.wait_for(pending, WAIT)] == [(DONE, first)]
    with pytest.raises(UnknownRunError):
        await log.append(run_id, TOKEN, {"text": "after the end"})
    assert [e.kind for e in await read_to_end(log.read(run_id))] == [TOKEN, DONE]


async def test_reading_after_the_terminal_event_yields_nothing(logs: Logs) -> None:
    log = logs.new()
    run_id = await _started(log)
    await log.append(run_id, TOKEN, {"text": "a"})
    done_id = await log.finish(run_id, DONE, {})
    assert done_id is not None

    assert await read_to_end(log.read(run_id, done_id)) == []


async def test_get_returns_the_status_text_and_usage(logs: Logs) -> None:
    log = logs.new()
    run_id = await _started(log, owner="key-9")
    await log.append(run_id, TOKEN, {"text": "Grüße, "})
    await log.append(run_id, TOKEN, {"text": "world"})
    running = await log.get(run_id)
    assert (running.status, running.text, running.owner, running.ended) == (
        "running",
        "Grüße, world",
        "key-9",
        None,
    )
    assert abs(running.created - time.time()) < 60

    await log.finish(run_id, ERROR, error_data(CANCELLED, "stop"), {"tokens": 2})
    ended = await log.get(run_id)
    assert (ended.status, ended.text, ended.usage) == ("cancelled", "Grüße, world", {"tokens": 2})
    assert ended.ended is not None and ended.ended >= ended.created


async def test_a_run_past_its_retention_is_expired_and_an_unknown_one_unknown(logs: Logs) -> None:
    log = logs.new(retention=0.05)
    run_id = await _started(log)
    await log.append(run_id, TOKEN, {"text": "a"})
    await log.finish(run_id, DONE, {})

    deadline = time.monotonic() + WAIT
    while True:  # expiry is a matter of time: nothing to await but the clock
        try:
            await log.get(run_id)
        except RunExpiredError:
            break
        assert time.monotonic() < deadline, "the run never expired"
        await asyncio.sleep(0.02)
    with pytest.raises(RunExpiredError):
        await anext(log.read(run_id))
    with pytest.raises(UnknownRunError):
        await log.get("run_nobody")
    with pytest.raises(UnknownRunError):
        await anext(log.read("run_nobody"))
    with pytest.raises(UnknownRunError):
        await log.request_cancel("run_nobody")


async def test_resuming_from_an_id_that_is_not_one_of_the_run_raises(logs: Logs) -> None:
    log = logs.new()
    run_id = await _started(log)
    last = await log.append(run_id, TOKEN, {"text": "a"})
    for bad in ["nonsense", "", "-1", "1-2-3", "\u0661", Logs.next_id(last)]:
        with pytest.raises(InvalidEventIdError):
            await asyncio.wait_for(anext(log.read(run_id, bad)), WAIT)


async def test_a_cancel_request_reaches_the_instance_producing_the_run(logs: Logs) -> None:
    producer = logs.new()
    other = logs.peer(producer)
    asked = asyncio.Queue[str]()
    asked_elsewhere: list[str] = []
    producer.on_cancel_request(asked.put_nowait)
    if other is not producer:
        other.on_cancel_request(asked_elsewhere.append)
    run_id = await _started(producer)

    await other.request_cancel(run_id)

    assert await asyncio.wait_for(asked.get(), WAIT) == run_id
    assert asked_elsewhere == []


async def test_concurrent_creates_beyond_the_limit_fail_exactly_beyond_it(logs: Logs) -> None:
    log = logs.new()
    peer = logs.peer(log)
    ids = [_run_id() for _ in range(12)]

    results = await asyncio.gather(
        *(target.create(run_id, "key-1", 3) for target, run_id in zip([log, peer] * 6, ids, strict=True)),
        return_exceptions=True,
    )

    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, RunLimitError)]
    assert (len(created), len(refused)) == (3, 9)
    assert await log.running("key-1") == 3 and await log.running("key-2") == 0
    await log.create(_run_id(), "key-2", 3)  # the limit is per owner
    await log.finish(created[0].id, DONE, {})
    assert await log.running("key-1") == 2
    await log.create(_run_id(), "key-1", 3)


async def test_a_reader_that_stops_consuming_is_dropped_and_can_resume_without_loss(logs: Logs) -> None:
    log = logs.new(max_events=10, reader_buffer=10)
    run_id = await _started(log)
    slow = log.read(run_id)
    first = asyncio.ensure_future(anext(slow))  # a live reader, waiting
    appended = [await log.append(run_id, TOKEN, {"text": "0"})]
    assert (await asyncio.wait_for(first, WAIT)).id == appended[0]
    # A second reader that keeps up: once it has an event, the slow one was offered it as well.
    keeping_up = log.read(run_id, appended[0])
    for i in range(1, 30):
        appended.append(await log.append(run_id, TOKEN, {"text": str(i)}))
        assert (await take(keeping_up, 1))[0].id == appended[-1]

    got = [appended[0]]
    with pytest.raises(ReaderTooSlowError):
        while True:
            event = await asyncio.wait_for(anext(slow), WAIT)
            got.append(event.id or "")
    assert got == appended[: len(got)]  # what it got before being dropped has no gap
    assert len(got) <= 11
    done_id = await log.finish(run_id, DONE, {})
    resumed = await read_to_end(log.read(run_id, got[-1]))
    # 10 events are kept (the last 9 tokens and `done`): the text before them is the snapshot.
    assert resumed[0].kind == SNAPSHOT
    assert resumed[0].data["text"] == "".join(str(i) for i in range(21))
    assert [e.id for e in resumed[1:]] == [*appended[21:], done_id]


async def test_a_reader_paused_while_the_kept_events_move_past_it_never_skips_one(logs: Logs) -> None:
    log = logs.new(max_events=5)
    run_id = await _started(log)
    ids = [await log.append(run_id, TOKEN, {"text": str(i)}) for i in range(5)]
    reader = log.read(run_id)
    got = [e.id for e in await take(reader, 2)]
    ids += [await log.append(run_id, TOKEN, {"text": str(i)}) for i in range(5, 10)]
    done_id = await log.finish(run_id, DONE, {})
    ids.append(done_id or "")

    with contextlib.suppress(ReaderTooSlowError):  # dropped, or it still had them: both are fine
        got += [e.id for e in await read_to_end(reader)]

    assert got == ids[: len(got)]


Step = tuple[list[str], int, bool]
_steps = st.lists(
    st.tuples(st.lists(st.text(max_size=4), max_size=4), st.integers(0, 6), st.booleans()),
    min_size=1,
    max_size=6,
)


async def _appends_with_disconnects(log: RunLog, steps: list[Step]) -> tuple[list[Any], list[Any]]:
    run_id = await _started(log)
    appended: list[RunEvent] = []
    received: list[RunEvent] = []
    reader: AsyncIterator[RunEvent] | None = None
    try:
        for texts, take_count, disconnect in steps:
            for text in texts:
                kind, data = (TOKEN, {"text": text}) if text else (PROGRESS, {"tokens": len(appended)})
                appended.append(RunEvent(kind, data, await log.append(run_id, kind, data)))
            if reader is None:
                reader = log.read(run_id, received[-1].id if received else None)
            received += await take(reader, min(take_count, len(appended) - len(received)))
            if disconnect:
                await reader.aclose()  # type: ignore[attr-defined]  # an async generator
                reader = None
        done_id = await log.finish(run_id, DONE, {"finish_reason": "stop"})
        appended.append(RunEvent(DONE, {"finish_reason": "stop"}, done_id))
        if reader is None:
            reader = log.read(run_id, received[-1].id if received else None)
        received += await read_to_end(reader)
    finally:
        if reader is not None:
            await reader.aclose()  # type: ignore[attr-defined]
    return appended, received


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_steps)
def test_readers_that_disconnect_and_resume_anywhere_get_every_event_once(
    kind: str, redis_url: str | None, steps: list[Step]
) -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        logs = Logs(kind, redis_url)
        try:
            return await _appends_with_disconnects(logs.new(), steps)
        finally:
            await logs.aclose()

    appended, received = asyncio.run(scenario())

    assert [(e.id, e.kind, e.data) for e in received] == [(e.id, e.kind, e.data) for e in appended]


def _folded(events: list[RunEvent]) -> tuple[str, str]:
    """(text, reasoning) as a reader applying `events` in order holds them."""
    text, reasoning = "", ""
    for event in events:
        text, reasoning = fold(text, reasoning, event.kind, event.data)
    return text, reasoning


async def _logged(log: RunLog, ops: list[tuple[str, Any]]) -> tuple[str, list[RunEvent]]:
    """A run of `ops` ((kind, text or chars)) ended `done`; its id and the events as appended."""
    run_id = await _started(log)
    appended: list[RunEvent] = []
    for kind, value in ops:
        data = {"chars": value} if kind == REASONING_MOVED else {"text": value}
        if kind == PROGRESS:
            data = {"tokens": len(appended)}
        appended.append(RunEvent(kind, data, await log.append(run_id, kind, data)))
    done_id = await log.finish(run_id, DONE, {})
    appended.append(RunEvent(DONE, {}, done_id))
    return run_id, appended


async def _check_every_resume_point(log: RunLog, run_id: str, appended: list[RunEvent]) -> None:
    """From the start and after every id: a snapshot is the fold of the events up to its id, and the
    snapshot plus the events that follow fold to the run's text and reasoning."""
    whole = _folded(appended)
    record = await log.get(run_id)
    assert (record.text, record.reasoning) == whole
    ids = [event.id for event in appended]
    for after in [None, *ids]:
        got = await read_to_end(log.read(run_id, after))
        if got and got[0].kind == SNAPSHOT:
            upto = ids.index(got[0].id) + 1
            assert (got[0].data["text"], got[0].data["reasoning"]) == _folded(appended[:upto]), after
        start = 0 if after is None else ids.index(after) + 1
        assert _folded(appended[:start] + got) == whole, after


async def test_reasoning_is_kept_apart_from_the_text_and_read_back_in_order(logs: Logs) -> None:
    log = logs.new()
    ops = [
        (REASONING, "Grüße? "),
        (REASONING, "🙂 hmm"),
        (TOKEN, "Hallo, "),
        (REASONING, "…"),
        (TOKEN, "Welt"),
    ]
    run_id, appended = await _logged(log, ops)

    got = await read_to_end(log.read(run_id))

    assert [(e.kind, e.data, e.id) for e in got] == [(e.kind, e.data, e.id) for e in appended]
    record = await log.get(run_id)
    assert (record.text, record.reasoning) == ("Hallo, Welt", "Grüße? 🙂 hmm…")


async def test_a_snapshot_after_trimming_holds_the_text_and_the_reasoning_so_far(logs: Logs) -> None:
    log = logs.new(max_events=3)
    ops = [(REASONING, "naïve "), (TOKEN, "日本語 "), (REASONING, "🙂"), (TOKEN, "ß"), (TOKEN, "end")]
    run_id, appended = await _logged(log, ops)

    got = await read_to_end(log.read(run_id, appended[0].id))

    # Kept: "ß", "end" and `done`; the snapshot holds the text and the reasoning before them.
    assert got[0].kind == SNAPSHOT and got[0].id == appended[2].id
    assert got[0].data == {"text": "日本語 ", "reasoning": "naïve 🙂"}
    await _check_every_resume_point(log, run_id, appended)


# Thinking first streamed as text, moved (over multi-byte characters and across events), an answer,
# then a second move reaching back over the first one's span.
MOVES: list[tuple[str, Any]] = [
    (TOKEN, "Thinking: naïve 日本"),
    (TOKEN, "語 plan"),
    (REASONING_MOVED, 11),
    (REASONING, "\n"),
    (TOKEN, "Answer 🙂 "),
    (PROGRESS, None),
    (TOKEN, "é\u0301"),
    (REASONING_MOVED, 14),
    (TOKEN, "done."),
]


@pytest.mark.parametrize("max_events", [2, 4, 6, 8, 100])
async def test_a_move_before_or_after_the_trim_point_reads_as_if_the_text_moved_were_thinking_all_along(
    logs: Logs, max_events: int
) -> None:
    log = logs.new(max_events=max_events)
    run_id, appended = await _logged(log, MOVES)

    record = await log.get(run_id)

    assert record.text == "Thinking: done."
    assert record.reasoning == "ve 日本語 plan\nnaïAnswer 🙂 é\u0301"
    await _check_every_resume_point(log, run_id, appended)


async def test_a_move_while_running_changes_the_record_at_once(logs: Logs) -> None:
    log = logs.new(max_events=2)
    run_id = await _started(log)
    await log.append(run_id, TOKEN, {"text": "plan: 🙂 ok"})
    await log.append(run_id, REASONING_MOVED, {"chars": 4})
    await log.append(run_id, TOKEN, {"text": "Yes"})

    record = await log.get(run_id)

    assert (record.text, record.reasoning) == ("plan: Yes", "🙂 ok")


_ops = st.lists(
    st.one_of(
        st.tuples(st.just(TOKEN), st.text(min_size=1, max_size=5)),
        st.tuples(st.just(REASONING), st.text(min_size=1, max_size=5)),
        st.tuples(st.just(REASONING_MOVED), st.integers(1, 12)),
        st.tuples(st.just(PROGRESS), st.none()),
    ),
    min_size=1,
    max_size=14,
)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops, max_events=st.integers(1, 8))
def test_any_mix_of_text_thinking_and_moves_reads_the_same_from_every_resume_point(
    kind: str, redis_url: str | None, ops: list[tuple[str, Any]], max_events: int
) -> None:
    async def scenario() -> None:
        logs = Logs(kind, redis_url)
        try:
            log = logs.new(max_events=max_events)
            run_id, appended = await _logged(log, ops)
            await _check_every_resume_point(log, run_id, appended)
        finally:
            await logs.aclose()

    asyncio.run(scenario())


async def test_a_name_leads_to_the_run_it_was_last_pointed_at_from_every_instance(logs: Logs) -> None:
    log = logs.new()
    other = logs.peer(log)
    first, second = await _started(log), await _started(log)
    assert await other.pointed("chat-1") is None

    await log.point("chat-1", first)
    assert await other.pointed("chat-1") == first
    await other.point("chat-1", second)
    await log.point("chat-2", first)

    assert await log.pointed("chat-1") == second
    assert await other.pointed("chat-2") == first
