"""One reader's event stream in process: a frozen client is cut off, a slow one is disconnected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from smart_agent.agent.events import AgentEvent, TextDelta
from smart_agent.api.access import Access
from smart_agent.api.keys import KEYS_FILE, KeyStore
from smart_agent.api.routes import Api, build_router
from smart_agent.api.schema import StreamOptions
from smart_agent.api.sse import stream_events
from smart_agent.api.turns import Turns
from smart_agent.config import Settings
from smart_agent.runs.manager import RunManager
from smart_agent.runs.memory import MemoryRunLog
from smart_agent.streaming.batcher import BatchPolicy


async def _chatty() -> AsyncGenerator[AgentEvent, None]:
    for number in range(1_000_000):
        yield TextDelta(f" w{number}")
        await asyncio.sleep(0)


async def test_frozen_client_when_a_send_blocks_then_the_stream_is_closed_and_its_slot_freed(
    tmp_path: Path,
) -> None:
    settings = Settings(sse_send_timeout=0.2, api_key="k", base_url="http://127.0.0.1:9/v1")
    manager = RunManager(MemoryRunLog(60), BatchPolicy(enabled=False))
    api = Api(settings, manager, Turns(settings), Access(KeyStore(tmp_path / KEYS_FILE), True))
    app = FastAPI()
    app.include_router(build_router(api))
    record = await manager.start("", _chatty(), 4)
    frozen = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client never says anything (nor disconnects)
        return {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            frozen.set()
            await asyncio.Event().wait()  # its socket buffer is full and stays full

    scope = {
        "type": "http",
        "method": "GET",
        "path": f"/api/v1/runs/{record.id}/events",
        "raw_path": f"/api/v1/runs/{record.id}/events".encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
        "http_version": "1.1",
    }
    serving = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(frozen.wait(), 5)
    assert api.slots.open[""] == 1
    with pytest.raises(TimeoutError):  # sse-starlette's SendTimeoutError
        await asyncio.wait_for(serving, 5)
    assert api.slots.open == {}
    await manager.aclose()
    await api.turns.aclose()


async def test_reader_when_it_falls_behind_the_kept_events_then_disconnected_without_a_terminal() -> None:
    log = MemoryRunLog(60, max_events=50)
    manager = RunManager(log, BatchPolicy(enabled=False))
    record = await manager.start("", _chatty(), 4)
    received = []
    async for event in stream_events(log, record.id, None, StreamOptions(), heartbeat_seconds=5):
        received.append(event)
        await asyncio.sleep(0.01)  # a reader much slower than the producer
    assert received and {event.event for event in received} <= {"token", "progress"}  # no terminal event
    await manager.aclose()
