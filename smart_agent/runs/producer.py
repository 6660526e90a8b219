"""Runs an agent turn in the background and writes it to the run log: the run's only producer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

from smart_agent.agent.events import (
    AgentEvent,
    Notice,
    ReasoningDelta,
    ReasoningMoved,
    ReplyDone,
    ReplyFailed,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    UsageReported,
)
from smart_agent.errors import SmartAgentError
from smart_agent.runs.events import (
    CANCELLED,
    DONE,
    ERROR,
    INTERNAL_ERROR,
    MODEL_ERROR,
    NOTICE,
    PROGRESS,
    REASONING,
    REASONING_MOVED,
    TOKEN,
    TOOL_CALL,
    TOOL_RESULT,
    error_data,
)
from smart_agent.runs.log import RunLog, RunLogError
from smart_agent.streaming.batcher import BatchPolicy, TokenBatcher
from smart_agent.streaming.clock import Clock, MonotonicClock
from smart_agent.streaming.estimate import ReplyLengths
from smart_agent.streaming.progress import ReplyMeter

log = logging.getLogger("smart_agent.runs")


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 4)


async def produce(
    runs: RunLog,
    run_id: str,
    events: AsyncGenerator[AgentEvent, None],
    policy: BatchPolicy,
    clock: Clock | None = None,
    stopped: Callable[[], dict[str, Any]] | None = None,
    cancel_asked: Callable[[], bool] | None = None,
    lengths: ReplyLengths | None = None,
    model: str = "",
) -> dict[str, Any]:
    """Write one agent turn to the log as batched text and thinking, tool calls and results,
    notices and progress, then exactly one terminal event (also when cancelled or failing).
    Returns the usage.

    `stopped` gives the `error` data of a cancelled run (default: code `cancelled`). `cancel_asked`
    says whether a cancel was asked: checked at each event, since Python 3.11's `asyncio.wait_for`
    (under redis-py's writes) drops a cancel that lands as its inner wait ends. `lengths`
    (the recent reply lengths of `model`) adds an estimate of the rest to each progress event and
    learns this reply's length when it ends with an answer.
    """
    clock = clock or MonotonicClock()
    meter = ReplyMeter(clock)
    tool_calls = 0
    reasoning_tokens = 0
    served: dict[str, int] = {}  # the server's own counts, summed over the turn's model requests

    async def emit_text(text: str, _replaces: bool) -> None:
        await runs.append(run_id, TOKEN, {"text": text})

    async def emit_reasoning(text: str, _replaces: bool) -> None:
        await runs.append(run_id, REASONING, {"text": text})

    batcher = TokenBatcher(emit_text, policy, clock)
    thinker = TokenBatcher(emit_reasoning, policy, clock)
    # The order of text and thinking must survive the batching: only `current` holds text, the other
    # having been flushed (its write in flight awaited) when the kind last changed.
    current = batcher

    async def flush() -> None:
        await current.flush()

    def usage() -> dict[str, Any]:
        snapshot = meter.snapshot(batcher.stats.events_out + thinker.stats.events_out)
        return {
            "tokens": meter.tokens,
            "tool_calls": tool_calls,
            "ttft_s": _round(snapshot.first_token),
            "duration_s": _round(snapshot.elapsed),
            **served,
        }

    ended = False

    async def end(kind: str, data: dict[str, Any]) -> None:
        nonlocal ended
        if ended:
            return
        ended = True
        try:
            # The text so far is kept, whatever ended the run; the batcher not in use holds none.
            await (thinker if current is batcher else batcher).aclose()
            await current.aclose()
            await runs.finish(run_id, kind, data, usage())
        except RunLogError as exc:
            # The log is out of reach, or another instance already ended the run (it thought this
            # producer dead): nothing more can be written; its readers learn it from the log.
            log.warning("run %s could not be ended in the run log: %s", run_id, exc)

    try:
        async with aclosing(events) as turn:  # closing it closes the model's HTTP stream at once
            async for event in turn:
                if cancel_asked is not None and cancel_asked():
                    raise asyncio.CancelledError  # a cancel an inner wait swallowed: ended below
                if isinstance(event, TextDelta | ReasoningDelta):
                    target = batcher if isinstance(event, TextDelta) else thinker
                    if target is not current:
                        await current.flush()
                        current = target
                    if target is thinker:
                        reasoning_tokens += 1
                    await target.push(event.text)
                    if meter.on_token():
                        progress = meter.snapshot(batcher.stats.events_out + thinker.stats.events_out)
                        figures: dict[str, Any] = {
                            "tokens": progress.tokens,
                            "tokens_per_second": round(progress.tokens_per_second, 2),
                            "elapsed_s": round(progress.elapsed, 3),
                        }
                        if reasoning_tokens:
                            figures["reasoning_tokens"] = reasoning_tokens
                        if lengths is not None:
                            forecast = lengths.estimate(model, progress.tokens, progress.tokens_per_second)
                            figures.update(forecast.figures())
                        await runs.append(run_id, PROGRESS, figures)
                elif isinstance(event, ReasoningMoved):
                    await flush()
                    await runs.append(run_id, REASONING_MOVED, {"chars": event.chars})
                elif isinstance(event, UsageReported):
                    for name, count in (
                        ("prompt_tokens", event.prompt_tokens),
                        ("completion_tokens", event.completion_tokens),
                        ("reasoning_tokens", event.reasoning_tokens),
                    ):
                        served[name] = served.get(name, 0) + count
                elif isinstance(event, Notice):
                    await flush()
                    await runs.append(run_id, NOTICE, {"message": event.message})
                elif isinstance(event, ToolCallStarted):
                    tool_calls += 1
                    await flush()
                    await runs.append(
                        run_id,
                        TOOL_CALL,
                        {"call_id": event.call_id, "name": event.name, "arguments": event.arguments},
                    )
                elif isinstance(event, ToolCallFinished):
                    await flush()
                    await runs.append(
                        run_id,
                        TOOL_RESULT,
                        {
                            "call_id": event.call_id,
                            "name": event.name,
                            "result": event.result,
                            "is_error": event.is_error,
                        },
                    )
                elif isinstance(event, ReplyDone):
                    final = usage()
                    if lengths is not None:
                        lengths.record(model, meter.tokens)
                    await end(
                        DONE,
                        {
                            "finish_reason": event.finish_reason,
                            "tokens": final["tokens"],
                            "ttft_s": final["ttft_s"],
                            "duration_s": final["duration_s"],
                            **served,
                        },
                    )
                elif isinstance(event, ReplyFailed):
                    await end(ERROR, error_data(event.code, event.message))
        await end(ERROR, error_data(MODEL_ERROR, "The turn ended without an answer."))  # unless it has
    except asyncio.CancelledError:
        await end(ERROR, stopped() if stopped else error_data(CANCELLED, "The run was cancelled."))
        raise
    except RunLogError as exc:  # a write failed: the run cannot go on where nobody can read it
        log.warning("run %s stopped: the run log failed: %s", run_id, exc)
        await end(ERROR, error_data(INTERNAL_ERROR, "The run log failed; the run stopped."))
    except SmartAgentError as exc:
        await end(ERROR, error_data(MODEL_ERROR, str(exc)))
    except Exception:  # the run must end with a terminal event whatever broke; the log has the trace
        log.exception("run %s failed", run_id)
        await end(ERROR, error_data(INTERNAL_ERROR, "The run failed inside smart-agent; see its log."))
    finally:
        batcher.cancel()
        thinker.cancel()
    return usage()
