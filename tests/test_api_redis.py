"""Two app instances sharing Debian's redis-server: any instance serves, resumes and cancels any run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.api_client import Event, events, get_run, read_all, start_run, text_of
from tests.harness import Process, clean_env, running_app
from tests.redis_server import RedisServer
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

MAX_RUNS = 2


def _words(count: int) -> str:
    return "".join(script_tokens(count))


def _start(
    stack: ExitStack, scripted: ScriptedServer, redis: RedisServer, log_dir: Path
) -> tuple[str, Process]:
    env = clean_env(
        OPENAI_API_KEY="test-key",
        SMART_AGENT_REDIS_URL=redis.url,
        SMART_AGENT_API_MAX_RUNS=str(MAX_RUNS),
        SMART_AGENT_SSE_HEARTBEAT="1",
    )
    return stack.enter_context(
        running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=log_dir)
    )


@pytest.fixture(scope="module")
def pair(
    scripted: ScriptedServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Instances A and B on one Redis."""
    with ExitStack() as stack:
        a, _ = _start(stack, scripted, redis_server, tmp_path_factory.mktemp("a"))
        b, _ = _start(stack, scripted, redis_server, tmp_path_factory.mktemp("b"))
        yield a, b


def test_run_when_started_on_a_then_read_and_resumed_on_b_exactly(pair: tuple[str, str]) -> None:
    a, b = pair
    run = start_run(a, "#script tokens=200 rate=200")
    first = list(events(b, run["id"], limit=4))
    rest = read_all(a, run["id"], after=first[-1].id)  # and back to A, from B's last id
    more = read_all(b, run["id"], after=rest[len(rest) // 2].id)
    assert [*first, *rest] == read_all(b, run["id"]) == read_all(a, run["id"])
    assert more == rest[len(rest) // 2 + 1 :]
    assert text_of([*first, *rest]) == _words(200)
    assert get_run(b, run["id"]).json()["status"] == "done"
    ids = [event.id for event in [*first, *rest] if event.id]
    assert all("-" in event_id for event_id in ids)  # Redis Stream ids are the SSE ids


def test_cancel_when_asked_on_b_then_the_run_on_a_ends_cancelled(pair: tuple[str, str]) -> None:
    a, b = pair
    run = start_run(a, "#script tokens=2000 rate=50")
    received: list[Event] = []
    for event in events(a, run["id"]):
        received.append(event)
        if len(received) == 3:
            assert httpx.post(f"{b}/api/v1/runs/{run['id']}/cancel").status_code == 202
    assert received[-1].kind == "error" and received[-1].data["code"] == "cancelled"
    assert get_run(b, run["id"]).json()["text"] == text_of(received)


def test_limit_when_runs_run_on_a_then_b_counts_them_too(pair: tuple[str, str]) -> None:
    a, b = pair
    runs = [start_run(a, "#script tokens=2000 rate=50") for _ in range(MAX_RUNS)]
    try:
        refused = httpx.post(f"{b}/api/v1/runs", json={"messages": [{"role": "user", "content": "x"}]})
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "limit_exceeded"
    finally:
        for run in runs:
            httpx.post(f"{b}/api/v1/runs/{run['id']}/cancel")


def test_producer_when_killed_mid_run_then_readers_on_b_get_producer_lost_and_the_text(
    scripted: ScriptedServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        a, process = _start(stack, scripted, redis_server, tmp_path)
        b, _ = _start(stack, scripted, redis_server, tmp_path)
        run = start_run(a, "#script tokens=3000 rate=50")
        received: list[Event] = []
        killed_at = 0.0
        for event in events(b, run["id"]):
            if event.kind != "heartbeat":
                received.append(event)
            if len(received) == 5 and not killed_at:
                process.kill()  # no shutdown hook runs: what a crash looks like
                killed_at = time.monotonic()
        detected = time.monotonic() - killed_at
        assert received[-1].kind == "error"
        assert received[-1].data["code"] == "producer_lost" and received[-1].data["retryable"] is True
        assert detected < 6.0, detected
        state = get_run(b, run["id"]).json()
        assert state["status"] == "error"
        assert state["text"] == text_of(received) and _words(3000).startswith(state["text"]) and state["text"]
