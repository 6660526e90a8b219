"""The agent against a scripted server that thinks in every style real servers use: thinking comes
out as its own events, never in the answer, never back in the next request; usage and effort too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from smart_agent.agent import loop
from smart_agent.agent.events import (
    AgentEvent,
    Notice,
    ReasoningDelta,
    ReasoningMoved,
    ReplyDone,
    TextDelta,
    UsageReported,
)
from smart_agent.agent.loop import EFFORT_REFUSED, Agent
from smart_agent.agent.tools import builtin_tools
from smart_agent.config import Settings
from smart_agent.llm.client import make_client
from tests.scripted_server import MODEL_ID, THINK_STYLES, ScriptedServer, script_tokens, serve, think_tokens


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with serve() as scripted:
        yield scripted


@pytest.fixture(autouse=True)
def refusals_forgotten() -> Iterator[None]:
    """Each test starts with a backend that has refused nothing yet (the agent remembers refusals)."""
    loop._REFUSED.clear()
    yield
    loop._REFUSED.clear()


async def turn(
    server: ScriptedServer, history: list[dict[str, Any]], prompt: str, **settings: Any
) -> list[AgentEvent]:
    """One turn on `history`, as the chat handler runs it."""
    config = Settings(api_key="k", base_url=server.url, model=MODEL_ID, **settings)
    client = make_client(config)
    history.append({"role": "user", "content": prompt})
    try:
        return [event async for event in Agent(client, MODEL_ID, config, builtin_tools()).stream(history)]
    finally:
        await client.close()


def shown(events: list[AgentEvent]) -> tuple[str, str]:
    """(thinking, answer) as a presenter ends with them: moved text leaves the answer."""
    thinking, answer = "", ""
    for event in events:
        if isinstance(event, ReasoningDelta):
            thinking += event.text
        elif isinstance(event, TextDelta):
            answer += event.text
        elif isinstance(event, ReasoningMoved):
            cut = len(answer) - event.chars
            thinking, answer = thinking + answer[cut:], answer[:cut]
    return thinking, answer


@pytest.mark.parametrize("style", THINK_STYLES)
async def test_thinking_when_sent_in_each_style_then_apart_and_never_sent_back(
    server: ScriptedServer, style: str
) -> None:
    history: list[dict[str, Any]] = []
    events = await turn(server, history, f"#script think=40 tokens=10 think_style={style}")
    thinking, answer = shown(events)
    expected_answer = "".join(script_tokens(10))
    if style not in ("content", "reasoning"):  # blanks after `</think>` are not the answer's
        expected_answer = expected_answer.lstrip()
    assert thinking.strip() == "".join(think_tokens(40)).strip()
    assert answer == expected_answer
    done = events[-1]
    assert isinstance(done, ReplyDone) and done.text == expected_answer
    assert any(isinstance(e, ReasoningMoved) for e in events) == (style == "close")
    await turn(server, history, "#script tokens=3")
    sent = json.dumps(server.requests[-1]["messages"])
    assert "t00000" not in sent and "think>" not in sent
    assert history[1] == {"role": "assistant", "content": expected_answer}


async def test_prefilled_mode_when_reply_starts_thinking_then_nothing_moves(server: ScriptedServer) -> None:
    events = await turn(server, [], "#script think=30 tokens=5 think_style=close", think_tags="prefilled")
    assert not any(isinstance(e, ReasoningMoved) for e in events)
    # Blanks before the thinking or the answer are neither's.
    assert shown(events) == ("".join(think_tokens(30)).lstrip() + "\n", "".join(script_tokens(5)).lstrip())
    assert "t000" not in "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_usage_when_asked_then_servers_counts_with_reasoning_tokens(server: ScriptedServer) -> None:
    events = await turn(server, [], "#script think=12 tokens=7")
    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    assert [e for e in events if isinstance(e, UsageReported)] == [UsageReported(5, 19, 12)]


async def test_stream_options_when_refused_then_asked_again_without_quietly(server: ScriptedServer) -> None:
    events = await turn(server, [], "#script tokens=4 options_refused=1")
    assert shown(events) == ("", "".join(script_tokens(4)))
    assert not any(isinstance(e, Notice) for e in events)
    assert "stream_options" not in server.requests[-1]


async def test_reasoning_effort_when_set_then_sent_and_when_refused_then_notice_and_answer(
    server: ScriptedServer,
) -> None:
    await turn(server, [], "#script tokens=2", reasoning_effort="high")
    assert server.requests[-1]["reasoning_effort"] == "high"
    events = await turn(server, [], "#script tokens=3 effort_refused=1", reasoning_effort="low")
    assert [e for e in events if isinstance(e, Notice)] == [Notice(EFFORT_REFUSED)]
    assert "reasoning_effort" not in server.requests[-1]
    assert shown(events)[1] == "".join(script_tokens(3))


async def test_no_streaming_server_when_message_has_reasoning_content_then_thinking_apart(
    server: ScriptedServer,
) -> None:
    events = await turn(server, [], "#script think=20 tokens=6 no_stream=1")
    assert shown(events) == ("".join(think_tokens(20)), "".join(script_tokens(6)))


async def test_stream_cut_while_thinking_when_tags_unclosed_then_thinking_kept_no_answer(
    server: ScriptedServer,
) -> None:
    events = await turn(server, [], "#script think=30 tokens=5 think_style=tags cut=20")
    assert shown(events) == ("".join(think_tokens(19)), "")  # "<think>" and 19 thoughts were sent
