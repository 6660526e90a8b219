"""Prometheus metrics of every surface (the chat UI and the API), on prometheus-client's default registry.

Names and buckets follow vLLM's (`vllm:time_to_first_token_seconds`, ...) so existing LLM-serving
dashboards read them. Labels carry the model, the API's protocol and an outcome only — never a user,
key or run id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from contextvars import ContextVar
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from smart_agent.agent.events import (
    AgentEvent,
    ReasoningDelta,
    ReplyDone,
    ReplyFailed,
    TextDelta,
    UsageReported,
)

# vLLM's buckets (vllm/v1/metrics/loggers.py): TTFT from 1 ms to 2560 s, e2e from 0.3 s to 7680 s.
TTFT_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
# vLLM's inter-token buckets start at 10 ms; a small local model streams faster than that here
# (SmolLM2 on two cores: a few ms per token), so 1, 2.5 and 5 ms come first.
ITL_BUCKETS: Final = (
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
)  # fmt: skip
E2E_BUCKETS: Final = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip

# The outcomes of a reply (the `status` of the e2e histogram).
DONE: Final = "done"
ERROR: Final = "error"
CANCELLED: Final = "cancelled"
CLOSED: Final = "closed"
"""Its reader stopped reading before the reply ended (and did not cancel it)."""

TIME_TO_FIRST_TOKEN = Histogram(
    "smart_agent_time_to_first_token_seconds",
    "Seconds from the start of a reply to its first text or thinking.",
    ["model"],
    buckets=TTFT_BUCKETS,
)


INTER_TOKEN_LATENCY = Histogram(
    "smart_agent_inter_token_latency_seconds",
    "Seconds between two successive pieces of a reply's text or thinking.",
    ["model"],
    buckets=ITL_BUCKETS,
)
E2E_REQUEST_LATENCY = Histogram(
    "smart_agent_e2e_request_latency_seconds",
    "Seconds from the start of a reply to its end, by outcome.",
    ["model", "status"],
    buckets=E2E_BUCKETS,
)
GENERATION_TOKENS = Counter(
    "smart_agent_generation_tokens_total", "Pieces of reply text and thinking the model streamed.", ["model"]
)
# The server's own counts (the `usage` of its replies), where it reports them.
PROMPT_TOKENS = Counter(
    "smart_agent_prompt_tokens_total",
    "Prompt tokens of the model's requests, as the server counted.",
    ["model"],
)
COMPLETION_TOKENS = Counter(
    "smart_agent_completion_tokens_total",
    "Tokens the model generated (thinking included), as the server counted.",
    ["model"],
)
REASONING_TOKENS = Counter(
    "smart_agent_reasoning_tokens_total",
    "Thinking tokens the model generated, as the server counted.",
    ["model"],
)
UI_EVENTS = Counter(
    "smart_agent_ui_events_total", "UI events the batching sent for reply text (chat UI).", ["model"]
)
# The API's protocols (the `protocol` label): our runs API and the presenters over the same run log.
PROTOCOLS: Final = ("runs", "ai-sdk", "ag-ui", "openai", "seed004")
PROTOCOL: ContextVar[str] = ContextVar("smart_agent_protocol", default="runs")
"""The protocol of the request being served; set once per route (api/mount.py), it reaches the run's
task and the stream's, which copy the context they start in."""

API_REQUESTS = Counter(
    "smart_agent_api_requests_total",
    "API requests answered, by protocol and HTTP status.",
    ["protocol", "code"],
)
RUNS_ACTIVE = Gauge("smart_agent_runs_active", "API runs in progress.", ["protocol"])
RUNS = Counter("smart_agent_runs_total", "API runs ended, by final status.", ["protocol", "status"])
SSE_CONNECTIONS = Gauge("smart_agent_sse_connections", "Open SSE connections of the API.", ["protocol"])
SSE_RESUMES = Counter(
    "smart_agent_sse_resumes_total",
    "SSE reconnections with Last-Event-ID, by result.",
    ["protocol", "result"],
)
SSE_DISCONNECTS = Counter(
    "smart_agent_sse_disconnects_total", "SSE connections closed, by reason.", ["protocol", "reason"]
)
for _protocol in PROTOCOLS:  # present from the start, so rate() sees the first one
    RUNS_ACTIVE.labels(_protocol)
    SSE_CONNECTIONS.labels(_protocol)
    for _status in (DONE, ERROR, CANCELLED):
        RUNS.labels(_protocol, _status)


def metered(
    events: AsyncGenerator[AgentEvent, None], model: str, now: Callable[[], float] = time.perf_counter
) -> AsyncGenerator[AgentEvent, None]:
    """`events` unchanged, observing time to first text (or thinking), inter-token latency, e2e latency,
    tokens and the server's token counts.

    The clock starts at this call, so time spent before the first read (queueing) counts, as in
    vLLM. Closing the result closes `events`; a cancellation still propagates.
    """
    return _metered(events, model, now, now())


async def _metered(
    events: AsyncGenerator[AgentEvent, None], model: str, now: Callable[[], float], start: float
) -> AsyncGenerator[AgentEvent, None]:
    # Bound once: each piece of text then costs a clock read, one observe and a few compares.
    first_token = TIME_TO_FIRST_TOKEN.labels(model).observe
    inter_token = INTER_TOKEN_LATENCY.labels(model).observe
    tokens = 0
    last: float | None = None
    status: str | None = None
    ended = start
    try:
        async with aclosing(events) as stream:
            async for event in stream:
                kind = type(event)
                if kind is TextDelta or kind is ReasoningDelta:
                    t = now()
                    if last is None:
                        first_token(t - start)
                    else:
                        inter_token(t - last)
                    last = t
                    tokens += 1
                elif isinstance(event, UsageReported):
                    PROMPT_TOKENS.labels(model).inc(event.prompt_tokens)
                    COMPLETION_TOKENS.labels(model).inc(event.completion_tokens)
                    REASONING_TOKENS.labels(model).inc(event.reasoning_tokens)
                elif status is None and isinstance(event, ReplyDone | ReplyFailed):
                    ended = now()
                    status = DONE if isinstance(event, ReplyDone) else ERROR
                yield event
        if status is None:  # the agent stopped without saying how: not an answer
            ended, status = now(), ERROR
    except asyncio.CancelledError:
        if status is None:
            ended, status = now(), CANCELLED
        raise
    except GeneratorExit:
        if status is None:
            ended, status = now(), CLOSED
        raise
    except BaseException:
        if status is None:
            ended, status = now(), ERROR
        raise
    finally:
        if status is not None:
            E2E_REQUEST_LATENCY.labels(model, status).observe(ended - start)
        if tokens:
            GENERATION_TOKENS.labels(model).inc(tokens)


def ui_events(model: str, count: int) -> None:
    """Count the UI events the batching sent for one reply."""
    if count:
        UI_EVENTS.labels(model).inc(count)


def api_request(code: int | str) -> None:
    """An API request was answered with HTTP status `code`, on the current protocol."""
    API_REQUESTS.labels(PROTOCOL.get(), str(code)).inc()


def run_started() -> None:
    """An API run began."""
    RUNS_ACTIVE.labels(PROTOCOL.get()).inc()


def run_ended(status: str) -> None:
    """An API run ended with `status` (done, error or cancelled)."""
    protocol = PROTOCOL.get()  # the run's task copied the context of the request that started it
    RUNS_ACTIVE.labels(protocol).dec()
    RUNS.labels(protocol, status).inc()


def sse_connection_opened() -> None:
    """An SSE stream of the API opened."""
    SSE_CONNECTIONS.labels(PROTOCOL.get()).inc()


def sse_connection_closed(reason: str) -> None:
    """An SSE stream closed, for `reason` (e.g. ended, client_gone, send_timeout)."""
    protocol = PROTOCOL.get()
    SSE_CONNECTIONS.labels(protocol).dec()
    SSE_DISCONNECTS.labels(protocol, reason).inc()


def sse_resume(result: str) -> None:
    """A client resumed a stream with Last-Event-ID, with `result` (e.g. replayed, expired)."""
    SSE_RESUMES.labels(PROTOCOL.get(), result).inc()


def render() -> tuple[bytes, str]:
    """The registry in Prometheus's text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
