"""The real openai client over real HTTP/SSE to the scripted server, through the reply path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from smart_agent.agent.events import AgentEvent
from smart_agent.agent.loop import Agent
from smart_agent.agent.tools import builtin_tools
from smart_agent.config import Settings
from smart_agent.llm.client import make_client
from smart_agent.llm.local_server import free_port
from smart_agent.llm.models import resolve_model
from smart_agent.streaming import BatchPolicy, SmoothStreamWrapper
from smart_agent.web.reply import ReplyOutcome, deliver
from tests.fakes import RecordingMessage
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens, serve


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with serve() as scripted:
        yield scripted


def settings_for(server: ScriptedServer, **changes: object) -> Settings:
    values: dict[str, object] = {"api_key": "k", "base_url": server.url, "model": MODEL_ID}
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


async def ask(
    settings: Settings, prompt: str, policy: BatchPolicy | None = None
) -> tuple[ReplyOutcome, RecordingMessage]:
    client = make_client(settings)
    message = RecordingMessage()
    reply = SmoothStreamWrapper(message, policy or BatchPolicy())
    try:
        model = await resolve_model(client, settings)
        agent = Agent(client, model, settings, builtin_tools())
        outcome = await deliver(agent.stream([{"role": "user", "content": prompt}]), lambda: reply)
    finally:
        await client.close()
    return outcome, message


def text_of(count: int) -> str:
    return "".join(script_tokens(count))


async def test_long_reply_when_streamed_fast_then_exact_and_batched(server: ScriptedServer) -> None:
    outcome, message = await ask(settings_for(server), "#script tokens=3000 kind=markdown")
    expected = "".join(script_tokens(3000, "markdown"))
    assert outcome.error is None
    assert outcome.text == message.browser_text() == message.content == expected
    assert message.stream_events() < 100
    assert message.events[-1][0] == "send"


async def test_batching_off_when_streamed_then_one_event_per_token(server: ScriptedServer) -> None:
    _outcome, message = await ask(settings_for(server), "#script tokens=200", BatchPolicy(enabled=False))
    assert message.browser_text() == text_of(200)
    assert message.stream_events() == 200


async def test_first_token_when_batched_then_reaches_ui_before_the_second_arrives(
    server: ScriptedServer,
) -> None:
    _, message = await ask(settings_for(server), "#script tokens=30 rate=50")
    kind, first, _ = message.events[0]
    assert (kind, first) == ("stream_start", script_tokens(1)[0])


async def test_model_unknown_when_not_configured_then_server_first_model_used(
    server: ScriptedServer,
) -> None:
    settings = settings_for(server, model=None)
    client = make_client(settings)
    try:
        assert await resolve_model(client, settings) == MODEL_ID
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("status", "phrase"),
    [(401, "HTTP 401"), (404, "HTTP 404"), (429, "HTTP 429"), (500, "HTTP 500")],
)
async def test_http_error_when_requested_then_readable_message_and_nothing_sent(
    server: ScriptedServer, status: int, phrase: str
) -> None:
    outcome, message = await ask(settings_for(server), f"#script status={status}")
    assert outcome.error is not None
    assert phrase in str(outcome.error)
    assert "Traceback" not in str(outcome.error)
    assert message.events == []


async def test_connection_refused_when_server_down_then_readable_message() -> None:
    settings = Settings(api_key="k", base_url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    outcome, _ = await ask(settings, "hello")
    assert outcome.error is not None
    assert "Could not connect" in str(outcome.error)


@pytest.mark.parametrize(
    ("script", "phrase"),
    [
        ("cut=40", "broke off"),
        ("error_at=40", "scripted mid-stream failure"),
        ("malformed_at=40", "malformed event"),
    ],
)
async def test_stream_fails_mid_reply_when_streaming_then_partial_kept(
    server: ScriptedServer, script: str, phrase: str
) -> None:
    outcome, message = await ask(settings_for(server), f"#script tokens=100 rate=400 {script}")
    assert outcome.error is not None
    assert phrase in str(outcome.error)
    assert outcome.text == message.browser_text() == text_of(40)


@pytest.mark.parametrize("ending", [1, 2], ids=["closed", "only [DONE]"])
async def test_stream_ends_without_finish_reason_when_streaming_then_partial_kept_and_ended_early_shown(
    server: ScriptedServer, ending: int
) -> None:
    outcome, message = await ask(settings_for(server), f"#script tokens=40 rate=400 no_finish={ending}")
    assert outcome.error is not None
    assert "ended the reply early" in str(outcome.error)
    assert outcome.text == message.browser_text() == text_of(40)
    assert message.events[-1][0] == "send"


async def test_stream_ends_without_finish_reason_when_nothing_arrived_then_answer_asked_again(
    server: ScriptedServer,
) -> None:
    outcome, _ = await ask(settings_for(server), "#script tokens=0 no_finish=1")
    assert outcome.error is None
    assert [r.get("stream") for r in server.requests[-2:]] == [True, False]


async def test_stream_stalls_when_longer_than_timeout_then_timeout_message(
    server: ScriptedServer,
) -> None:
    settings = settings_for(server, stream_timeout=0.5)
    outcome, message = await ask(settings, "#script tokens=50 stall_at=10 stall=3")
    assert outcome.error is not None
    assert "stopped responding" in str(outcome.error)
    assert message.browser_text() == text_of(10)


async def test_stop_when_cancelled_mid_reply_then_prefix_kept_and_nothing_after(
    server: ScriptedServer,
) -> None:
    settings = settings_for(server)
    client = make_client(settings)
    message = RecordingMessage()
    reply = SmoothStreamWrapper(message, BatchPolicy())
    arrived = asyncio.Event()
    closed = asyncio.Event()
    prompt: list[dict[str, object]] = [{"role": "user", "content": "#script tokens=2000 rate=200"}]

    async def counted() -> AsyncIterator[AgentEvent]:
        deltas = Agent(client, MODEL_ID, settings, builtin_tools()).stream(prompt)
        try:
            count = 0
            async for delta in deltas:
                yield delta
                count += 1
                if count == 30:
                    arrived.set()
        finally:
            await deltas.aclose()
            closed.set()

    task = asyncio.create_task(deliver(counted(), lambda: reply))
    try:
        await asyncio.wait_for(arrived.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        events_at_stop = len(message.events)
        final = message.browser_text()
        assert text_of(2000).startswith(final)
        assert len(final) >= len(text_of(30))
        assert message.events[-1][0] == "send"
        assert closed.is_set()  # the model stream (and its HTTP response) was closed
        # Only a task could emit later (the flush timer is one): none is left but this test's own.
        assert reply.finished
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
        assert len(message.events) == events_at_stop
    finally:
        await client.close()
