"""Thinking through the runs: the producer's batching and order, usage, chat replay, SSE coalescing."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from smart_agent.agent.events import (
    AgentEvent,
    Notice,
    ReasoningDelta,
    ReasoningMoved,
    ReplyDone,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    UsageReported,
)
from smart_agent.api.schema import StreamOptions
from smart_agent.api.sse import stream_events
from smart_agent.runs.chat import ChatRuns, replay
from smart_agent.runs.events import (
    DONE,
    NOTICE,
    PROGRESS,
    REASONING,
    REASONING_MOVED,
    TOKEN,
    RunEvent,
    fold,
)
from smart_agent.runs.memory import MemoryRunLog
from smart_agent.runs.producer import produce
from smart_agent.streaming.batcher import BatchPolicy
from tests.fakes import FakeClock, settle

WAIT = 10.0


async def _turn(*events: AgentEvent) -> AsyncGenerator[AgentEvent, None]:
    for event in events:
        yield event


async def _fed(feed: asyncio.Queue[AgentEvent | None]) -> AsyncGenerator[AgentEvent, None]:
    while (event := await feed.get()) is not None:
        yield event


async def _events(log: MemoryRunLog, run_id: str) -> list[RunEvent]:
    return [event async for event in log.read(run_id)]


def _runs(events: list[RunEvent]) -> list[tuple[str, str]]:
    """(kind, text) of the text and thinking events, consecutive ones of a kind joined."""
    deltas = [event for event in events if event.kind in (TOKEN, REASONING)]
    return [
        (kind, "".join(event.data["text"] for event in group))
        for kind, group in itertools.groupby(deltas, key=lambda event: event.kind)
    ]


def _folded(events: list[RunEvent]) -> tuple[str, str]:
    text, reasoning = "", ""
    for event in events:
        text, reasoning = fold(text, reasoning, event.kind, event.data)
    return text, reasoning


class _SlowThinkingLog(MemoryRunLog):
    """Its writes of thinking after the first wait until `gate` is set: a write still in flight."""

    def __init__(self) -> None:
        super().__init__(60)
        self.gate = asyncio.Event()
        self.thinking_writes = 0

    async def append(self, run_id: str, kind: str, data: dict[str, Any]) -> str:
        if kind == REASONING:
            self.thinking_writes += 1
            if self.thinking_writes > 1:
                await self.gate.wait()
        return await super().append(run_id, kind, data)


async def test_produce_when_text_comes_while_a_thinking_batch_is_being_written_then_it_waits_for_it() -> None:
    clock, log, feed = FakeClock(), _SlowThinkingLog(), asyncio.Queue[AgentEvent | None]()
    await log.create("run_1", "key", 1)
    producing = asyncio.create_task(produce(log, "run_1", _fed(feed), BatchPolicy(), clock))
    try:
        feed.put_nowait(ReasoningDelta("first"))  # the first piece goes at once
        feed.put_nowait(ReasoningDelta(" second"))  # held for the next timed flush
        await settle()
        await clock.advance(0.2)  # the timed flush starts: its write waits at the gate
        assert log.thinking_writes == 2
        feed.put_nowait(TextDelta("Answer"))
        await settle()
        record = await log.get("run_1")
        assert (record.text, record.reasoning) == ("", "first")  # the text waits for the thinking before it
    finally:
        log.gate.set()
        feed.put_nowait(ReplyDone("Answer", 0))
        feed.put_nowait(None)
        await asyncio.wait_for(producing, WAIT)

    assert _runs(await _events(log, "run_1")) == [(REASONING, "first second"), (TOKEN, "Answer")]


async def test_produce_when_text_and_thinking_alternate_then_batched_per_kind_and_never_reordered() -> None:
    clock, log, feed = FakeClock(), MemoryRunLog(60), asyncio.Queue[AgentEvent | None]()
    await log.create("run_1", "key", 1)
    producing = asyncio.create_task(produce(log, "run_1", _fed(feed), BatchPolicy(), clock))
    kinds = "RRRRTTRRRRRRTTTTTTTTRT"
    for number, kind in enumerate(kinds):
        feed.put_nowait(ReasoningDelta(f"r{number} ") if kind == "R" else TextDelta(f"t{number} "))
        await clock.advance(0.03)  # timed flushes fall between some of the pieces
    feed.put_nowait(ReplyDone("", 0))
    feed.put_nowait(None)
    await asyncio.wait_for(producing, WAIT)

    events = await _events(log, "run_1")
    expected = [
        (REASONING if kind == "R" else TOKEN, "".join(f"{kind.lower()}{n} " for n, _ in group))
        for kind, group in itertools.groupby(enumerate(kinds), key=lambda pair: pair[1])
    ]
    assert _runs(events) == expected
    assert len([e for e in events if e.kind in (TOKEN, REASONING)]) < len(kinds)  # batched
    progress = [event.data for event in events if event.kind == PROGRESS]
    assert (progress[0]["tokens"], progress[0]["reasoning_tokens"]) == (1, 1)
    assert events[-1].kind == DONE and events[-1].data["tokens"] == len(kinds)


async def test_produce_when_text_turns_out_to_be_thinking_then_moved_after_every_piece_of_it() -> None:
    log = MemoryRunLog(60)
    await log.create("run_1", "key", 1)
    turn = _turn(
        Notice("The server ignored reasoning_effort."),
        TextDelta("Hmm, "),
        TextDelta("six times seven"),
        ReasoningMoved(20),
        ReasoningDelta("\n"),
        TextDelta("42"),
        ReplyDone("42", 0),
    )

    await produce(log, "run_1", turn, BatchPolicy(flush_interval=10, max_events_per_second=0.1))

    events = await _events(log, "run_1")
    kinds = [event.kind for event in events if event.kind != PROGRESS]
    assert kinds == [NOTICE, TOKEN, TOKEN, REASONING_MOVED, REASONING, TOKEN, DONE]
    assert events[0].data == {"message": "The server ignored reasoning_effort."}
    assert _folded(events) == ("42", "Hmm, six times seven\n")
    record = await log.get("run_1")
    assert (record.text, record.reasoning) == ("42", "Hmm, six times seven\n")


async def test_produce_when_the_server_reports_usage_per_request_then_the_run_sums_them() -> None:
    log = MemoryRunLog(60)
    await log.create("run_1", "key", 1)
    turn = _turn(
        ReasoningDelta("a tool helps"),
        UsageReported(5, 12, 10),
        ToolCallStarted("c1", "calculator", "{}"),
        ToolCallFinished("c1", "calculator", "{}", "2", False),
        TextDelta("2"),
        UsageReported(20, 3, 0),
        ReplyDone("2", 1),
    )

    usage = await produce(log, "run_1", turn, BatchPolicy())

    served = {"prompt_tokens": 25, "completion_tokens": 15, "reasoning_tokens": 10}
    assert usage.items() >= served.items()
    events = await _events(log, "run_1")
    assert events[-1].kind == DONE and events[-1].data.items() >= served.items()
    assert (await log.get("run_1")).usage.items() >= served.items()


async def test_produce_when_the_server_reports_no_usage_then_none_is_made_up() -> None:
    log = MemoryRunLog(60)
    await log.create("run_1", "key", 1)

    usage = await produce(log, "run_1", _turn(TextDelta("hi"), ReplyDone("hi", 0)), BatchPolicy())

    assert set(usage) == {"tokens", "tool_calls", "ttft_s", "duration_s"}


THINKING_TURN: list[AgentEvent] = [
    Notice("Thinking effort is not supported here."),
    ReasoningDelta("Let me "),
    ReasoningDelta("think. "),
    TextDelta("Plan: add"),
    ReasoningMoved(9),
    TextDelta("2."),
    ReplyDone("2.", 0),
]


async def test_replay_when_a_chat_turn_thought_then_thinking_moves_and_notices_come_back() -> None:
    log = MemoryRunLog(60)
    runs = ChatRuns(log, BatchPolicy(enabled=False))
    shown = [event async for event in await runs.record("chat_m1", "chat:ann", _turn(*THINKING_TURN))]
    await runs.drain()

    replayed = [event async for event in replay(log, "chat_m1")]

    assert shown == THINKING_TURN
    assert replayed == [*THINKING_TURN[:-1], ReplyDone("", 0, "stop")]


async def test_replay_when_the_first_events_were_trimmed_then_the_snapshot_gives_thinking_then_text() -> None:
    log = MemoryRunLog(60, max_events=2)
    runs = ChatRuns(log, BatchPolicy(enabled=False))
    events = [*THINKING_TURN[:-1], TextDelta(" More."), ReplyDone("2. More.", 0)]
    await _drain(await runs.record("chat_m2", "chat:ann", _turn(*events)))
    await runs.drain()

    replayed = [event async for event in replay(log, "chat_m2")]

    assert replayed == [
        ReasoningDelta("Let me think. Plan: add"),
        TextDelta("2."),
        TextDelta(" More."),
        ReplyDone("", 0, "stop"),
    ]


async def _drain(events: AsyncIterator[AgentEvent]) -> None:
    async for _ in events:
        pass


async def test_sse_when_coalescing_then_text_and_thinking_are_joined_per_kind_never_across() -> None:
    log = MemoryRunLog(60)
    await log.create("run_1", "key", 1)
    written = [
        (TOKEN, "a"),
        (TOKEN, "b"),
        (REASONING, "c"),
        (REASONING, "d"),
        (TOKEN, "e"),
        (PROGRESS, None),
        (REASONING, "f"),
        (REASONING, "g"),
    ]
    ids = []
    for kind, text in written:
        ids.append(await log.append("run_1", kind, {"tokens": 1} if text is None else {"text": text}))
    ids.append(await log.finish("run_1", DONE, {}))
    # A reader asking for one event every 10 s on a clock that stands still: only a change of kind,
    # another event or the end sends held text.
    options = StreamOptions(flush_interval=10.0, max_events_per_second=0.1)

    sent = [
        (sse.event, json.loads(sse.data).get("text"), sse.id)
        async for sse in stream_events(log, "run_1", None, options, heartbeat_seconds=5, now=lambda: 0.0)
    ]

    assert sent == [
        (TOKEN, "a", ids[0]),  # the first goes at once
        (TOKEN, "b", ids[1]),
        (REASONING, "cd", ids[3]),
        (TOKEN, "e", ids[4]),
        (PROGRESS, None, ids[5]),
        (REASONING, "fg", ids[7]),
        (DONE, None, ids[8]),
    ]
