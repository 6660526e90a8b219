"""Tool isolation as a user meets it: a hostile calculation ends at once with an error while the
event loop, and so every other session, keeps going; no worker process outlives the app."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import psutil

from smart_agent.agent.tools import builtin_tools
from smart_agent.agent.workers import shared_workers
from tests.harness import clean_env, descendants, running_app
from tests.loop_lag import assert_loop_free, loop_lag
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens
from tests.sio_client import ChatClient


async def test_calculator_when_hostile_under_one_second_limit_then_error_and_loop_free() -> None:
    registry = builtin_tools(time_limit=1.0)
    await shared_workers().warm()  # a worker's start (a niced interpreter) is not the calculation's time
    async with loop_lag() as lag:
        started = time.perf_counter()
        result = await registry.call("calculator", json.dumps({"expression": "round(1, -6000000)"}))
        elapsed = time.perf_counter() - started
    assert result.is_error, result.content
    assert elapsed < 1.0
    assert_loop_free(lag)


def _workers_of(process: psutil.Process) -> list[psutil.Process]:
    return descendants("smart_agent.agent.workers", process)


async def test_app_when_hostile_calculation_then_other_session_streams_and_no_worker_outlives_app(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    probe = tmp_path / "lag.txt"
    env = clean_env(OPENAI_API_KEY="k", SMART_AGENT_TOOL_TIMEOUT="1", SMART_AGENT_LAG_PROBE=str(probe))
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, process):
        app = psutil.Process(process.pid)
        attacker, reader = ChatClient(url), ChatClient(url)
        try:
            await asyncio.gather(attacker.connect(), reader.connect())
            await reader.send("#script tokens=300 rate=100")
            await reader.wait_text(lambda text: len(text) > 0)
            probed = len(probe.read_text().split())
            started = time.monotonic()
            await attacker.send("#script tool=calculator expr=round(1,-6000000)")
            await attacker.wait_task_ends(3, seconds=30)
            attack_seconds = time.monotonic() - started
            lag_during_attack = [float(x) for x in probe.read_text().split()[probed:]]
            await reader.wait_task_ends(3, seconds=30)
            assert reader.reply() == "".join(script_tokens(300))
        finally:
            await asyncio.gather(attacker.close(), reader.close(), return_exceptions=True)
        assert attacker.reply().startswith("Result: Error: calculator failed")
        assert attack_seconds < 1.0
        gaps = [b - a for a, b in zip(reader.arrivals, reader.arrivals[1:], strict=False)]
        assert max(gaps) < 0.5, f"the other session's reply stalled for {max(gaps):.2f} s"
        assert_loop_free(lag_during_attack)
        tool_workers = _workers_of(app)
        assert tool_workers, "the calculator ran in no worker process"
    _, alive = psutil.wait_procs(tool_workers, timeout=10)
    assert not alive, f"worker processes outlived the app: {[p.pid for p in alive]}"
