"""The team hub over real HTTP/SSE: members at once (or in turns), each its own text, a failing
member, stop, status snapshots, and only the synthesis in the conversation."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from smart_agent.agent.events import ReplyDone, TextDelta, ToolCallFinished, ToolCallStarted
from smart_agent.agent.tools import builtin_tools
from smart_agent.config import Settings
from smart_agent.llm.client import make_client
from smart_agent.team.events import (
    MemberFailed,
    MemberFinished,
    MemberStarted,
    MemberStopped,
    MemberText,
    MemberTool,
    TeamEvent,
    TeamStatus,
)
from smart_agent.team.hub import TeamHub
from smart_agent.team.members import Member, TeamDefinition
from tests.scripted_server import MODEL_ID, ScriptedServer, Span, member_tokens, serve

NAMES = ("alpha", "beta", "gamma")


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with serve() as scripted:
        yield scripted


def team(**directives: str) -> TeamDefinition:
    """Members whose prompts tell the scripted server who they are (and, optionally, what to do)."""
    members = tuple(
        Member(name, f"You are {name}.\n#member {name} {directives.get(name, '')}") for name in NAMES
    )
    return TeamDefinition(members, "Write the answer.\n#member synth")


async def run(
    server: ScriptedServer,
    definition: TeamDefinition,
    prompt: str,
    *,
    concurrency: int = 3,
    stop_when: Any = None,
) -> tuple[list[tuple[float, TeamEvent]], list[dict[str, Any]], list[Span]]:
    """The events (with their arrival time), the conversation after the turn, this turn's spans."""
    settings = Settings(api_key="k", base_url=server.url, model=MODEL_ID, stream_timeout=10)
    client = make_client(settings)
    conversation: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    first_span = len(server.spans)
    hub = TeamHub(definition, client, MODEL_ID, settings, builtin_tools(), concurrency=concurrency)
    events: list[tuple[float, TeamEvent]] = []
    try:
        async with asyncio.timeout(30):
            stream: AsyncIterator[TeamEvent] = hub.stream(conversation)
            async for event in stream:
                events.append((time.monotonic(), event))
                if stop_when is not None and stop_when(events):
                    hub.stop()
    finally:
        await client.close()
    return events, conversation, server.spans[first_span:]


def member_text(events: list[tuple[float, TeamEvent]], name: str) -> str:
    return "".join(e.text for _, e in events if isinstance(e, MemberText) and e.member == name)


def spans_of(spans: list[Span], name: str) -> list[Span]:
    return [span for span in spans if span.member == name]


async def test_members_when_run_at_once_then_each_streams_its_own_text_and_synthesis_follows(
    server: ScriptedServer,
) -> None:
    events, conversation, spans = await run(server, team(), "#script tokens=40 rate=100")
    for name in NAMES:
        expected = "".join(member_tokens(name, 40))
        assert member_text(events, name) == expected  # every piece, in order, nothing of another's
        assert MemberFinished(name, expected) in [e for _, e in events]
        assert sum(1 for _, e in events if isinstance(e, MemberText) and e.member == name) == 40
    members = [s for s in spans if s.member in NAMES]
    assert all(span.complete for span in members)
    # At once: every member's request arrived before any of them ended.
    assert max(s.start for s in members) < min(s.end or 0 for s in members)
    (synth,) = spans_of(spans, "synth")
    assert synth.start >= max(s.end or 0 for s in members)
    answer = "".join(member_tokens("synth", 40))
    kinds = [e for _, e in events if isinstance(e, TextDelta | ReplyDone)]
    assert "".join(e.text for e in kinds if isinstance(e, TextDelta)) == answer
    assert isinstance(kinds[-1], ReplyDone)
    assert conversation == [
        {"role": "user", "content": "#script tokens=40 rate=100"},
        {"role": "assistant", "content": answer},
    ]
    request = server.requests[-1]
    system = request["messages"][0]["content"]
    for name in NAMES:
        assert f"## {name}\n\n{''.join(member_tokens(name, 40)).strip()}" in system
    assert "failed" not in system
    assert request["messages"][1:] == [{"role": "user", "content": "#script tokens=40 rate=100"}]
    assert "tools" not in request


async def test_concurrency_one_when_run_then_members_take_turns_in_order_still_streaming(
    server: ScriptedServer,
) -> None:
    events, _, spans = await run(server, team(), "#script tokens=20 rate=100", concurrency=1)
    members = [s for s in spans if s.member in NAMES]
    assert [s.member for s in members] == list(NAMES)
    for earlier, later in itertools.pairwise(members):
        assert earlier.end is not None and later.start >= earlier.end
    started = [e.member for _, e in events if isinstance(e, MemberStarted)]
    assert started == list(NAMES)
    for name in NAMES:
        assert member_text(events, name) == "".join(member_tokens(name, 20))
    order = [e.member for _, e in events if isinstance(e, MemberText)]
    assert order == sorted(order, key=NAMES.index)  # no interleaving: one member at a time


async def test_one_member_failing_when_others_work_then_they_finish_and_synthesis_is_told(
    server: ScriptedServer,
) -> None:
    events, conversation, _ = await run(
        server, team(beta="status=500", gamma="cut=5"), "#script tokens=30 rate=200"
    )
    plain = [e for _, e in events]
    assert MemberFinished("alpha", "".join(member_tokens("alpha", 30))) in plain
    failures = {e.member: e for e in plain if isinstance(e, MemberFailed)}
    assert set(failures) == {"beta", "gamma"}
    assert "500" in failures["beta"].message and failures["beta"].text == ""
    assert failures["gamma"].text == "".join(member_tokens("gamma", 5))  # what it wrote is kept
    assert "Traceback" not in failures["gamma"].message
    system = server.requests[-1]["messages"][0]["content"]
    assert "These members failed, so their notes are missing or incomplete: beta, gamma." in system
    assert conversation[-1]["role"] == "assistant"


async def test_member_when_it_calls_a_tool_then_tool_events_are_its_own(server: ScriptedServer) -> None:
    events, _, _ = await run(server, team(alpha="tool=calculator expr=6*7"), "#script tokens=5")
    tools = [e for _, e in events if isinstance(e, MemberTool)]
    assert [type(t.event) for t in tools] == [ToolCallStarted, ToolCallFinished]
    assert {t.member for t in tools} == {"alpha"}
    assert isinstance(tools[1].event, ToolCallFinished) and tools[1].event.result == "42"
    assert member_text(events, "alpha") == "Result: 42"


@pytest.mark.timing
async def test_stop_when_members_are_streaming_then_every_request_closes_and_nothing_follows(
    server: ScriptedServer,
) -> None:
    def written(events: list[tuple[float, TeamEvent]]) -> bool:
        return all(member_text(events, name) for name in NAMES)

    before = time.monotonic()
    events, conversation, spans = await run(server, team(), "#script tokens=400 rate=50", stop_when=written)
    stopped_at = next(
        t for t, _ in events if all(member_text([x for x in events if x[0] <= t], n) for n in NAMES)
    )
    after_stop = [e for t, e in events if t > stopped_at]
    assert [type(e) for e in after_stop] == [MemberStopped] * 3 + [TeamStatus]
    assert isinstance(after_stop[-1], TeamStatus)
    assert {m.state for m in after_stop[-1].members} == {"stopped"}
    assert conversation == [{"role": "user", "content": "#script tokens=400 rate=50"}]
    # The server saw every member's stream closed soon after the stop, none completed, no synthesis.
    assert await asyncio.to_thread(server.wait_ended, spans, 5.0)
    assert sorted(s.member for s in spans) == sorted(NAMES)  # they start at once, in any order
    assert not any(s.complete for s in spans)
    assert all(s.end is not None and s.end - stopped_at < 2.0 for s in spans)
    assert time.monotonic() - before < 8  # 400 tokens at 50/s would take 8 s


async def test_consumer_when_it_closes_the_stream_then_member_requests_are_closed(
    server: ScriptedServer,
) -> None:
    settings = Settings(api_key="k", base_url=server.url, model=MODEL_ID)
    client = make_client(settings)
    first_span = len(server.spans)
    hub = TeamHub(team(), client, MODEL_ID, settings, builtin_tools(), concurrency=3)
    try:
        stream = hub.stream([{"role": "user", "content": "#script tokens=400 rate=50"}])
        writing: set[str] = set()
        async for event in stream:  # until every member's stream is open (each has written)
            if isinstance(event, MemberText):
                writing.add(event.member)
                if writing == set(NAMES):
                    break
        await stream.aclose()  # what a stopped Chainlit task does (web/reply.py deliver)
        closed_at = time.monotonic()
    finally:
        await client.close()
    spans = server.spans[first_span:]
    assert await asyncio.to_thread(server.wait_ended, spans, 5.0)
    assert len(spans) == 3 and not any(s.complete for s in spans)
    assert all(s.end is not None and s.end - closed_at < 2.0 for s in spans)
    assert {m.state for m in hub.status().members} == {"stopped"}


async def test_status_when_members_stream_then_snapshots_at_most_twice_a_second(
    server: ScriptedServer,
) -> None:
    events, _, _ = await run(server, team(), "#script tokens=60 rate=40")
    times = [t for t, e in events if isinstance(e, TeamStatus)]
    statuses = [e for _, e in events if isinstance(e, TeamStatus)]
    assert len(times) >= 3  # about 1.5 s of members, then the synthesis
    assert all(b - a >= 0.5 - 0.1 for a, b in itertools.pairwise(times))  # received, not made
    assert {m.state for m in statuses[0].members} == {"waiting"}
    final = statuses[-1]
    assert [(m.member, m.state, m.tokens) for m in final.members] == [(n, "done", 60) for n in NAMES]
    assert "alpha: done 60" in final.text()


async def test_notes_when_longer_than_the_context_then_cut_and_the_synthesis_still_answers(
    server: ScriptedServer,
) -> None:
    events, conversation, _ = await run(server, team(), "#script tokens=2000")
    assert isinstance(events[-1][1], ReplyDone) or isinstance(events[-2][1], ReplyDone)
    system = server.requests[-1]["messages"][0]["content"]
    assert system.count("more characters)") == 3
    assert len(system) < 8192 * 3
    assert conversation[-1] == {"role": "assistant", "content": "".join(member_tokens("synth", 2000))}
