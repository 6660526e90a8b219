"""Prometheus metrics: what `metered` observes of a turn, the UI events a reply sent, the exposition."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Any

import pytest
from chainlit.context import init_ws_context
from chainlit.session import WebsocketSession
from chainlit.user_session import user_sessions
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from smart_agent import metrics
from smart_agent.agent.events import (
    AgentEvent,
    ReasoningDelta,
    ReplyDone,
    ReplyFailed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    UsageReported,
)
from smart_agent.config import Settings
from smart_agent.metrics import metered
from smart_agent.web import chainlit_patches
from smart_agent.web.hooks import app_hooks
from smart_agent.web.ui import present_turn

NAMES = [
    "smart_agent_time_to_first_token_seconds",
    "smart_agent_inter_token_latency_seconds",
    "smart_agent_e2e_request_latency_seconds",
    "smart_agent_generation_tokens_total",
    "smart_agent_prompt_tokens_total",
    "smart_agent_completion_tokens_total",
    "smart_agent_reasoning_tokens_total",
    "smart_agent_ui_events_total",
    "smart_agent_runs_active",
    "smart_agent_runs_total",
    "smart_agent_sse_connections",
    "smart_agent_sse_resumes_total",
    "smart_agent_sse_disconnects_total",
    "smart_agent_api_requests_total",
]
ALLOWED_LABELS = {"model", "protocol", "status", "code", "result", "reason", "le"}


@pytest.fixture
def model() -> str:
    """A model label of this test's own: the registry is process-wide."""
    return f"test-{uuid.uuid4().hex[:8]}"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Ticks:
    """A clock the scripted turn sets before each event."""

    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t


Step = tuple[float, AgentEvent]


async def scripted(clock: Ticks, steps: list[Step], closed: list[bool]) -> AsyncGenerator[AgentEvent, None]:
    try:
        for at, event in steps:
            clock.t = 100.0 + at
            yield event
    finally:
        closed.append(True)


def meter(
    clock: Ticks, steps: list[Step], model: str, closed: list[bool]
) -> AsyncGenerator[AgentEvent, None]:
    return metered(scripted(clock, steps, closed), model, clock.now)


async def drain(events: AsyncGenerator[AgentEvent, None]) -> list[AgentEvent]:
    return [event async for event in events]


TOOL = '{"expression": "1+1"}'
DONE_STEPS: list[Step] = [
    (0.25, ToolCallStarted("c1", "calculator", TOOL)),
    (0.5, ToolCallFinished("c1", "calculator", TOOL, "2", False)),
    (1.0, TextDelta("It")),
    (1.25, TextDelta(" is")),
    (2.0, TextDelta(" 2.")),
    (2.5, ReplyDone("It is 2.", tool_rounds=1)),
]


async def test_metered_when_turn_answers_then_events_pass_unchanged_and_latencies_observed(
    model: str,
) -> None:
    clock, closed = Ticks(), []
    seen = await drain(meter(clock, DONE_STEPS, model, closed))
    assert seen == [event for _, event in DONE_STEPS]
    assert closed == [True]
    assert value("smart_agent_time_to_first_token_seconds_count", model=model) == 1
    assert value("smart_agent_time_to_first_token_seconds_sum", model=model) == 1.0
    assert value("smart_agent_time_to_first_token_seconds_bucket", model=model, le="0.75") == 0
    assert value("smart_agent_time_to_first_token_seconds_bucket", model=model, le="1.0") == 1
    assert value("smart_agent_inter_token_latency_seconds_count", model=model) == 2
    assert value("smart_agent_inter_token_latency_seconds_sum", model=model) == 0.25 + 0.75
    assert value("smart_agent_inter_token_latency_seconds_bucket", model=model, le="0.2") == 0
    assert value("smart_agent_inter_token_latency_seconds_bucket", model=model, le="0.3") == 1
    assert value("smart_agent_inter_token_latency_seconds_bucket", model=model, le="0.5") == 1
    # bounds are inclusive, as in Prometheus
    assert value("smart_agent_inter_token_latency_seconds_bucket", model=model, le="0.75") == 2
    assert value("smart_agent_inter_token_latency_seconds_bucket", model=model, le="+Inf") == 2
    assert value("smart_agent_e2e_request_latency_seconds_count", model=model, status="done") == 1
    assert value("smart_agent_e2e_request_latency_seconds_sum", model=model, status="done") == 2.5
    assert value("smart_agent_generation_tokens_total", model=model) == 3


async def test_metered_when_the_model_thinks_first_then_its_first_thought_is_the_first_token(
    model: str,
) -> None:
    clock, closed = Ticks(), []
    steps: list[Step] = [
        (0.5, ReasoningDelta("Let me")),
        (0.75, ReasoningDelta(" see.")),
        (2.0, TextDelta("4")),
        (2.5, ReplyDone("4", 0)),
    ]
    await drain(meter(clock, steps, model, closed))
    assert value("smart_agent_time_to_first_token_seconds_count", model=model) == 1
    assert value("smart_agent_time_to_first_token_seconds_sum", model=model) == 0.5
    assert value("smart_agent_inter_token_latency_seconds_sum", model=model) == 0.25 + 1.25
    assert value("smart_agent_generation_tokens_total", model=model) == 3


async def test_metered_when_the_server_reports_usage_then_its_counts_add_up_per_model(model: str) -> None:
    clock, closed = Ticks(), []
    steps: list[Step] = [
        (0.5, ReasoningDelta("Tool first.")),
        (1.0, UsageReported(12, 30, 25)),
        (2.0, TextDelta("2")),
        (2.1, UsageReported(40, 2, 0)),
        (2.5, ReplyDone("2", 1)),
    ]
    seen = await drain(meter(clock, steps, model, closed))
    assert seen == [event for _, event in steps]
    body = metrics.render()[0].decode()
    for name, count in [("prompt", 52), ("completion", 32), ("reasoning", 25)]:
        assert f'smart_agent_{name}_tokens_total{{model="{model}"}} {count:.1f}' in body, name


async def test_metered_when_turn_fails_then_e2e_ends_at_the_failure_with_status_error(model: str) -> None:
    clock, closed = Ticks(), []
    steps: list[Step] = [
        (0.5, TextDelta("Part")),
        (1.5, ReplyFailed("The model server failed.")),
        (9.0, ReplyDone("", 0)),
    ]
    await drain(meter(clock, steps, model, closed))
    assert value("smart_agent_e2e_request_latency_seconds_sum", model=model, status="error") == 1.5
    assert value("smart_agent_e2e_request_latency_seconds_count", model=model, status="done") == 0
    assert value("smart_agent_generation_tokens_total", model=model) == 1


async def test_metered_when_turn_ends_without_a_verdict_then_status_error(model: str) -> None:
    clock, closed = Ticks(), []
    await drain(meter(clock, [(0.5, TextDelta("a"))], model, closed))
    assert value("smart_agent_e2e_request_latency_seconds_count", model=model, status="error") == 1
    assert value("smart_agent_e2e_request_latency_seconds_sum", model=model, status="error") == 0.5


async def test_metered_when_no_text_then_no_first_token_observed(model: str) -> None:
    clock, closed = Ticks(), []
    await drain(meter(clock, [(0.5, ReplyDone("", 0))], model, closed))
    assert value("smart_agent_time_to_first_token_seconds_count", model=model) == 0
    assert value("smart_agent_generation_tokens_total", model=model) == 0
    assert value("smart_agent_e2e_request_latency_seconds_count", model=model, status="done") == 1


async def test_metered_when_clock_starts_then_it_starts_at_the_call_not_at_the_first_read(model: str) -> None:
    clock, closed = Ticks(), []
    events = meter(clock, [(1.0, TextDelta("a")), (1.0, ReplyDone("a", 0))], model, closed)
    clock.t = 100.75  # queued before anyone reads: part of the time to first token, as in vLLM
    await drain(events)
    assert value("smart_agent_time_to_first_token_seconds_sum", model=model) == 1.0


async def test_metered_when_reader_closes_early_then_inner_closed_and_status_closed(model: str) -> None:
    clock, closed = Ticks(), []
    events = meter(clock, DONE_STEPS, model, closed)
    async for event in events:
        if isinstance(event, TextDelta):
            break
    clock.t = 101.5
    await events.aclose()
    assert closed == [True]
    assert value("smart_agent_e2e_request_latency_seconds_sum", model=model, status="closed") == 1.5
    assert value("smart_agent_generation_tokens_total", model=model) == 1


async def test_metered_when_reader_cancelled_then_cancellation_propagates_and_status_cancelled(
    model: str,
) -> None:
    clock, closed = Ticks(), []
    first = asyncio.Event()

    async def hangs() -> AsyncGenerator[AgentEvent, None]:
        try:
            clock.t = 100.5
            yield TextDelta("a")
            first.set()
            await asyncio.Event().wait()  # the model goes quiet
            yield TextDelta("never")
        finally:
            closed.append(True)

    async def read() -> None:
        async for _ in metered(hangs(), model, clock.now):
            pass

    task = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 5)
    clock.t = 102.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert closed == [True]
    assert value("smart_agent_e2e_request_latency_seconds_sum", model=model, status="cancelled") == 2.0


async def test_metered_when_inner_raises_then_error_propagates_and_status_error(model: str) -> None:
    clock = Ticks()

    async def breaks() -> AsyncGenerator[AgentEvent, None]:
        clock.t = 100.5
        yield TextDelta("a")
        clock.t = 100.75
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await drain(metered(breaks(), model, clock.now))
    assert value("smart_agent_e2e_request_latency_seconds_sum", model=model, status="error") == 0.75


def _samples() -> list[Any]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    return [s for f in text_string_to_metric_families(body.decode()) for s in f.samples]


def test_render_when_every_metric_used_then_all_names_present_with_outcome_labels_only(model: str) -> None:
    metrics.ui_events(model, 3)
    metrics.run_started()
    metrics.run_ended("done")
    metrics.sse_connection_opened()
    metrics.sse_resume("replayed")
    metrics.sse_connection_closed("client_gone")
    metrics.api_request(201)
    body = metrics.render()[0].decode()
    for name in NAMES:
        assert f"# TYPE {name} " in body, name
    ours = [s for s in _samples() if s.name.startswith("smart_agent_")]
    assert {s.name for s in ours} >= {
        "smart_agent_ui_events_total",
        "smart_agent_runs_total",
        "smart_agent_runs_active",
        "smart_agent_sse_connections",
        "smart_agent_sse_resumes_total",
        "smart_agent_sse_disconnects_total",
        "smart_agent_api_requests_total",
    }
    for sample in ours:
        assert set(sample.labels) <= ALLOWED_LABELS, sample


def _bump(action: Callable[[], None], name: str, **labels: str) -> float:
    before = value(name, **labels)
    action()
    return value(name, **labels) - before


def test_runs_when_started_and_ended_then_active_gauge_and_status_counter_move() -> None:
    for protocol in metrics.PROTOCOLS:  # present before the first run ends
        for status in ("done", "error", "cancelled"):
            labels = {"protocol": protocol, "status": status}
            assert REGISTRY.get_sample_value("smart_agent_runs_total", labels) is not None
    runs = {"protocol": "runs"}
    assert _bump(metrics.run_started, "smart_agent_runs_active", **runs) == 1
    assert _bump(lambda: metrics.run_ended("cancelled"), "smart_agent_runs_active", **runs) == -1
    assert _bump(lambda: metrics.run_ended("error"), "smart_agent_runs_total", **runs, status="error") == 1
    metrics.run_started()  # the gauge back where it was


def test_sse_when_reported_then_connections_gauge_and_outcome_counters_move() -> None:
    runs = {"protocol": "runs"}
    assert _bump(metrics.sse_connection_opened, "smart_agent_sse_connections", **runs) == 1
    assert _bump(lambda: metrics.sse_connection_closed("ended"), "smart_agent_sse_connections", **runs) == -1
    metrics.sse_connection_opened()
    closed = lambda: metrics.sse_connection_closed("send_timeout")  # noqa: E731
    assert _bump(closed, "smart_agent_sse_disconnects_total", **runs, reason="send_timeout") == 1
    resumed = lambda: metrics.sse_resume("expired")  # noqa: E731
    assert _bump(resumed, "smart_agent_sse_resumes_total", **runs, result="expired") == 1


async def test_protocol_when_set_in_a_request_context_then_its_tasks_count_under_it() -> None:
    """What a run's task and a stream's task count carries the protocol of the request that started
    them: the tasks copy the context, and another request's label does not leak into it."""

    async def request(protocol: str) -> None:
        metrics.PROTOCOL.set(protocol)
        metrics.api_request(200)
        metrics.run_started()
        await asyncio.create_task(_end_run())

    async def _end_run() -> None:
        metrics.run_ended("done")

    before = {p: value("smart_agent_runs_total", protocol=p, status="done") for p in metrics.PROTOCOLS}
    requests = {p: value("smart_agent_api_requests_total", protocol=p, code="200") for p in metrics.PROTOCOLS}
    await asyncio.gather(*(asyncio.create_task(request(p)) for p in metrics.PROTOCOLS))
    for p in metrics.PROTOCOLS:
        assert value("smart_agent_runs_total", protocol=p, status="done") - before[p] == 1, p
        assert value("smart_agent_api_requests_total", protocol=p, code="200") - requests[p] == 1, p
    assert metrics.PROTOCOL.get() == "runs"  # this task's own context is untouched


async def test_present_turn_when_reply_streams_then_the_ui_events_it_sent_are_counted(model: str) -> None:
    """The real Chainlit session and messages; only the socket is a recorder."""
    chainlit_patches.install(app_hooks())
    sent: list[str] = []

    async def emit(event: str, data: Any) -> None:
        sent.append(event)

    session = WebsocketSession(
        id=uuid.uuid4().hex,
        socket_id="sid",
        emit=emit,
        emit_call=lambda *_: None,
        user_env={},
        client_type="webapp",
    )

    async def turn() -> AsyncGenerator[AgentEvent, None]:
        for word in ["one", " two", " three", " four"]:
            yield TextDelta(word)
        yield ReplyDone("one two three four", 0)

    try:
        init_ws_context(session)
        # Batching off: one UI event per piece of text, so the count is known in advance.
        settings = Settings(stream_batching=False, show_stats=False)
        await present_turn(turn(), settings, model=model)
    finally:
        user_sessions.pop(session.id, None)
        await session.delete()
    text_events = sent.count("stream_start") + sent.count("stream_token")
    assert text_events == 4
    assert value("smart_agent_ui_events_total", model=model) == 4
