"""The SSE API end to end: the real app on 127.0.0.1, the scripted model, httpx + httpx-sse."""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smart_agent.config import DEFAULT_ATTACHMENT_MAX_FILES, DEFAULT_ATTACHMENT_MAX_MB
from smart_agent.web.security import RUNS_PATH, body_limits
from tests.api_client import Event, events, get_run, read_all, start_run, text_of
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

HEARTBEAT = 0.4
RUNS_BODY_LIMIT = body_limits(DEFAULT_ATTACHMENT_MAX_MB * 1_000_000, DEFAULT_ATTACHMENT_MAX_FILES)[RUNS_PATH]
MAX_RUNS = 3
MAX_STREAMS = 4


@pytest.fixture(scope="module", params=["memory", "redis"])
def base(
    request: pytest.FixtureRequest, scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One app per run log (memory, Redis): short heartbeats and small limits, so both can be seen."""
    env = clean_env(
        OPENAI_API_KEY="test-key",
        SMART_AGENT_SSE_HEARTBEAT=str(HEARTBEAT),
        SMART_AGENT_API_MAX_RUNS=str(MAX_RUNS),
        SMART_AGENT_API_MAX_STREAMS=str(MAX_STREAMS),
    )
    if request.param == "redis":
        env["SMART_AGENT_REDIS_URL"] = request.getfixturevalue("redis_server").url
    log_dir: Path = tmp_path_factory.mktemp("api")
    mcp = log_dir / "mcp.json"
    echo = {"command": sys.executable, "args": [str(Path(__file__).with_name("mcp_echo_server.py"))]}
    mcp.write_text(json.dumps({"mcpServers": {"echo": echo}}))
    flags = ("--base-url", scripted.url, "--model", MODEL_ID, "--mcp-config", str(mcp))
    with running_app(*flags, env=env, log_dir=log_dir) as (url, _):
        yield url


def _words(count: int) -> str:
    return "".join(script_tokens(count))


def _without_heartbeats(received: list[Event]) -> list[Event]:
    return [event for event in received if event.kind != "heartbeat"]


def _ids(received: list[Event]) -> list[tuple[int, ...]]:
    """Event ids as comparable numbers: `7` in memory, `1764000000000-3` from Redis."""
    return [tuple(int(part) for part in event.id.split("-")) for event in received if event.id is not None]


def test_run_when_read_from_start_then_every_event_in_order_and_the_text_exact(base: str) -> None:
    run = start_run(base, "hello #script tokens=60 rate=200")
    assert run["status"] == "running" and run["events_url"] == f"/api/v1/runs/{run['id']}/events"
    received = read_all(base, run["id"])
    kinds = [event.kind for event in received if event.kind != "heartbeat"]
    assert kinds[0] == "token" and kinds[-1] == "done" and kinds.count("done") == 1
    assert "progress" in kinds and "error" not in kinds
    ids = _ids(received)
    assert ids == sorted(set(ids)), "ids strictly increase"
    assert text_of(received) == _words(60)
    done = received[-1].data
    assert done["finish_reason"] == "stop" and done["tokens"] == 60
    assert 0 <= done["ttft_s"] <= done["duration_s"]
    state = get_run(base, run["id"]).json()
    assert state == {
        "id": run["id"],
        "status": "done",
        "text": _words(60),
        "reasoning": "",
        "usage": state["usage"],
    }
    assert state["usage"]["tokens"] == 60


def test_tokens_when_model_is_fast_then_batched_but_first_token_alone(base: str) -> None:
    run = start_run(base, "#script tokens=400 rate=2000")
    tokens = [event for event in read_all(base, run["id"]) if event.kind == "token"]
    assert tokens[0].data["text"] == " w00000"  # the first token goes at once, alone
    assert len(tokens) < 400 / 5  # then batched: 20 events/s at most over ~0.2 s
    assert text_of(tokens) == _words(400)


@pytest.mark.timing
def test_progress_when_streaming_then_at_most_twice_a_second(base: str) -> None:
    run = start_run(base, "#script tokens=150 rate=100")
    progress = [event for event in read_all(base, run["id"]) if event.kind == "progress"]
    assert 2 <= len(progress) <= 1.5 / 0.5 + 2
    assert [event.data["tokens"] for event in progress] == sorted(event.data["tokens"] for event in progress)
    assert set(progress[-1].data) == {
        "tokens",
        "tokens_per_second",
        "elapsed_s",
        "percent_complete",
        "estimated_seconds_remaining",
        "confidence",
    }
    assert all(0 <= event.data["percent_complete"] < 100 for event in progress)
    assert 0 < progress[-1].data["confidence"] <= 1
    assert 50 <= progress[-1].data["tokens_per_second"] <= 200


def test_resume_when_last_event_id_given_then_strictly_after_it_with_no_gap(base: str) -> None:
    run = start_run(base, "#script tokens=120 rate=150")
    # heartbeats (no id) come whenever the run is silent for 0.4 s, as on a busy machine: not compared
    reading = events(base, run["id"])
    try:
        first = list(itertools.islice((event for event in reading if event.kind != "heartbeat"), 3))
    finally:
        reading.close()  # the client leaves after three events
    rest = _without_heartbeats(read_all(base, run["id"], after=first[-1].id))
    whole = _without_heartbeats(read_all(base, run["id"]))
    assert [*first, *rest] == whole
    by_query = _without_heartbeats(read_all(base, run["id"], params={"last_event_id": first[0].id or ""}))
    assert by_query == whole[1:]


def test_reader_when_disconnecting_then_the_run_goes_on(base: str) -> None:
    run = start_run(base, "#script tokens=80 rate=200")
    assert len(list(events(base, run["id"], limit=1))) == 1
    deadline = time.monotonic() + 10
    while get_run(base, run["id"]).json()["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert get_run(base, run["id"]).json()["text"] == _words(80)


def test_reader_when_asking_to_cancel_on_disconnect_then_the_run_is_cancelled(base: str) -> None:
    run = start_run(base, "#script tokens=500 rate=50")
    params = {"cancel_on_disconnect": "true"}
    received = list(events(base, run["id"], params=params, limit=2))
    deadline = time.monotonic() + 5
    while get_run(base, run["id"]).json()["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    state = get_run(base, run["id"]).json()
    assert state["status"] == "cancelled"
    assert state["text"].startswith(text_of(received)) and len(state["text"]) < len(_words(500))


def test_reader_when_resuming_after_the_end_then_204_stops_eventsource(base: str) -> None:
    run = start_run(base, "#script tokens=5")
    received = read_all(base, run["id"])
    response = httpx.get(
        f"{base}/api/v1/runs/{run['id']}/events", headers={"Last-Event-ID": received[-1].id or ""}
    )
    assert response.status_code == 204


def test_heartbeat_when_model_is_silent_then_named_events_without_id(base: str) -> None:
    run = start_run(base, "#script tokens=3 first_delay=1.5")
    received = read_all(base, run["id"])
    beats = [event for event in received if event.kind == "heartbeat"]
    first_token = next(index for index, event in enumerate(received) if event.kind == "token")
    assert 2 <= first_token <= 1.5 / HEARTBEAT + 1
    assert all(event.id is None and event.data == {} for event in beats)
    assert all(event.kind == "heartbeat" for event in received[:first_token])


def test_pacing_when_reader_asks_for_fewer_events_then_gets_them_and_the_same_text(base: str) -> None:
    run = start_run(base, "#script tokens=300 rate=200")
    slow = read_all(base, run["id"], params={"max_events_per_second": "2", "flush_interval": "0.5"})
    fast = read_all(base, run["id"])
    assert text_of(slow) == text_of(fast) == _words(300)
    slow_tokens = sum(event.kind == "token" for event in slow)
    fast_tokens = sum(event.kind == "token" for event in fast)
    assert slow_tokens < fast_tokens
    resumed = read_all(base, run["id"], after=slow[len(slow) // 2].id)
    assert text_of(slow[: len(slow) // 2 + 1]) + text_of(resumed) == _words(300)


@pytest.mark.timing
def test_cancel_when_running_then_error_cancelled_ends_the_stream_and_keeps_the_text(base: str) -> None:
    run = start_run(base, "#script tokens=1000 rate=50")
    received: list[Event] = []
    cancelled_at: list[float] = []
    for event in events(base, run["id"]):
        received.append(event)
        if event.kind == "token" and not cancelled_at:
            cancelled_at.append(time.monotonic())
            answer = httpx.post(f"{base}/api/v1/runs/{run['id']}/cancel")
            assert answer.status_code == 202 and answer.json()["status"] == "running"
    ended = time.monotonic()
    assert received[-1].kind == "error"
    assert received[-1].data == {"code": "cancelled", "message": "The run was cancelled.", "retryable": False}
    assert ended - cancelled_at[0] < 3.0  # about 0.1 s here; the run had 20 s left
    state = get_run(base, run["id"]).json()
    assert state["status"] == "cancelled" and state["text"] == text_of(received)
    again = httpx.post(f"{base}/api/v1/runs/{run['id']}/cancel")
    assert again.status_code == 200 and again.json() == {"id": run["id"], "status": "cancelled"}


def test_tools_when_the_model_calls_one_then_call_and_result_events(base: str) -> None:
    run = start_run(base, "#script tool=calculator expr=6*7 tokens=5")
    received = [event for event in read_all(base, run["id"]) if event.kind not in ("heartbeat", "progress")]
    call, result = received[0], received[1]
    assert call.kind == "tool_call" and call.data["name"] == "calculator"
    assert '"6*7"' in call.data["arguments"]
    assert result.kind == "tool_result" and result.data["call_id"] == call.data["call_id"]
    assert result.data["result"] == "42" and result.data["is_error"] is False
    assert received[-1].kind == "done"


def test_tools_when_the_model_calls_an_mcp_servers_tool_then_it_answers_like_in_the_chat(base: str) -> None:
    run = start_run(base, '#script tool=shout args_raw={"text":"api"}')
    received = read_all(base, run["id"])
    results = [event.data for event in received if event.kind == "tool_result"]
    assert results and results[0]["name"] == "shout" and results[0]["result"] == "API!"
    assert text_of(received) == "Result: API!"


def test_model_failure_when_mid_stream_then_error_event_and_partial_text_kept(base: str) -> None:
    run = start_run(base, "#script tokens=50 cut=10 rate=200")
    received = read_all(base, run["id"])
    assert received[-1].kind == "error" and received[-1].data["code"] == "model_error"
    assert text_of(received) == _words(10)
    state = get_run(base, run["id"]).json()
    assert state["status"] == "error" and state["text"] == _words(10)


def test_limits_when_too_many_runs_or_streams_then_429_with_retry_after(base: str) -> None:
    slow = [start_run(base, "#script tokens=2000 rate=20") for _ in range(MAX_RUNS)]
    try:
        refused = httpx.post(f"{base}/api/v1/runs", json={"messages": [{"role": "user", "content": "x"}]})
        assert refused.status_code == 429 and refused.headers["retry-after"].isdigit()
        assert refused.json()["error"]["code"] == "limit_exceeded"
        opened: list[httpx.Response] = []
        with httpx.Client(timeout=10) as client:
            url = f"{base}/api/v1/runs/{slow[0]['id']}/events"
            for _ in range(MAX_STREAMS):
                response = client.send(client.build_request("GET", url), stream=True)
                assert response.status_code == 200
                opened.append(response)
            extra = client.get(url)
            assert extra.status_code == 429 and extra.json()["error"]["code"] == "limit_exceeded"
            for response in opened:
                response.close()
    finally:
        for run in slow:
            httpx.post(f"{base}/api/v1/runs/{run['id']}/cancel")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, "body"),
        (b"[1, 2]", 400, "body"),
        (b'{"messages": []}', 400, "messages"),
        (b'{"messages": "hi"}', 400, "messages"),
        (b'{"messages": [{"role": "robot", "content": "hi"}]}', 400, "messages[0].role"),
        (b'{"messages": [{"role": "user", "content": 5}]}', 400, "messages[0].content"),
        (b'{"messages": [{"role": "user", "content": "  "}]}', 400, "messages[0].content"),
        (b'{"messages": [{"role": "user", "content": "hi", "name": "x"}]}', 400, "messages[0].name"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "model": 3}', 400, "model"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stream": true}', 400, "stream"),
        (b'{"messages": [{"role": "assistant", "content": "hi"}]}', 400, "messages[0].role"),
        (b'{"messages": [{"role": "user", "content": "%s"}]}' % (b"a" * 60_000), 413, "messages[0].content"),
        # Over 2 MiB but within what a run with images may take: refused for its text, not its size.
        (
            b'{"messages": [{"role": "user", "content": "%s"}]}' % (b"a" * 3_000_000),
            413,
            "messages[0].content",
        ),
        (b'{"messages": [{"role": "user", "content": "%s"}]}' % (b"a" * RUNS_BODY_LIMIT), 413, "body"),
    ],
)
def test_bad_request_when_posted_then_4xx_json_naming_the_field(
    base: str, body: bytes, status: int, field: str
) -> None:
    response = httpx.post(f"{base}/api/v1/runs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"]["field"] == field


def test_bad_reads_when_sent_then_4xx_naming_the_problem(base: str) -> None:
    run = start_run(base, "#script tokens=3")
    read_all(base, run["id"])
    url = f"{base}/api/v1/runs/{run['id']}/events"
    assert (
        httpx.get(
            url,
            headers={
                "Last-Event-ID": "99999999999999-0"
                if "-" in (read_all(base, run["id"])[0].id or "")
                else "99999"
            },
        ).json()["error"]["field"]
        == "Last-Event-ID"
    )
    assert httpx.get(url, params={"last_event_id": "abc"}).status_code == 400
    assert httpx.get(url, params={"flush_interval": "0.001"}).json()["error"]["field"] == "flush_interval"
    assert httpx.get(url, params={"max_events_per_second": "1e9"}).status_code == 400
    assert httpx.get(url, params={"cancel_on_disconnect": "maybe"}).status_code == 400
    for path in ("/api/v1/runs/run_nope", "/api/v1/runs/run_nope/events"):
        missing = httpx.get(base + path)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert httpx.post(f"{base}/api/v1/runs/run_nope/cancel").status_code == 404
    # Paths the API does not have answer in its JSON shape, not with the chat page.
    for method, path in [
        ("GET", "/api/v1/runs/..%2F..%2Fetc%2Fpasswd/events"),
        ("GET", "/api/v2/runs"),
        ("DELETE", "/api/v1/runs"),
    ]:
        stray = httpx.request(method, base + path)
        assert stray.status_code in (404, 405) and stray.headers["content-type"] == "application/json", path


class _Drops:
    """Reads a live run through several connections, dropping each after some events."""

    def __init__(self, base: str, run_id: str) -> None:
        self.base, self.run_id = base, run_id
        self.received: list[Event] = []

    def read(self, drops: list[int]) -> None:
        after: str | None = None
        for limit in [*drops, None]:
            for event in events(self.base, self.run_id, after=after, limit=limit):
                if event.kind != "heartbeat":
                    self.received.append(event)
                    after = event.id
            if self.received and self.received[-1].kind in ("done", "error"):
                return


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drops=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=5))
def test_reconnects_when_dropped_anywhere_then_events_equal_the_runs_exactly(
    base: str, drops: list[int]
) -> None:
    run = start_run(base, "#script tokens=150 rate=600")
    reader = _Drops(base, run["id"])
    thread = threading.Thread(target=reader.read, args=(drops,))
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    whole = [event for event in read_all(base, run["id"]) if event.kind != "heartbeat"]
    assert reader.received == whole
    assert text_of(reader.received) == _words(150)
