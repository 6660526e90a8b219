"""Chat turns teed into the in-memory run log, replayed, and rebuilt for the model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

from smart_agent.agent.events import (
    AgentEvent,
    ReplyDone,
    ReplyFailed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from smart_agent.history.conversation import model_messages
from smart_agent.runs.chat import ChatRuns, chat_owner, chat_run_id, live_run, replay
from smart_agent.runs.memory import MemoryRunLog
from smart_agent.streaming.batcher import BatchPolicy
from smart_agent.web.follow import NOT_RETURNED, turn_steps

TURN: list[AgentEvent] = [
    TextDelta("Let me "),
    ToolCallStarted("c1", "calculator", '{"expression": "1+1"}'),
    ToolCallFinished("c1", "calculator", '{"expression": "1+1"}', "2", False),
    TextDelta("say "),
    TextDelta("2."),
    ReplyDone("say 2.", 1, "stop"),
]


async def _turn(
    events: list[AgentEvent], then: asyncio.Event | None = None
) -> AsyncGenerator[AgentEvent, None]:
    for event in events:
        yield event
    if then is not None:
        await then.wait()  # a model still generating


async def _consume(events: AsyncIterator[AgentEvent]) -> list[AgentEvent]:
    return [event async for event in events]


def _texts(events: list[AgentEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


async def test_record_when_turn_ends_then_page_gets_it_unchanged_and_log_replays_it() -> None:
    log = MemoryRunLog(60)
    runs = ChatRuns(log, BatchPolicy())
    run_id = chat_run_id("m1")
    shown = await _consume(await runs.record(run_id, chat_owner("ann"), _turn(TURN)))
    await runs.drain()
    replayed = [event async for event in replay(log, run_id)]
    assert shown == TURN
    assert _texts(replayed) == "Let me say 2."
    assert [type(event) for event in replayed if not isinstance(event, TextDelta)] == [
        ToolCallStarted,
        ToolCallFinished,
        ReplyDone,
    ]
    record = await live_run(log, run_id, chat_owner("ann"))
    assert record is not None and record.status == "done" and record.text == "Let me say 2."
    assert await live_run(log, run_id, chat_owner("bob")) is None  # nobody else's turn to follow


async def test_record_when_page_stops_the_turn_then_run_ends_cancelled_with_the_text_shown() -> None:
    log = MemoryRunLog(60)
    runs = ChatRuns(log, BatchPolicy())
    events = await runs.record("chat_m2", "chat:ann", _turn(TURN[:2], asyncio.Event()))
    shown = [await anext(events), await anext(events)]
    await events.aclose()  # type: ignore[attr-defined]  # what deliver does when stopped
    await runs.drain()
    record = await log.get("chat_m2")
    assert (record.status, record.text) == ("cancelled", _texts(shown))


async def test_cancel_request_when_turn_is_shown_then_the_showing_task_is_cancelled() -> None:
    log = MemoryRunLog(60)
    runs = ChatRuns(log, BatchPolicy())
    started = asyncio.Event()

    async def page() -> list[AgentEvent]:
        shown = []
        async for event in await runs.record("chat_m3", "chat:ann", _turn(TURN[:1], asyncio.Event())):
            shown.append(event)
            started.set()
        return shown

    task = asyncio.create_task(page())
    await started.wait()
    await log.request_cancel("chat_m3")  # e.g. the stop button of a reloaded page
    await asyncio.wait({task})
    await runs.drain()
    assert task.cancelled()
    assert (await log.get("chat_m3")).status == "cancelled"


async def test_record_when_log_refuses_the_run_then_page_gets_the_turn_anyway() -> None:
    log = MemoryRunLog(60)
    runs = ChatRuns(log, BatchPolicy())
    await log.create("chat_m4", "chat:ann", 1)  # the id is taken
    shown = await _consume(await runs.record("chat_m4", "chat:ann", _turn(TURN)))
    assert shown == TURN


def test_turn_steps_when_rebuilt_then_model_gets_what_the_agent_loop_keeps() -> None:
    user = {"id": "u1", "type": "user_message", "output": "add"}
    events = [*TURN[:-1], ReplyFailed("model went away", "model_error")]
    thread = {"steps": [user, *turn_steps(events)]}
    assert model_messages(thread) == [  # type: ignore[arg-type]
        {"role": "user", "content": "add"},
        {
            "role": "assistant",
            "content": "Let me ",
            "tool_calls": [
                {
                    "id": "call_c1",
                    "type": "function",
                    "function": {"name": "calculator", "arguments": '{"expression": "1+1"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_c1", "content": "2"},
        {"role": "assistant", "content": "say 2."},
    ]


def test_turn_steps_when_stopped_before_a_tool_returned_then_its_result_says_so() -> None:
    user = {"id": "u1", "type": "user_message", "output": "add"}
    thread = {"steps": [user, *turn_steps(TURN[:2])]}
    messages = model_messages(thread)  # type: ignore[arg-type]
    assert messages[-1] == {"role": "tool", "tool_call_id": "call_c1", "content": NOT_RETURNED}
