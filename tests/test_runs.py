"""The producer and the run manager in process, on the in-memory run log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from smart_agent.agent.events import (
    AgentEvent,
    ReplyDone,
    ReplyFailed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from smart_agent.runs.events import RunEvent
from smart_agent.runs.log import RunLimitError
from smart_agent.runs.manager import RunManager
from smart_agent.runs.memory import MemoryRunLog
from smart_agent.streaming.batcher import BatchPolicy

POLICY = BatchPolicy()


async def _all(log: MemoryRunLog, run_id: str) -> list[RunEvent]:
    return [event async for event in log.read(run_id)]


async def _turn(*events: AgentEvent) -> AsyncGenerator[AgentEvent, None]:
    for event in events:
        yield event


async def _read_all(log: MemoryRunLog, run_id: str) -> list[RunEvent]:
    return [event async for event in log.read(run_id)]


async def test_run_when_it_ends_then_tokens_tools_and_one_done_in_order() -> None:
    log = MemoryRunLog(60)
    manager = RunManager(log, BatchPolicy(enabled=False))
    record = await manager.start(
        "",
        _turn(
            TextDelta("Let me "),
            ToolCallStarted("c1", "calculator", '{"expression": "1+1"}'),
            ToolCallFinished("c1", "calculator", '{"expression": "1+1"}', "2", False),
            TextDelta("say 2."),
            ReplyDone("Let me say 2.", 1, "stop"),
        ),
        4,
    )
    await manager.wait(record.id)
    kinds = [event.kind for event in await _all(log, record.id) if event.kind != "progress"]
    assert kinds == ["token", "tool_call", "tool_result", "token", "done"]
    state = await log.get(record.id)
    assert state.status == "done" and state.text == "Let me say 2."
    assert state.usage["tokens"] == 2 and state.usage["tool_calls"] == 1


@pytest.mark.parametrize(
    ("ending", "code"),
    [
        (ReplyFailed("too many rounds", "limit_exceeded"), "limit_exceeded"),
        (ReplyFailed("the server broke"), "model_error"),
    ],
)
async def test_run_when_the_turn_fails_then_one_error_with_its_code_and_the_text_kept(
    ending: ReplyFailed, code: str
) -> None:
    log = MemoryRunLog(60)
    manager = RunManager(log, POLICY)
    record = await manager.start("", _turn(TextDelta("partial"), ending), 4)
    await manager.wait(record.id)
    events = await _all(log, record.id)
    assert [event.kind for event in events if event.kind in ("done", "error")] == ["error"]
    assert events[-1].data == {"code": code, "message": ending.message, "retryable": code == "model_error"}
    assert (await log.get(record.id)).text == "partial"


async def test_run_when_the_turn_raises_then_internal_error_ends_it() -> None:
    async def broken() -> AsyncGenerator[AgentEvent, None]:
        yield TextDelta("so far")
        raise RuntimeError("bug")

    log = MemoryRunLog(60)
    manager = RunManager(log, POLICY)
    record = await manager.start("", broken(), 4)
    await manager.wait(record.id)
    events = await _all(log, record.id)
    assert events[-1].kind == "error" and events[-1].data["code"] == "internal_error"
    assert "bug" not in events[-1].data["message"]  # internals stay in the log, not in the answer
    assert (await log.get(record.id)).text == "so far"


class _Endless:
    """A model that sends a few tokens, then stalls until its stream is closed."""

    def __init__(self) -> None:
        self.closed_at: float | None = None
        self.started = asyncio.Event()

    async def stream(self) -> AsyncGenerator[AgentEvent, None]:
        try:
            for word in ("one ", "two ", "three "):
                yield TextDelta(word)
            self.started.set()
            await asyncio.Event().wait()
            yield TextDelta("never")
        finally:
            self.closed_at = time.monotonic()


async def test_cancel_when_running_then_error_cancelled_within_100ms_of_closing_the_model_stream() -> None:
    log = MemoryRunLog(60)
    manager = RunManager(log, BatchPolicy(flush_interval=10, max_events_per_second=0.1))
    model = _Endless()
    record = await manager.start("", model.stream(), 4)
    await model.started.wait()
    ended: list[float] = []

    async def reader() -> list[RunEvent]:
        seen = []
        async for event in log.read(record.id):
            seen.append(event)
        ended.append(time.monotonic())
        return seen

    reading = asyncio.create_task(reader())
    await manager.cancel(record.id)
    events = await asyncio.wait_for(reading, 5)
    assert model.closed_at is not None and ended[0] - model.closed_at < 1.0
    assert events[-1].data["code"] == "cancelled"
    # The tokens still held back by the batcher were flushed before the end, not lost.
    assert "".join(event.data["text"] for event in events if event.kind == "token") == "one two three "
    await manager.cancel(record.id)  # again: nothing happens
    assert (await log.get(record.id)).status == "cancelled"


async def test_cancel_when_the_run_has_not_taken_its_first_step_then_it_still_ends_cancelled() -> None:
    log = MemoryRunLog(60)
    ends: list[str] = []
    manager = RunManager(log, POLICY, on_end=lambda status, _usage: ends.append(status))
    model = _Endless()
    record = await manager.start("", model.stream(), 4)
    await manager.cancel(record.id)  # before its task ran at all: no `finally` of its own will run
    events = await asyncio.wait_for(_read_all(log, record.id), 5)
    assert [event.data["code"] for event in events] == ["cancelled"]
    assert (await log.get(record.id)).status == "cancelled"
    assert manager.active == 0 and ends == ["cancelled"]
    assert not model.started.is_set()


class _CancelLandsAsWriteEnds(MemoryRunLog):
    """A log whose first token write is awaited as redis-py awaits its socket writes (through
    `asyncio.wait_for`), with a cancel from another instance landing just as the write ends."""

    armed = True

    async def append(self, run_id: str, kind: str, data: dict[str, Any]) -> str:
        if kind == "token" and self.armed:
            self.armed = False
            loop = asyncio.get_running_loop()
            written = loop.create_future()

            def write_ends() -> None:
                written.set_result(None)  # wakes wait_for's waiter next ...
                loop.call_soon(self._cancel_requested, run_id)  # ... and then the cancel comes

            loop.call_soon(write_ends)
            await asyncio.wait_for(written, 5)  # Python 3.11 returns here instead of raising
        return await super().append(run_id, kind, data)

    def _cancel_requested(self, run_id: str) -> None:
        for handler in self._cancel_handlers:
            handler(run_id)


async def test_cancel_when_a_write_swallows_it_then_the_run_still_ends_cancelled_at_its_next_event() -> None:
    log = _CancelLandsAsWriteEnds(60)
    manager = RunManager(log, BatchPolicy(enabled=False))

    async def endless() -> AsyncGenerator[AgentEvent, None]:
        for _ in range(1000):
            await asyncio.sleep(0)
            yield TextDelta("t ")

    record = await manager.start("", endless(), 4)
    events = await asyncio.wait_for(_read_all(log, record.id), 5)

    assert events[-1].data["code"] == "cancelled"
    assert len([event for event in events if event.kind == "token"]) <= 2  # the one written, one more at most


async def test_shutdown_when_runs_are_running_then_they_end_with_producer_lost() -> None:
    log = MemoryRunLog(60)
    manager = RunManager(log, POLICY)
    model = _Endless()
    record = await manager.start("", model.stream(), 4)
    await model.started.wait()
    await manager.aclose()
    events = await _all(log, record.id)
    assert events[-1].data["code"] == "producer_lost" and events[-1].data["retryable"] is True
    assert manager.active == 0


async def test_limit_when_owner_has_max_runs_then_refused_but_others_may_start() -> None:
    log = MemoryRunLog(60)
    manager = RunManager(log, POLICY)
    models = [_Endless() for _ in range(3)]
    for model in models[:2]:
        await manager.start("alice", model.stream(), 2)
    with pytest.raises(RunLimitError):
        await manager.start("alice", models[2].stream(), 2)
    await manager.start("bob", models[2].stream(), 2)
    assert await log.running("alice") == 2 and await log.running("bob") == 1
    await manager.aclose()


async def test_progress_when_tokens_stream_for_two_seconds_then_at_most_twice_a_second() -> None:
    span: list[float] = []

    async def steady() -> AsyncGenerator[AgentEvent, None]:
        span.append(time.monotonic())
        for _ in range(100):
            await asyncio.sleep(0.02)
            yield TextDelta("x")
        span.append(time.monotonic())
        yield ReplyDone("x" * 100, 0)

    log = MemoryRunLog(60)
    manager = RunManager(log, POLICY)
    record = await manager.start("", steady(), 4)
    await manager.wait(record.id)
    progress = [event for event in await _all(log, record.id) if event.kind == "progress"]
    # At most twice a second over the time the tokens really took (a loaded machine stretches it).
    assert 2 <= len(progress) <= (span[1] - span[0]) / 0.5 + 1
