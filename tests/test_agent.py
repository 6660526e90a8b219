"""The agent loop over real HTTP/SSE: the sequence of events for tool calls in awkward shapes,
failures and fallbacks."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from smart_agent.agent.events import (
    AgentEvent,
    HistoryTrimmed,
    ReplyDone,
    ReplyFailed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    UsageReported,
)
from smart_agent.agent.loop import TOO_MANY_TOOL_ROUNDS, Agent
from smart_agent.agent.tools import Tool, ToolRegistry, builtin_tools
from smart_agent.config import Settings
from smart_agent.llm.client import make_client
from tests.scripted_server import (
    MODEL_ID,
    ScriptedServer,
    history_error,
    request_tokens,
    script_tokens,
    serve,
)


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with serve() as scripted:
        yield scripted


async def run(
    server: ScriptedServer, prompt: str, tools: ToolRegistry | None = None, **settings: Any
) -> tuple[list[AgentEvent], list[dict[str, Any]]]:
    config = Settings(api_key="k", base_url=server.url, model=MODEL_ID, **settings)
    client = make_client(config)
    history: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    try:
        agent = Agent(client, MODEL_ID, config, tools or builtin_tools())
        # The server's usage reports are tests/test_reasoning_agent.py's subject, not these tests'.
        events = [event async for event in agent.stream(history) if not isinstance(event, UsageReported)]
    finally:
        await client.close()
    return events, history


def kinds(events: list[AgentEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


def text(events: list[AgentEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_tool_call_when_arguments_split_across_chunks_then_one_call_then_text(
    server: ScriptedServer,
) -> None:
    events, history = await run(server, "#script tool=calculator expr=2+3*4")
    assert kinds(events) == ["ToolCallStarted", "ToolCallFinished", "TextDelta", "TextDelta", "ReplyDone"]
    started, finished = events[0], events[1]
    assert isinstance(started, ToolCallStarted) and isinstance(finished, ToolCallFinished)
    assert (started.name, started.arguments) == ("calculator", '{"expression": "2+3*4"}')
    assert (finished.result, finished.is_error) == ("14", False)
    assert text(events) == "Result: 14"
    assert events[-1] == ReplyDone("Result: 14", 1)
    roles = [m["role"] for m in history]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert history[1]["tool_calls"][0]["function"]["arguments"] == '{"expression": "2+3*4"}'
    assert history[2] == {"role": "tool", "tool_call_id": "call_0_x", "content": "14"}


async def test_tool_call_when_arguments_null_then_empty_object(server: ScriptedServer) -> None:
    events, history = await run(server, "#script tool=current_time shape=null")
    finished = events[1]
    assert isinstance(finished, ToolCallFinished)
    assert not finished.is_error
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \S+ \(UTC[+-]\d{4}\)", finished.result)
    assert history[1]["tool_calls"][0]["function"]["arguments"] == "{}"


async def test_two_parallel_calls_when_fragments_interleaved_then_told_apart_by_index(
    server: ScriptedServer,
) -> None:
    events, history = await run(server, "#script tool=calculator parallel=1 expr=2+3 expr2=10/4 usage=1")
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    finished = {e.call_id: e.result for e in events if isinstance(e, ToolCallFinished)}
    assert [(s.call_id, s.arguments) for s in started] == [
        ("call_0_x", '{"expression": "2+3"}'),
        ("call_1_x", '{"expression": "10/4"}'),
    ]
    assert finished == {"call_0_x": "5", "call_1_x": "2.5"}
    assert text(events) == "Result: 5 2.5"
    assert [m.get("tool_call_id") for m in history if m["role"] == "tool"] == ["call_0_x", "call_1_x"]


async def test_tool_calls_run_concurrently(server: ScriptedServer) -> None:
    both_running = asyncio.Event()
    running = 0

    async def wait_for_other(arguments: dict[str, Any]) -> str:
        nonlocal running
        running += 1
        if running == 2:
            both_running.set()
        await asyncio.wait_for(both_running.wait(), timeout=5)
        return "ok"

    tools = ToolRegistry([Tool("calculator", "d", {"type": "object"}, wait_for_other)])
    events, _ = await run(server, "#script tool=calculator parallel=1", tools)
    assert [e.result for e in events if isinstance(e, ToolCallFinished)] == ["ok", "ok"]


async def test_whole_message_chunks_when_streamed_then_understood(server: ScriptedServer) -> None:
    events, _ = await run(server, "#script tool=calculator shape=whole expr=7*6")
    assert [e.result for e in events if isinstance(e, ToolCallFinished)] == ["42"]
    assert text(events) == "Result: 42"


@pytest.mark.parametrize(
    ("script", "phrase"),
    [
        ("tool=calculator args_raw={bad", "invalid JSON arguments"),
        ("tool=calculator expr=1/0", "division by zero"),
        ("tool=calculator expr=__import__('os')", "not allowed"),
        ("tool=no_such_tool", "no tool named 'no_such_tool'"),
    ],
)
async def test_tool_fails_when_called_then_error_result_and_turn_goes_on(
    server: ScriptedServer, script: str, phrase: str
) -> None:
    events, _ = await run(server, f"#script {script}")
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert len(finished) == 1 and finished[0].is_error
    assert phrase in finished[0].result
    assert isinstance(events[-1], ReplyDone)
    assert phrase in text(events)  # the model saw the error


async def test_tool_slower_than_limit_when_called_then_timeout_error(server: ScriptedServer) -> None:
    async def slow(arguments: dict[str, Any]) -> str:
        await asyncio.Event().wait()  # never returns
        return "unreachable"

    tools = ToolRegistry([Tool("calculator", "d", {"type": "object"}, slow)], time_limit=0.2)
    events, _ = await run(server, "#script tool=calculator", tools)
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert finished[0].is_error and "timed out after 0.2 s" in finished[0].result
    assert isinstance(events[-1], ReplyDone)


async def test_model_keeps_calling_tools_when_limit_reached_then_clear_message(
    server: ScriptedServer,
) -> None:
    events, history = await run(server, "#script tool=calculator rounds=50", max_tool_rounds=3)
    assert sum(isinstance(e, ToolCallFinished) for e in events) == 3
    assert isinstance(events[-1], ReplyFailed)
    assert events[-1].message == TOO_MANY_TOOL_ROUNDS.format(rounds=3)
    # every assistant tool call in the history has its tool result
    calls = [c["id"] for m in history if m.get("tool_calls") for c in m["tool_calls"]]
    answered = [m["tool_call_id"] for m in history if m["role"] == "tool"]
    assert calls == answered


async def test_stream_refused_with_400_when_asked_then_non_streaming_answer_in_pieces(
    server: ScriptedServer,
) -> None:
    events, _ = await run(server, "#script no_stream=1 tokens=40")
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert text(events) == "".join(script_tokens(40))
    assert len(deltas) > 5  # delivered in pieces, so the user sees it appear
    assert isinstance(events[-1], ReplyDone)


async def test_stream_refused_when_tools_requested_then_fallback_runs_tools_too(
    server: ScriptedServer,
) -> None:
    events, _ = await run(server, "#script no_stream=1 tool=calculator expr=9-2")
    assert [e.result for e in events if isinstance(e, ToolCallFinished)] == ["7"]
    assert text(events) == "Result: 7"


@pytest.mark.parametrize("script", ["cut=0", "error_at=0", "malformed_at=0"])
async def test_stream_fails_before_any_token_then_retried_without_streaming(
    server: ScriptedServer, script: str
) -> None:
    events, _ = await run(server, f"#script tokens=30 {script}")
    assert text(events) == "".join(script_tokens(30))
    assert isinstance(events[-1], ReplyDone)


async def test_stream_fails_after_tokens_then_partial_kept_and_error_event(server: ScriptedServer) -> None:
    events, history = await run(server, "#script tokens=30 error_at=12")
    assert text(events) == "".join(script_tokens(12))
    assert isinstance(events[-1], ReplyFailed)
    assert "scripted mid-stream failure" in events[-1].message
    assert history[-1] == {"role": "assistant", "content": "".join(script_tokens(12))}


async def test_http_error_when_not_about_streaming_then_no_retry(server: ScriptedServer) -> None:
    before = len(server.requests)
    events, _ = await run(server, "#script status=500")
    assert kinds(events) == ["ReplyFailed"]
    assert "HTTP 500" in events[0].message  # type: ignore[union-attr]
    assert len(server.requests) == before + 1


async def converse(
    server: ScriptedServer, history: list[dict[str, Any]], prompt: str, **settings: Any
) -> list[AgentEvent]:
    """One more turn on `history`, as the chat handler runs it."""
    config = Settings(api_key="k", base_url=server.url, model=MODEL_ID, **settings)
    client = make_client(config)
    history.append({"role": "user", "content": prompt})
    try:
        agent = Agent(client, MODEL_ID, config, builtin_tools())
        return [event async for event in agent.stream(history) if not isinstance(event, UsageReported)]
    finally:
        await client.close()


async def assert_next_turn_answered(
    server: ScriptedServer, history: list[dict[str, Any]], prompt: str = "#script tokens=5", **settings: Any
) -> None:
    """One more turn on `history` (a prompt asking for five tokens) gets its whole reply."""
    events = await converse(server, history, prompt, **settings)
    assert events[-1] == ReplyDone("".join(script_tokens(5)), 0)


def past_turns(count: int, chars: int) -> list[dict[str, Any]]:
    prose = "Plain words of an earlier answer. " * (chars // 34 + 1)
    turns: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
    for number in range(count):
        turns.append({"role": "user", "content": f"question {number}: {prose[:chars]}"})
        turns.append({"role": "assistant", "content": f"answer {number}: {prose[:chars]}"})
    return turns


@pytest.mark.parametrize("preset", ["deep", "huge shape=whole", "junk"])
async def test_hostile_tool_arguments_when_called_then_error_result_history_valid_next_turn_works(
    server: ScriptedServer, preset: str
) -> None:
    history: list[dict[str, Any]] = []
    # ctx: the server also refuses over-long requests, as real ones do
    events = await converse(server, history, f"#script tool=calculator ctx=8000 args_preset={preset}")
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert len(finished) == 1 and finished[0].is_error and finished[0].result.startswith("Error:")
    assert isinstance(events[-1], ReplyDone)
    assert history_error(history) is None
    await assert_next_turn_answered(server, history, "#script tokens=5 ctx=8000")
    assert history_error(history) is None


async def test_unanswered_tool_call_when_sent_then_scripted_server_refuses_like_openai(
    server: ScriptedServer,
) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}
    history: list[dict[str, Any]] = [{"role": "assistant", "content": None, "tool_calls": [call]}]
    events = await converse(server, history, "#script tokens=5")
    assert isinstance(events[-1], ReplyFailed)
    assert "must be followed by tool messages responding to each 'tool_call_id'" in events[-1].message


async def test_history_longer_than_context_when_asked_then_oldest_left_out_and_event_says_so(
    server: ScriptedServer,
) -> None:
    history = past_turns(10, 1000)
    before = len(server.requests)
    events = await converse(server, history, "#script tokens=5", context_tokens=2048)
    assert isinstance(events[0], HistoryTrimmed) and events[0].dropped > 0
    assert events[-1] == ReplyDone("".join(script_tokens(5)), 0)
    sent = server.requests[before]["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[1]["role"] == "user" and sent[-1]["content"] == "#script tokens=5"
    assert sent[-3:-1] == history[-4:-2]  # the latest earlier turn is sent
    assert len(sent) == len(history) - 1 - events[0].dropped
    assert len(history) == 1 + 2 * 10 + 2  # the stored history keeps everything


@pytest.mark.parametrize("empty", [0, 1])
async def test_server_refuses_length_when_asked_then_retried_once_with_half(
    server: ScriptedServer, empty: int
) -> None:
    history = past_turns(3, 1000)
    before = len(server.requests)
    events = await converse(server, history, f"#script tokens=5 ctx=2000 ctx_empty={empty}")
    assert events[-1] == ReplyDone("".join(script_tokens(5)), 0)
    assert any(isinstance(e, HistoryTrimmed) for e in events)
    tried = [request_tokens(r["messages"]) for r in server.requests[before:]]
    assert tried[0] > 2000 >= tried[-1]
    assert len(tried) == 2 + empty  # llama.cpp's empty stream is asked again without streaming


async def test_message_too_long_for_context_when_sent_then_clear_error_not_kept_next_works(
    server: ScriptedServer,
) -> None:
    history = past_turns(1, 100)
    kept = list(history)
    before = len(server.requests)
    events = await converse(server, history, "x" * 20_000, context_tokens=2048)
    assert kinds(events) == ["ReplyFailed"]
    assert "too long for the model's context" in events[0].message  # type: ignore[union-attr]
    assert history == kept and len(server.requests) == before
    await assert_next_turn_answered(server, history, context_tokens=2048)


async def test_server_refuses_message_even_alone_then_not_kept_and_next_works(
    server: ScriptedServer,
) -> None:
    history = past_turns(1, 100)
    kept = list(history)
    before = len(server.requests)
    events = await converse(server, history, "#script ctx=10\n" + "y" * 500)
    assert kinds(events) == ["HistoryTrimmed", "ReplyFailed"]  # asked once more, the message alone
    assert "too long for the model's context" in events[-1].message  # type: ignore[union-attr]
    assert "the model server refused it" in events[-1].message  # type: ignore[union-attr]
    assert [len(r["messages"]) for r in server.requests[before:]] == [4, 2]
    assert history == kept
    await assert_next_turn_answered(server, history)


async def test_request_fails_before_any_answer_then_user_message_not_kept(server: ScriptedServer) -> None:
    history = past_turns(1, 100)
    kept = list(history)
    events = await converse(server, history, "#script status=500")
    assert kinds(events) == ["ReplyFailed"]
    assert "not kept in the conversation" in events[0].message  # type: ignore[union-attr]
    assert history == kept


async def test_consumer_stops_at_tool_call_display_then_every_call_still_gets_a_result(
    server: ScriptedServer,
) -> None:
    config = Settings(api_key="k", base_url=server.url, model=MODEL_ID)
    client = make_client(config)
    history: list[dict[str, Any]] = [{"role": "user", "content": "#script tool=calculator parallel=1"}]
    try:
        events = Agent(client, MODEL_ID, config, builtin_tools()).stream(history)
        async for event in events:
            if isinstance(event, ToolCallStarted):
                break  # e.g. the page failed to show the step
        await events.aclose()  # type: ignore[attr-defined]
        assert history_error(history) is None
        assert [m["role"] for m in history] == ["user", "assistant", "tool", "tool"]
        assert await converse(server, history, "#script tokens=5") == [
            *[TextDelta(t) for t in script_tokens(5)],
            ReplyDone("".join(script_tokens(5)), 0),
        ]
    finally:
        await client.close()


async def test_history_when_text_holds_a_lone_surrogate_then_sent_with_replacement_and_answered(
    server: ScriptedServer,
) -> None:
    # json.loads('"\\ud800"') gives a lone surrogate: a model or a client can send one
    events, history = await run(server, "#script tokens=3\nbroken \ud800 text")
    assert kinds(events)[-1] == "ReplyDone"
    assert history[0]["content"].endswith("\ud800 text")  # the history keeps what was said
