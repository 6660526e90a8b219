"""Reading a whole run for a client that cannot resume by itself (the stock AI SDK, AG-UI and
OpenAI clients): a reader that falls behind goes on from its last event, losing none."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from smart_agent.runs.events import RunEvent
from smart_agent.runs.log import ReaderTooSlowError, RunLog


async def read_through(log: RunLog, run_id: str) -> AsyncGenerator[RunEvent, None]:
    """Every event of the run from its start to its end; a read that falls behind the log's
    buffer (ReaderTooSlowError) is started again after the last event it gave."""
    after: str | None = None
    while True:
        try:
            async with aclosing(log.read(run_id, after)) as events:
                async for event in events:
                    after = event.id or after
                    yield event
            return
        except ReaderTooSlowError:
            continue
