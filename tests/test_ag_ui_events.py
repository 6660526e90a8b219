"""Reading a whole run for clients that cannot resume (runs/reading.py), and AG-UI's presenter on it:
a reader that falls behind goes on, losing nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from smart_agent.api.ag_ui_events import Presenter, stream
from smart_agent.runs.events import DONE, TOKEN, RunEvent
from smart_agent.runs.log import ReaderTooSlowError
from smart_agent.runs.memory import MemoryRunLog
from smart_agent.runs.reading import read_through


class FallsBehindOnce(MemoryRunLog):
    """The in-memory log, whose first read fails after `after_events` events, as a Redis reader
    does when it falls behind its buffer."""

    def __init__(self, after_events: int) -> None:
        super().__init__(60.0)
        self.after_events = after_events
        self.reads: list[str | None] = []

    async def read(self, run_id: str, after: str | None = None) -> AsyncGenerator[RunEvent, None]:
        self.reads.append(after)
        count = 0
        async for event in super().read(run_id, after):
            if len(self.reads) == 1 and count == self.after_events:
                raise ReaderTooSlowError("the reader fell behind the events kept")
            count += 1
            yield event


async def test_stream_when_the_reader_falls_behind_then_it_goes_on_from_its_last_event() -> None:
    log = FallsBehindOnce(after_events=3)
    await log.create("run_1", "", 4)
    words = [f"w{i} " for i in range(8)]
    for word in words:
        await log.append("run_1", TOKEN, {"text": word})
    await log.finish("run_1", DONE, {})
    shown: list[dict[str, Any]] = []
    async for chunk in stream(log, "run_1", Presenter("thread", "run"), None):
        for line in chunk.decode().splitlines():
            if line.startswith("data:"):
                shown.append(json.loads(line[5:]))
    text = "".join(event["delta"] for event in shown if event["type"] == "TEXT_MESSAGE_CONTENT")
    assert text == "".join(words)
    assert shown[-1]["type"] == "RUN_FINISHED"
    assert len(log.reads) == 2 and log.reads[1] is not None  # read again from where it stopped


async def test_read_through_when_the_reader_falls_behind_then_every_event_once_in_order() -> None:
    log = FallsBehindOnce(after_events=2)
    await log.create("run_1", "", 4)
    for word in ("a", "b", "c", "d"):
        await log.append("run_1", TOKEN, {"text": word})
    await log.finish("run_1", DONE, {})
    events = [event async for event in read_through(log, "run_1")]
    assert [event.data.get("text") for event in events if event.kind == TOKEN] == ["a", "b", "c", "d"]
    assert [event.kind for event in events][-1] == DONE
    assert len({event.id for event in events}) == len(events)
