"""AG-UI end to end: the real app, the scripted model, the stock @ag-ui/client HttpAgent, and our
resume extension read by a small httpx-sse client (also across two instances on Redis)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from ag_ui.core import Event as AgUiEvent
from httpx_sse import connect_sse
from pydantic import TypeAdapter

from smart_agent.api.keys import KEYS_FILE, KeyStore
from tests.harness import clean_env, running_app
from tests.node_clients import run_node
from tests.redis_server import RedisServer
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens, think_tokens

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
EVENT = TypeAdapter(AgUiEvent)

HTTP_AGENT = """
import { readFileSync } from 'node:fs';
import { HttpAgent } from '@ag-ui/client';
const p = JSON.parse(readFileSync(0, 'utf8'));
const agent = new HttpAgent({ url: p.url, threadId: p.threadId, headers: p.headers ?? {},
  initialMessages: [{ id: 'u1', role: 'user', content: p.content }] });
const events = [];
let outcome = null;
await agent.runAgent({ runId: p.runId }, {
  onEvent({ event }) { events.push(event); },
  onRunFinishedEvent({ outcome: how }) { outcome = how; },
});
console.log(JSON.stringify({ events, outcome, messages: agent.messages }));
"""


@pytest.fixture(scope="module")
def base(scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One app on the in-memory run log."""
    env = clean_env(OPENAI_API_KEY="test-key")
    log_dir = tmp_path_factory.mktemp("ag-ui")
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=log_dir) as (url, _):
        yield url


@pytest.fixture(scope="module")
def pair(
    scripted: ScriptedServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Instances A and B sharing one Redis."""
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_REDIS_URL=redis_server.url)
    with ExitStack() as stack:
        urls = [
            stack.enter_context(
                running_app(
                    "--base-url",
                    scripted.url,
                    "--model",
                    MODEL_ID,
                    env=env,
                    log_dir=tmp_path_factory.mktemp(name),
                )
            )[0]
            for name in ("agui-a", "agui-b")
        ]
        yield urls[0], urls[1]


def _input(content: str, **extra: Any) -> dict[str, Any]:
    return {
        "threadId": f"thread-{uuid.uuid4()}",
        "runId": f"run-{uuid.uuid4()}",
        "messages": [{"id": "u1", "role": "user", "content": content}],
        "tools": [],
        "context": [],
        "state": {},
        "forwardedProps": {},
        **extra,
    }


Received = list[tuple[str, dict[str, Any]]]


def _read(client: httpx.Client, method: str, url: str, limit: int | None = None, **kw: Any) -> Received:
    """(id, event) of each SSE event, each validated by ag_ui.core's pydantic models; stops after
    `limit` events (a client going away)."""
    received: Received = []
    with connect_sse(client, method, url, **kw) as source:
        assert source.response.status_code == 200, source.response.read()
        for sse in source.iter_sse():
            EVENT.validate_json(sse.data)  # conformance: raises on any event AG-UI does not define
            received.append((sse.id, json.loads(sse.data)))
            if limit is not None and len(received) >= limit:
                break
    return received


def _post(base: str, body: dict[str, Any], limit: int | None = None) -> Received:
    with httpx.Client(timeout=TIMEOUT) as client:
        return _read(client, "POST", f"{base}/api/ag-ui", limit, json=body)


def _resume(base: str, body: dict[str, Any], after: str | None) -> Received:
    headers = {"Last-Event-ID": after} if after is not None else {}
    url = f"{base}/api/ag-ui/runs/{body['runId']}/events"
    with httpx.Client(timeout=TIMEOUT) as client:
        return _read(client, "GET", url, params={"threadId": body["threadId"]}, headers=headers)


def _joined(received: Received, kind: str) -> str:
    return "".join(event["delta"] for _, event in received if event["type"] == kind)


def test_run_agent_when_stock_http_agent_then_reasoning_and_exact_text_in_order(base: str) -> None:
    body = _input("")
    found = run_node(
        HTTP_AGENT,
        {
            "url": f"{base}/api/ag-ui",
            "threadId": body["threadId"],
            "runId": body["runId"],
            "content": "#script think=30 tokens=40 rate=400",
        },
    )

    for event in found["events"]:
        EVENT.validate_python(event)
    user, reasoning, answer = found["messages"]
    assert user["id"] == "u1"
    assert (reasoning["role"], reasoning["content"]) == ("reasoning", "".join(think_tokens(30)))
    assert (answer["role"], answer["content"]) == ("assistant", "".join(script_tokens(40)))
    assert found["outcome"] == "success"
    types = [event["type"] for event in found["events"]]
    assert types[0] == "RUN_STARTED" and types[-1] == "RUN_FINISHED"
    assert types.index("REASONING_END") < types.index("TEXT_MESSAGE_START")


def test_run_agent_when_a_tool_runs_then_the_call_its_result_and_the_answer_in_order(base: str) -> None:
    body = _input("")
    found = run_node(
        HTTP_AGENT,
        {
            "url": f"{base}/api/ag-ui",
            "threadId": body["threadId"],
            "runId": body["runId"],
            "content": "#script tool=calculator expr=6*7 think=10 tokens=5",
        },
    )

    roles = [message["role"] for message in found["messages"]]
    assert roles == ["user", "assistant", "tool", "reasoning", "assistant"]
    _, calling, result, reasoning, answer = found["messages"]
    (call,) = calling["toolCalls"]
    assert call["function"]["name"] == "calculator"
    assert json.loads(call["function"]["arguments"]) == {"expression": "6*7"}
    assert (result["toolCallId"], result["content"]) == (call["id"], "42")
    assert reasoning["content"] == "".join(think_tokens(10))
    assert answer["content"] == "Result: 42"


def test_stream_when_read_raw_then_every_event_conforms_and_carries_a_unique_id(base: str) -> None:
    received = _post(base, _input("#script tool=calculator think=5 tokens=30"))
    ids = [event_id for event_id, _ in received]

    assert all(ids) and len(set(ids)) == len(ids)
    assert received[0][1]["type"] == "RUN_STARTED"
    assert received[-1][1]["type"] == "RUN_FINISHED"
    assert _joined(received, "TEXT_MESSAGE_CONTENT") == "Result: 5"
    assert [e["type"] for _, e in received if e["type"].startswith("TOOL_CALL")] == [
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
    ]


SWEEP = "#script think=40 tokens=240 rate=300"
MOMENTS = 24


def _sweep(starting: str, resuming: str) -> int:
    """Disconnect at MOMENTS moments spread over a run's events (a run per moment), resume on
    `resuming`; returns how many moments fell mid-run."""
    reference = _post(starting, _input(SWEEP))
    mid_run = 0
    for cut in sorted({1 + i * (len(reference) - 2) // (MOMENTS - 1) for i in range(MOMENTS)}):
        body = _input(SWEEP)
        first = _post(starting, body, limit=cut)
        rest = _resume(resuming, body, after=first[-1][0])
        whole = _resume(starting, body, after=None)  # the run from its start, as a late reader sees it

        ids = [event_id for event_id, _ in [*first, *rest]]
        assert ids == [event_id for event_id, _ in whole], f"cut after {cut} events"
        assert len(set(ids)) == len(ids)
        assert [*first, *rest] == whole
        assert _joined(whole, "REASONING_MESSAGE_CONTENT") == "".join(think_tokens(40))
        assert _joined(whole, "TEXT_MESSAGE_CONTENT") == "".join(script_tokens(240))
        assert whole[-1][1]["type"] == "RUN_FINISHED"
        mid_run += first[-1][1]["type"] != "RUN_FINISHED"
    return mid_run


def test_resume_when_the_client_goes_at_each_moment_then_no_id_lost_or_repeated(base: str) -> None:
    assert _sweep(base, base) >= 20


def test_resume_when_on_another_instance_over_redis_then_exact_at_each_moment(pair: tuple[str, str]) -> None:
    a, b = pair
    assert _sweep(a, b) >= 20


def _refused(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["field"]


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"threadId": None}, 422, "threadId"),
        ({"runId": ""}, 422, "runId"),
        ({"messages": [{"id": "1", "role": "user"}]}, 422, "messages[0].content"),
        (
            {"messages": [{"id": "1", "role": "user", "content": [{"type": "text"}]}]},
            422,
            "messages[0].content[0].text",
        ),
        ({"messages": [{"id": "1", "role": "boss", "content": "x"}]}, 422, "messages[0]"),
        (
            {
                "messages": [
                    {"id": "1", "role": "user", "content": "hi"},
                    {"id": "2", "role": "assistant", "content": "yo"},
                ]
            },
            400,
            "messages[1].role",
        ),
        ({"messages": [{"id": "1", "role": "user", "content": " "}]}, 400, "messages[0].content"),
        ({"forwardedProps": {"model": "no-such-model"}}, 400, "forwardedProps.model"),
    ],
)
def test_run_agent_when_the_body_is_bad_then_4xx_naming_the_field(
    base: str, change: dict[str, Any], status: int, field: str
) -> None:
    body = {**_input("hello"), **change}
    body = {key: value for key, value in body.items() if value is not None}
    assert _refused(httpx.post(f"{base}/api/ag-ui", json=body, timeout=TIMEOUT)) == (status, field)


def test_run_agent_when_not_json_or_run_id_reused_then_400_and_409(base: str) -> None:
    not_json = httpx.post(f"{base}/api/ag-ui", content=b"{nope", timeout=TIMEOUT)
    body = _input("#script tokens=3")
    _post(base, body)
    again = httpx.post(f"{base}/api/ag-ui", json=body, timeout=TIMEOUT)

    assert _refused(not_json) == (400, "body")
    assert _refused(again) == (409, "runId")


def test_resume_when_asked_wrongly_then_4xx_naming_the_field(base: str) -> None:
    body = _input("#script tokens=3")
    _post(base, body)
    url = f"{base}/api/ag-ui/runs/{body['runId']}/events"

    no_thread = httpx.get(url, timeout=TIMEOUT)
    bad_id = httpx.get(
        url, params={"threadId": body["threadId"]}, headers={"Last-Event-ID": "x"}, timeout=TIMEOUT
    )
    other_thread = httpx.get(url, params={"threadId": "elsewhere"}, timeout=TIMEOUT)

    assert _refused(no_thread) == (400, "threadId")
    assert _refused(bad_id) == (400, "Last-Event-ID")
    assert other_thread.status_code == 404


def test_cancel_when_asked_through_the_runs_api_then_run_finished_cancelled(base: str) -> None:
    body = _input("#script tokens=2000 rate=100")
    received: list[dict[str, Any]] = []
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        connect_sse(client, "POST", f"{base}/api/ag-ui", json=body) as source,
    ):
        for sse in source.iter_sse():
            received.append(json.loads(sse.data))
            if len(received) == 1:
                ours = received[0]["metadata"]["smart-agent"]["runId"]
                assert source.response.headers["X-Smart-Agent-Run-Id"] == ours
                assert client.post(f"{base}/api/v1/runs/{ours}/cancel").status_code == 202

    assert received[-1]["type"] == "RUN_FINISHED"
    assert received[-1]["outcome"] == {"type": "cancelled"}


def test_disconnect_when_cancel_on_disconnect_then_cancelled_else_the_run_goes_on(base: str) -> None:
    cancelling = _input("#script tokens=2000 rate=100", forwardedProps={"cancelOnDisconnect": True})
    going_on = _input("#script tokens=60 rate=300")
    _post(base, cancelling, limit=2)
    _post(base, going_on, limit=2)

    assert _resume(base, cancelling, after=None)[-1][1]["outcome"] == {"type": "cancelled"}
    rest = _resume(base, going_on, after=None)
    assert rest[-1][1]["outcome"] == {"type": "success"}
    assert _joined(rest, "TEXT_MESSAGE_CONTENT") == "".join(script_tokens(60))


def test_run_agent_when_the_model_fails_then_run_error_with_its_code(base: str) -> None:
    received = _post(base, _input("#script status=500"))

    assert [event["type"] for _, event in received] == ["RUN_STARTED", "RUN_ERROR"]
    assert received[-1][1]["code"] == "model_error"


def test_keys_when_configured_then_a_key_is_needed_and_resumes_only_its_own_runs(
    scripted_app: Callable[..., str], tmp_path: Path
) -> None:
    url = scripted_app()
    store = KeyStore(tmp_path / "data" / KEYS_FILE)
    mine, theirs = ({"Authorization": f"Bearer {store.add(name)}"} for name in ("mine", "theirs"))
    body = _input("#script tokens=4")
    events_url = f"{url}/api/ag-ui/runs/{body['runId']}/events"
    thread = {"threadId": body["threadId"]}

    assert httpx.post(f"{url}/api/ag-ui", json=body, timeout=TIMEOUT).status_code == 401
    found = run_node(
        HTTP_AGENT,
        {
            "url": f"{url}/api/ag-ui",
            "threadId": body["threadId"],
            "runId": body["runId"],
            "content": "#script tokens=4",
            "headers": mine,
        },
    )
    assert found["messages"][-1]["content"] == "".join(script_tokens(4))
    assert httpx.get(events_url, params=thread, timeout=TIMEOUT).status_code == 401
    assert httpx.get(events_url, params=thread, headers=theirs, timeout=TIMEOUT).status_code == 404
    with httpx.Client(timeout=TIMEOUT, headers=mine) as client:
        replay = _read(client, "GET", events_url, params=thread)
    assert _joined(replay, "TEXT_MESSAGE_CONTENT") == "".join(script_tokens(4))
