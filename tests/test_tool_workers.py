"""The worker pool: a time limit really stops a computation, the event loop never waits on it,
a dead worker is replaced, and no worker outlives the pool."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import psutil
import pytest

from smart_agent.agent.tools import Tool, ToolRegistry
from smart_agent.agent.workers import ToolWorkers, WorkerError
from tests.loop_lag import assert_loop_free, loop_lag


def spin(seconds: float) -> str:
    """Burn CPU in pure Python for `seconds` (runs in the worker)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


@pytest.fixture
async def workers() -> AsyncIterator[ToolWorkers]:
    pool = ToolWorkers()
    try:
        yield pool
    finally:
        await pool.aclose()


async def _dead(pid: int) -> bool:
    """Whether `pid` is gone (or a zombie) within 5 s; a killed process sends no event to await."""
    for _ in range(250):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_tool_when_over_time_limit_then_worker_killed_and_loop_free(workers: ToolWorkers) -> None:
    async def run(arguments: dict[str, object]) -> str:
        return str(await workers.run(spin, 30.0))

    registry = ToolRegistry([Tool("spin", "burn CPU", {"type": "object"}, run)], time_limit=0.5)
    await workers.warm()
    pid = workers.pids[0]
    async with loop_lag() as lag:
        started = time.perf_counter()
        result = await registry.call("spin", "{}")
        elapsed = time.perf_counter() - started
    assert result.is_error and "timed out after 0.5 s" in result.content
    assert elapsed < 1.5
    assert_loop_free(lag)
    assert pid not in workers.pids
    assert await _dead(pid)
    assert await workers.run(spin, 0.0) == "done"  # a fresh worker takes over


async def test_worker_when_it_dies_then_worker_error_and_next_call_works(workers: ToolWorkers) -> None:
    with pytest.raises(WorkerError, match="died"):
        await workers.run(os._exit, 3)
    assert await workers.run(spin, 0.0) == "done"


async def test_pool_when_closed_then_no_worker_left_and_calls_refused(workers: ToolWorkers) -> None:
    await asyncio.gather(*(workers.run(spin, 0.2) for _ in range(2)))
    pids = workers.pids
    assert len(pids) == 2
    await workers.aclose()
    assert not any(psutil.pid_exists(pid) for pid in pids)
    with pytest.raises(WorkerError, match="closed"):
        await workers.run(spin, 0.0)


async def test_function_when_result_not_json_then_worker_error_and_worker_kept(workers: ToolWorkers) -> None:
    with pytest.raises(WorkerError, match="not JSON serializable"):
        await workers.run(complex, 1)
    pids = workers.pids
    assert await workers.run(spin, 0.0) == "done"
    assert workers.pids == pids  # the same worker answered


def environment_names(_: object) -> list[str]:
    """The names of the worker's environment variables (runs in the worker)."""
    return sorted(os.environ)


async def test_worker_when_app_holds_api_key_then_worker_environment_has_no_secret(
    workers: ToolWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-key")
    monkeypatch.setenv("SMART_AGENT_MODEL", "m")
    names = await workers.run(environment_names, None)
    assert "OPENAI_API_KEY" not in names and "SMART_AGENT_MODEL" not in names
    assert "PATH" in names
