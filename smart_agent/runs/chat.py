"""Chat turns in the run log: each page turn is also a run, so a reloaded page can follow it to its end.

The page's presenter consumes the agent's events as before; `ChatRuns.record` tees them to `produce`
(the API's own producer, same batching), which writes them to the log from a task of its own, so the
page never waits on the log. A turn's run id comes from its user message's id, which the stored
thread holds: any instance sharing the log finds the run of a thread's last turn without a map.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
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
)
from smart_agent.runs.events import (
    CANCELLED,
    DONE,
    ERROR,
    NOTICE,
    REASONING,
    REASONING_MOVED,
    SNAPSHOT,
    TOKEN,
    TOOL_CALL,
    TOOL_RESULT,
)
from smart_agent.runs.log import RunLog, RunLogError, RunRecord
from smart_agent.runs.producer import produce
from smart_agent.streaming.batcher import BatchPolicy

log = logging.getLogger("smart_agent.runs.chat")

CHAT_RUNS_PER_USER = 1_000
"""Chat turns of one user that may run at once (one per open chat; the bound only stops a runaway)."""

_STOPPED = object()  # the page's turn ended early: the run ends `cancelled`


def chat_run_id(message_id: str) -> str:
    """The run id of the turn answering the user message `message_id`."""
    return f"chat_{message_id}"


def chat_owner(user: str) -> str:
    """The run log owner of a chat user's turns (never an API key's: the API refuses to serve them)."""
    return f"chat:{user}"


class ChatRuns:
    """Writes chat turns to the process's run log and cancels a turn when some instance asks."""

    def __init__(self, runs: RunLog, policy: BatchPolicy) -> None:
        self.log = runs
        self._policy = policy
        self._turns: dict[str, asyncio.Task[Any]] = {}  # run id -> the task presenting the turn
        self._producers: set[asyncio.Task[Any]] = set()
        runs.on_cancel_request(self._on_cancel_request)

    async def record(
        self, run_id: str, owner: str, events: AsyncIterator[AgentEvent]
    ) -> AsyncIterator[AgentEvent]:
        """`events` unchanged, also written to the log as run `run_id`; `events` alone when the log
        refuses the run (the chat must not depend on it)."""
        try:
            await self.log.create(run_id, owner, CHAT_RUNS_PER_USER)
        except (RunLogError, ValueError) as exc:  # full, taken id or unreachable: the page goes on
            log.warning("chat turn %s is not in the run log: %s", run_id, exc)
            return events
        return self._tee(run_id, events)

    async def _tee(self, run_id: str, events: AsyncIterator[AgentEvent]) -> AsyncGenerator[AgentEvent, None]:
        pending: list[Any] = []
        arrived = asyncio.Event()
        # Waking the producer for every token cost an extra task switch per token (measured: +45 %
        # app CPU at 100 sessions); text is taken in bursts instead, as often as the log may flush.
        pause = 1 / self._policy.max_events_per_second if self._policy.enabled else 0.0

        async def gathered() -> AsyncGenerator[AgentEvent, None]:
            while True:
                if not pending:
                    arrived.clear()
                    await arrived.wait()
                burst = pending[:]
                pending.clear()
                for event in burst:
                    if event is None:
                        return
                    if event is _STOPPED:
                        # produce() ends a cancelled turn `cancelled`, after writing the text so far.
                        raise asyncio.CancelledError
                    yield event
                if pause and all(isinstance(event, TextDelta | ReasoningDelta) for event in burst):
                    await asyncio.sleep(pause)

        producer = asyncio.get_running_loop().create_task(
            produce(self.log, run_id, gathered(), self._policy), name=f"chat run {run_id}"
        )
        self._producers.add(producer)
        producer.add_done_callback(self._producers.discard)
        task = asyncio.current_task()
        if task is not None:
            self._turns[run_id] = task
        end: object = _STOPPED
        try:
            async for event in events:
                pending.append(event)
                arrived.set()
                yield event
            end = None
        finally:
            self._turns.pop(run_id, None)
            pending.append(end)
            arrived.set()
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    def _on_cancel_request(self, run_id: str) -> None:
        task = self._turns.get(run_id)
        if task is not None:
            task.cancel()  # as the stop button of the page that started the turn would

    async def drain(self) -> None:
        """Wait until every turn's events are in the log (tests, shutdown)."""
        if self._producers:
            await asyncio.gather(*self._producers, return_exceptions=True)


async def live_run(runs: RunLog, run_id: str, owner: str) -> RunRecord | None:
    """The run `run_id` if `owner`'s and still known to the log, else None."""
    try:
        record = await runs.get(run_id)
    except RunLogError:  # unknown, expired or unreachable: nothing to follow
        return None
    return record if record.owner == owner else None


async def replay(runs: RunLog, run_id: str) -> AsyncGenerator[AgentEvent, None]:
    """A logged turn's events again, from its first to its terminal one, as the agent yielded them
    (text and thinking come in the producer's batches; progress is left out, the presenter measures
    its own)."""
    async for event in runs.read(run_id):
        data = event.data
        if event.kind == TOKEN:
            if data["text"]:
                yield TextDelta(data["text"])
        elif event.kind == REASONING:
            if data["text"]:
                yield ReasoningDelta(data["text"])
        elif event.kind == REASONING_MOVED:
            yield ReasoningMoved(data["chars"])
        elif event.kind == NOTICE:
            yield Notice(data["message"])
        elif event.kind == SNAPSHOT:
            if data.get("reasoning"):
                yield ReasoningDelta(data["reasoning"])
            if data["text"]:
                yield TextDelta(data["text"])
        elif event.kind == TOOL_CALL:
            yield ToolCallStarted(data["call_id"], data["name"], data["arguments"])
        elif event.kind == TOOL_RESULT:
            yield ToolCallFinished(data["call_id"], data["name"], "", data["result"], data["is_error"])
        elif event.kind == DONE:
            yield ReplyDone("", 0, data.get("finish_reason") or "stop")
        elif event.kind == ERROR and data.get("code") != CANCELLED:
            yield ReplyFailed(data.get("message") or "The reply failed.", data.get("code") or "")
