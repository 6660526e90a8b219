"""The AI SDK's UI message stream end to end: the real app, the scripted model and the stock `ai`
client (DefaultChatTransport, readUIMessageStream, reconnectToStream) from Node."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from smart_agent.api.keys import KEYS_FILE, KeyStore
from tests.ai_sdk_client import chat, user_message
from tests.harness import clean_env, running_app
from tests.redis_server import RedisServer
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens, think_tokens


@pytest.fixture(scope="module")
def base(scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One app (in-memory run log) for the module's tests."""
    env = clean_env(OPENAI_API_KEY="test-key")
    log_dir: Path = tmp_path_factory.mktemp("ai-sdk")
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=log_dir) as (url, _):
        yield url


def _chat_id() -> str:
    return f"chat-{uuid.uuid4().hex[:12]}"


def _types(result: dict[str, Any]) -> list[str]:
    """The chunk types but progress (transient data, sent at the server's pace)."""
    return [chunk["type"] for chunk in result["chunks"] if chunk["type"] != "data-progress"]


def test_a_reply_when_sent_by_the_stock_transport_then_the_final_message_is_the_exact_text(
    base: str,
) -> None:
    result = chat(base, _chat_id(), [user_message("#script tokens=60 rate=2000")])
    sent = result["sent"]

    assert sent["message"]["parts"] == [
        {"type": "step-start"},
        {"type": "text", "text": "".join(script_tokens(60)), "state": "done"},
    ]
    types = _types(sent)
    assert types[:3] == ["start", "start-step", "text-start"]
    assert types[-3:] == ["text-end", "finish-step", "finish"]
    assert set(types[3:-3]) == {"text-delta"}
    assert sent["chunks"][0]["messageId"] == sent["message"]["id"]
    assert sent["chunks"][-1]["finishReason"] == "stop"
    posted = result["wire"][0]
    assert posted["protocol"] == "v1" and posted["contentType"].startswith("text/event-stream")
    assert posted["ended"], "the stream ends with data: [DONE]"
    assert result["afterEnd"] is None, "nothing to resume once the reply ended (204)"
    assert result["wire"][-1]["status"] == 204


def test_thinking_and_a_tool_when_streamed_then_reasoning_tool_and_text_parts_in_order(base: str) -> None:
    result = chat(
        base, _chat_id(), [user_message("#script think=6 think_style=reasoning tool=calculator expr=6*7")]
    )
    parts = result["sent"]["message"]["parts"]

    assert parts == [
        {"type": "step-start"},
        {
            "type": "dynamic-tool",
            "toolName": "calculator",
            "toolCallId": "call_0_x",
            "state": "output-available",
            "input": {"expression": "6*7"},
            "output": "42",
            "providerExecuted": True,
        },
        {"type": "step-start"},
        {"type": "reasoning", "id": "reasoning-1", "text": "".join(think_tokens(6)), "state": "done"},
        {"type": "text", "text": "Result: 42", "state": "done"},
    ]
    assert _types(result["sent"])[2:6] == [
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
        "tool-output-available",
    ]


def test_a_failing_tool_when_streamed_then_a_tool_output_error_and_the_reply_goes_on(base: str) -> None:
    result = chat(base, _chat_id(), [user_message("#script tool=calculator expr=1/0")])
    parts = result["sent"]["message"]["parts"]
    tool = parts[1]

    assert tool["type"] == "dynamic-tool" and tool["state"] == "output-error"
    assert "division by zero" in tool["errorText"]
    assert parts[-1]["type"] == "text" and "division by zero" in parts[-1]["text"]


def test_a_model_failing_mid_reply_when_streamed_then_an_error_chunk_after_the_text_so_far(
    base: str,
) -> None:
    result = chat(base, _chat_id(), [user_message("#script tokens=50 cut=10 rate=500")])
    sent = result["sent"]

    assert sent["message"]["parts"][-1] == {
        "type": "text",
        "text": "".join(script_tokens(10)),
        "state": "done",
    }
    errors = [chunk for chunk in sent["chunks"] if chunk["type"] == "error"]
    assert len(errors) == 1 and errors[0]["errorText"]
    assert _types(sent)[-1] == "error" and result["wire"][0]["ended"]


def test_reconnect_when_the_client_stopped_mid_reply_then_the_whole_text_and_204_after_the_end(
    base: str,
) -> None:
    chat_id = _chat_id()
    result = chat(base, chat_id, [user_message("#script tokens=150 rate=150")], stop_after=5)
    expected = "".join(script_tokens(150))

    stopped = result["sent"]["message"]["parts"][-1]["text"]
    assert expected.startswith(stopped) and len(stopped) < len(expected)
    assert result["resumed"]["message"]["parts"] == [
        {"type": "step-start"},
        {"type": "text", "text": expected, "state": "done"},
    ]
    assert result["resumed"]["message"]["id"] == result["sent"]["message"]["id"], "the same reply"
    progress = [chunk for chunk in result["resumed"]["chunks"] if chunk["type"] == "data-progress"]
    assert progress and all(chunk["transient"] and chunk["data"]["tokens"] > 0 for chunk in progress)
    assert [entry["status"] for entry in result["wire"]] == [200, 200, 204]
    assert result["afterEnd"] is None


def test_a_new_message_when_sent_then_the_model_gets_the_conversation_as_text(
    base: str, scripted: ScriptedServer
) -> None:
    earlier = {
        "id": "a1",
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {"type": "reasoning", "text": "hidden", "state": "done"},
            {"type": "text", "text": "First answer.", "state": "done"},
        ],
    }
    messages = [user_message("Hello", "u1"), earlier, user_message("#script tokens=3", "u2")]
    result = chat(base, _chat_id(), messages)

    assert result["sent"]["message"]["parts"][-1]["text"] == "".join(script_tokens(3))
    request = next(
        r for r in reversed(scripted.requests) if r["messages"][-1]["content"] == "#script tokens=3"
    )
    sent = [m for m in request["messages"] if m["role"] != "system"]
    assert sent == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "#script tokens=3"},
    ]


def _post(base: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{base}/api/chat", content=content, headers={"Content-Type": "application/json"})


_USER = user_message("hi")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        ([], "body"),
        ({"messages": [_USER]}, "id"),
        ({"id": "", "messages": [_USER]}, "id"),
        ({"id": "c", "messages": []}, "messages"),
        ({"id": "c", "messages": [_USER], "trigger": "go"}, "trigger"),
        ({"id": "c", "messages": [_USER], "messageId": 7}, "messageId"),
        ({"id": "c", "messages": [{"role": "user"}]}, "messages[0].parts"),
        ({"id": "c", "messages": [{"role": "robot", "parts": []}]}, "messages[0].role"),
        (
            {"id": "c", "messages": [{"role": "user", "parts": [{"type": "text"}]}]},
            "messages[0].parts[0].text",
        ),
        (
            {"id": "c", "messages": [{"role": "user", "parts": [{"type": "video"}]}]},
            "messages[0].parts[0].type",
        ),
        ({"id": "c", "messages": [{"role": "user", "parts": []}]}, "messages[0].parts"),
        (
            {"id": "c", "messages": [_USER, {"role": "assistant", "parts": [{"type": "text", "text": "x"}]}]},
            "messages[1].role",
        ),
    ],
)
def test_a_bad_body_when_posted_then_400_naming_the_field(base: str, body: Any, field: str) -> None:
    response = _post(base, body)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_stop_when_asked_by_delete_then_the_stream_ends_with_abort_and_nothing_is_active(base: str) -> None:
    chat_id = _chat_id()
    body = {
        "id": chat_id,
        "messages": [user_message("#script tokens=2000 rate=50")],
        "trigger": "submit-message",
    }
    with httpx.stream("POST", f"{base}/api/chat", json=body, timeout=30) as response:
        assert _first_delta(response)
    with httpx.stream("GET", f"{base}/api/chat/{chat_id}/stream", timeout=30) as response:
        assert response.status_code == 200, "a closed stream leaves the run running, to resume"
        assert _first_delta(response)
    stop = httpx.delete(f"{base}/api/chat/{chat_id}/stream")
    assert stop.status_code == 202

    chunks = _read_stream(base, chat_id)
    assert chunks is None or chunks[-2:] == ["abort", "[DONE]"]
    assert httpx.get(f"{base}/api/chat/{chat_id}/stream").status_code == 204
    assert httpx.delete(f"{base}/api/chat/{chat_id}/stream").status_code == 204


def test_cancel_on_disconnect_when_asked_in_the_body_then_closing_the_stream_cancels_the_run(
    base: str,
) -> None:
    body = {
        "id": _chat_id(),
        "messages": [user_message("#script tokens=2000 rate=50")],
        "cancelOnDisconnect": True,
    }
    with httpx.stream("POST", f"{base}/api/chat", json=body, timeout=30) as response:
        lines = response.iter_lines()
        start = json.loads(next(lines)[5:])
        assert any(line.startswith("data:") and "text-delta" in line for line in lines)

    run = f"{base}/api/v1/runs/{start['messageId']}"
    deadline = time.monotonic() + 10
    while (status := httpx.get(run).json()["status"]) == "running" and time.monotonic() < deadline:
        time.sleep(0.05)  # the server notices the closed socket on its own schedule: poll, bounded
    assert status == "cancelled"


def test_two_messages_when_sent_at_once_to_one_chat_then_one_runs_and_the_other_gets_409(
    base: str, scripted: ScriptedServer
) -> None:
    chat_id = _chat_id()
    body = {"id": chat_id, "messages": [user_message("#script tokens=20 rate=100")]}
    spans = len(scripted.spans)

    def post() -> tuple[int, list[str]]:
        with httpx.stream("POST", f"{base}/api/chat", json=body, timeout=30) as response:
            return response.status_code, [line for line in response.iter_lines() if line]

    for _ in range(5):  # a double submit, five times over
        with ThreadPoolExecutor(2) as pool:
            answers = sorted(pool.map(lambda _: post(), range(2)), key=lambda answer: answer[0])
        statuses = [status for status, _ in answers]
        # Either they overlapped (one runs, one is told) or the later one replaced the earlier.
        assert statuses in ([200, 200], [200, 409]), answers
        if statuses == [200, 409]:
            assert "another message of this chat is starting" in answers[1][1][0]
        assert all(lines[-1] == "data: [DONE]" for status, lines in answers if status == 200)
        runs = scripted.spans[spans:]
        assert len(runs) <= statuses.count(200)  # a run cancelled at once may never ask the model
        assert sum(1 for run in runs if run.complete) <= 1, "never two whole replies for one chat"
        spans = len(scripted.spans)
    assert httpx.get(f"{base}/api/chat/{chat_id}/stream").status_code == 204


def _first_delta(response: httpx.Response) -> bool:
    """Read up to the stream's first text delta (True), leaving the rest unread."""
    return any(line.startswith("data:") and "text-delta" in line for line in response.iter_lines())


def _read_stream(base: str, chat_id: str) -> list[str] | None:
    """The chunk types of the chat's active stream (None when none is active)."""
    with httpx.stream("GET", f"{base}/api/chat/{chat_id}/stream", timeout=30) as response:
        if response.status_code == 204:
            return None
        types = []
        for line in response.iter_lines():
            if line.startswith("data:"):
                payload = line[5:].strip()
                types.append(payload if payload == "[DONE]" else json.loads(payload)["type"])
        return types


SWEEP = range(1, 21)
"""The disconnect moments: after 1 to 20 chunks, from the `start` through the thinking into the text."""


def test_resume_when_stopped_at_each_moment_then_the_other_instance_over_redis_gives_the_exact_reply(
    start_app: Callable[..., str], scripted: ScriptedServer, redis_server: RedisServer
) -> None:
    env = clean_env(
        OPENAI_API_KEY="test-key", SMART_AGENT_REDIS_URL=redis_server.url, SMART_AGENT_API_MAX_RUNS="20"
    )
    first, second = (start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env) for _ in range(2))
    script = "#script think=30 think_style=reasoning tokens=180 rate=100"

    def stop_and_resume(moment: int) -> dict[str, Any]:
        messages = [user_message(script)]
        return chat(first, _chat_id(), messages, stop_after_chunks=moment, resume_url=second)

    with ThreadPoolExecutor(max_workers=4) as pool:  # Node processes; the apps do the rest
        results = list(pool.map(stop_and_resume, SWEEP))

    for moment, result in zip(SWEEP, results, strict=True):
        assert len(result["sent"]["chunks"]) == moment
        assert result["resumed"]["message"]["parts"] == [
            {"type": "step-start"},
            {"type": "reasoning", "id": "reasoning-1", "text": "".join(think_tokens(30)), "state": "done"},
            {"type": "text", "text": "".join(script_tokens(180)), "state": "done"},
        ], f"resumed after {moment} chunks"
        assert [entry["status"] for entry in result["wire"]] == [200, 200, 204]
        assert result["afterEnd"] is None


def test_keys_when_configured_then_a_key_is_needed_and_finds_only_its_own_chats(
    scripted_app: Callable[..., str], tmp_path: Path
) -> None:
    url = scripted_app()
    store = KeyStore(tmp_path / "data" / KEYS_FILE)
    mine, theirs = ({"Authorization": f"Bearer {store.add(name)}"} for name in ("mine", "theirs"))
    chat_id = _chat_id()
    body = {"id": chat_id, "messages": [user_message("#script tokens=2000 rate=50")]}

    assert httpx.post(f"{url}/api/chat", json=body).status_code == 401
    assert httpx.get(f"{url}/api/chat/{chat_id}/stream").status_code == 401
    with httpx.stream("POST", f"{url}/api/chat", json=body, headers=mine, timeout=30) as response:
        assert _first_delta(response)

    assert httpx.get(f"{url}/api/chat/{chat_id}/stream", headers=theirs).status_code == 204
    assert httpx.delete(f"{url}/api/chat/{chat_id}/stream", headers=theirs).status_code == 204
    assert httpx.delete(f"{url}/api/chat/{chat_id}/stream", headers=mine).status_code == 202
    result = chat(url, _chat_id(), [user_message("#script tokens=4")], headers=mine)
    assert result["sent"]["message"]["parts"][-1]["text"] == "".join(script_tokens(4))
