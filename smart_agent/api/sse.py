"""One reader's event stream: the run log's events as SSE, paced for this reader, with heartbeats."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any

from sse_starlette import ServerSentEvent

from smart_agent.api.schema import StreamOptions
from smart_agent.runs.events import DELTAS, HEARTBEAT, TERMINAL, TOKEN, RunEvent
from smart_agent.runs.log import RunLog, RunLogError

log = logging.getLogger("smart_agent.api")
READ_AHEAD = 64
"""Events read from the log ahead of this reader's socket; the log itself is the reader's buffer."""
RECONNECT_MS = 1_000
"""The `retry:` an EventSource waits before it reconnects by itself."""

_END = object()


def encode(event: RunEvent, retry: int | None = None) -> ServerSentEvent:
    """The SSE form of a run event: its kind as the event name, its data as compact JSON."""
    data = json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))
    return ServerSentEvent(data=data, event=event.kind, id=event.id, retry=retry)


def heartbeat() -> ServerSentEvent:
    """A named event without an id, so EventSource listeners see it and the resume point stays."""
    return ServerSentEvent(data="{}", event=HEARTBEAT)


class _Pending:
    """Text of one kind (`token` or `reasoning`) held back for a reader that asked for coarser pacing
    than the server's."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.kind = TOKEN
        self.id: str | None = None
        self.since = 0.0

    def add(self, event: RunEvent, now: float) -> None:
        if not self.text:
            self.since = now
            self.kind = event.kind
        self.text.append(event.data["text"])
        self.id = event.id

    def take(self) -> RunEvent:
        event = RunEvent(self.kind, {"text": "".join(self.text)}, self.id)
        self.text, self.id = [], None
        return event


async def stream_events(
    runs: RunLog,
    run_id: str,
    after: str | None,
    options: StreamOptions,
    heartbeat_seconds: float,
    now: Callable[[], float] | None = None,
) -> AsyncGenerator[ServerSentEvent, None]:
    """The run's events after `after` as SSE, ending after its terminal event.

    Ends early, without a terminal event, when this reader fell too far behind (the client resumes
    from its last id); raises the log's errors for an unknown or expired run before any event.
    """
    clock = now or asyncio.get_running_loop().time
    queue: asyncio.Queue[Any] = asyncio.Queue(READ_AHEAD)

    async def read() -> None:
        try:
            async for event in runs.read(run_id, after):
                await queue.put(event)
            await queue.put(_END)
        except Exception as exc:  # handed to the stream, which decides what the client sees
            await queue.put(exc)

    reader = asyncio.get_running_loop().create_task(read(), name=f"read {run_id}")
    pending = _Pending()
    spacing = 1.0 / options.max_events_per_second if options.max_events_per_second else 0.0
    interval = options.flush_interval or 0.0
    last_sent = clock()
    last_token: float | None = None
    retry: int | None = RECONNECT_MS
    try:
        while True:
            deadline = last_sent + heartbeat_seconds
            due = None
            if pending.text:
                due = max(pending.since + interval, (last_token or 0.0) + spacing)
                deadline = min(deadline, due)
            try:
                async with asyncio.timeout(max(0.0, deadline - clock())):
                    item = await queue.get()
            except TimeoutError:
                if due is not None and clock() >= due:
                    yield encode(pending.take(), retry)
                    last_token = last_sent = clock()
                else:
                    yield heartbeat()
                    last_sent = clock()
                retry = None
                continue
            if (
                isinstance(item, RunEvent)
                and item.kind in DELTAS
                and options.coalescing
                and last_token is not None
            ):
                if pending.text and pending.kind != item.kind:
                    # Text and thinking never merge: the held kind goes first, as it came.
                    yield encode(pending.take(), retry)
                    retry = None
                    last_token = last_sent = clock()
                pending.add(item, clock())
                continue
            if pending.text:
                yield encode(pending.take(), retry)
                retry = None
            if item is _END:
                return
            if isinstance(item, RunLogError):
                # A disconnect: the client resumes from its last id (too slow), or learns on its
                # next request what became of the run (expired, log unreachable).
                log.info("event stream of %s closed: %s", run_id, item)
                return
            if isinstance(item, Exception):
                raise item
            yield encode(item, retry)
            retry = None
            last_sent = clock()
            if item.kind in DELTAS:
                last_token = last_sent
            if item.kind in TERMINAL:
                return
    finally:
        # Not awaited: this runs when the stream is closed, maybe by the garbage collector, where a
        # generator must not suspend ("async generator ignored GeneratorExit"); the task ends by itself.
        reader.cancel()
