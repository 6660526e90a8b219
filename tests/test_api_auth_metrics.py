"""The API's keys and /metrics on the real app: who may call it, whose runs they see, what is counted."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from smart_agent import cli
from smart_agent.metrics import PROTOCOLS
from tests.ai_sdk_client import user_message
from tests.api_client import get_run, read_all, start_run, text_of
from tests.harness import ROOT, clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens
from tests.sio_client import connected


def _add_key(data_dir: Path, name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "smart_agent", "api-keys", "add", name, "--data-dir", str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture(scope="module")
def keyed(
    scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, str]]:
    """An app whose data folder has the key `alice` before it starts."""
    log_dir = tmp_path_factory.mktemp("keyed")
    data_dir = log_dir / "data"
    alice = _add_key(data_dir, "alice")
    env = clean_env(
        OPENAI_API_KEY="test-key", SMART_AGENT_DATA_DIR=str(data_dir), SMART_AGENT_ALLOWED_ORIGINS=FRONTEND
    )
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=log_dir) as (url, _):
        yield url, data_dir, alice


FRONTEND = "https://app.example.com"


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_keys_when_configured_then_no_or_wrong_key_gets_401_on_loopback_too(
    keyed: tuple[str, Path, str],
) -> None:
    url, _, _ = keyed
    body = {"messages": [{"role": "user", "content": "hi"}]}
    for headers in ({}, _bearer("sa-wrong"), {"Authorization": "Basic abc"}):
        response = httpx.post(f"{url}/api/v1/runs", json=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] in {"missing_key", "invalid_key"}
        assert "sa-wrong" not in response.text
    assert httpx.get(f"{url}/metrics").status_code == 401


def test_runs_when_another_key_asks_then_404_as_for_no_run(keyed: tuple[str, Path, str]) -> None:
    url, data_dir, alice = keyed
    bob = _add_key(data_dir, "bob")  # added while the app runs: it works at once
    run = start_run(url, "#script tokens=20", headers=_bearer(alice))
    assert text_of(read_all(url, run["id"], headers=_bearer(alice))) == "".join(script_tokens(20))
    assert get_run(url, run["id"], _bearer(alice)).status_code == 200
    assert get_run(url, run["id"], _bearer(bob)).status_code == 404
    events = httpx.get(f"{url}/api/v1/runs/{run['id']}/events", headers=_bearer(bob))
    assert events.status_code == 404
    cancel = httpx.post(f"{url}/api/v1/runs/{run['id']}/cancel", headers=_bearer(bob))
    assert cancel.status_code == 404
    assert events.json() == httpx.get(f"{url}/api/v1/runs/run_none/events", headers=_bearer(bob)).json() | {
        "error": {"code": "not_found", "message": f"no run {run['id']}"}
    }


async def test_metrics_when_ui_and_api_replied_then_both_counted_with_model_and_outcome_labels_only(
    keyed: tuple[str, Path, str],
) -> None:
    url, _, alice = keyed
    async with httpx.AsyncClient(headers=_bearer(alice)) as http:
        before = _samples((await http.get(f"{url}/metrics")).text)
    async with connected(url) as client:
        await client.send("#script tokens=30")
        await client.wait_task_ends(3)
        assert client.reply() == "".join(script_tokens(30))
    run = await asyncio.to_thread(start_run, url, "#script tokens=40", headers=_bearer(alice))
    await asyncio.to_thread(read_all, url, run["id"], headers=_bearer(alice))
    async with httpx.AsyncClient(headers=_bearer(alice)) as http:
        response = await http.get(f"{url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = _samples(response.text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    model = {"model": MODEL_ID}
    assert grew("smart_agent_time_to_first_token_seconds_count", **model) == 2  # one UI reply, one run
    assert grew("smart_agent_generation_tokens_total", **model) == 70
    assert grew("smart_agent_e2e_request_latency_seconds_count", **model, status="done") == 2
    assert grew("smart_agent_inter_token_latency_seconds_count", **model) == 29 + 39
    assert 1 <= grew("smart_agent_ui_events_total", **model) <= 30
    runs = {"protocol": "runs"}
    assert grew("smart_agent_runs_total", **runs, status="done") == 1
    assert grew("smart_agent_sse_disconnects_total", **runs, reason="ended") == 1
    assert after[("smart_agent_runs_active", (("protocol", "runs"),))] == 0
    assert after[("smart_agent_sse_connections", (("protocol", "runs"),))] == 0
    for name, labels in after:
        if not name.startswith("smart_agent_"):
            continue  # prometheus-client's own process and GC metrics
        allowed = {"model", "protocol", "status", "code", "result", "reason", "le"}
        assert {key for key, _ in labels} <= allowed, name
    assert alice not in response.text and run["id"] not in response.text


def test_api_when_non_loopback_host_and_no_keys_then_refused_with_how_to_turn_it_on(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key")
    flags = ("--host", "0.0.0.0", "--expose-without-login", "--base-url", scripted.url, "--model", MODEL_ID)
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        response = httpx.post(f"{url}/api/v1/runs", json={"messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 403
        assert "smart-agent api-keys add" in response.json()["error"]["message"]
        assert httpx.get(f"{url}/metrics").status_code == 403


def test_ask_when_keys_are_configured_then_it_needs_the_right_one(keyed: tuple[str, Path, str]) -> None:
    url, _, alice = keyed
    runner = CliRunner()
    good = runner.invoke(cli.app, ["ask", "#script tokens=12", "--url", url, "--api-key", alice])
    assert good.exit_code == 0, good.stderr
    assert good.stdout == "".join(script_tokens(12))
    for args in ([], ["--api-key", "sa-not-a-key"]):
        refused = runner.invoke(cli.app, ["ask", "#script tokens=12", "--url", url, *args])
        assert refused.exit_code == 1
        assert "key" in refused.stderr and "sa-not-a-key" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


def test_cors_when_a_listed_frontend_calls_then_allowed_and_another_site_refused(
    keyed: tuple[str, Path, str],
) -> None:
    url, _, alice = keyed
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = httpx.options(f"{url}/api/v1/runs", headers={"Origin": FRONTEND, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == FRONTEND
    assert "authorization" in allowed.headers["access-control-allow-headers"]
    refused = httpx.options(f"{url}/api/v1/runs", headers={"Origin": "https://evil.example", **preflight})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    run = start_run(url, "#script tokens=3", headers={"Origin": FRONTEND, **_bearer(alice)})
    state = httpx.get(f"{url}/api/v1/runs/{run['id']}", headers={"Origin": FRONTEND, **_bearer(alice)})
    assert state.headers["access-control-allow-origin"] == FRONTEND
    stolen = httpx.get(
        f"{url}/api/v1/runs/{run['id']}", headers={"Origin": "https://evil.example", **_bearer(alice)}
    )
    assert stolen.status_code == 403 and run["id"] not in stolen.text


def _one_request(url: str, protocol: str, key: str) -> None:
    """One reply of `protocol`'s, read to its end (the runs API: its POST, then its events)."""
    question = "#script tokens=5"
    headers = _bearer(key)
    said = {"role": "user", "content": question}
    if protocol == "runs":
        run = start_run(url, question, headers=headers)
        read_all(url, run["id"], headers=headers)
        return
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "ai-sdk": (
            "POST",
            "/api/chat",
            {"json": {"id": f"chat-{uuid.uuid4()}", "messages": [user_message(question)]}},
        ),
        "ag-ui": (
            "POST",
            "/api/ag-ui",
            {
                "json": {
                    "threadId": f"thread-{uuid.uuid4()}",
                    "runId": f"run-{uuid.uuid4()}",
                    "messages": [{"id": "u1", **said}],
                    "tools": [],
                    "context": [],
                    "state": {},
                    "forwardedProps": {},
                }
            },
        ),
        "openai": (
            "POST",
            "/v1/chat/completions",
            {"json": {"model": "smart-agent", "stream": True, "messages": [said]}},
        ),
        "seed004": (
            "GET",
            "/api/question/stream",
            {"params": {"question": question, "session_id": f"s-{uuid.uuid4()}"}},
        ),
    }
    method, path, body = requests[protocol]
    with httpx.stream(method, url + path, headers=headers, timeout=30, **body) as response:
        assert response.status_code == 200, (protocol, response.read())
        streamed = "".join(response.iter_text())
    assert script_tokens(5)[-1].strip() in streamed  # the scripted reply came through


def test_metrics_when_each_protocol_replied_then_its_request_and_run_are_counted_under_its_label(
    keyed: tuple[str, Path, str],
) -> None:
    url, _, alice = keyed
    before = _samples(httpx.get(f"{url}/metrics", headers=_bearer(alice)).text)
    for protocol in PROTOCOLS:
        _one_request(url, protocol, alice)

    def grew(after: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    deadline = time.monotonic() + 10
    while True:  # a run is counted when its task ends, just after its last event went out
        after = _samples(httpx.get(f"{url}/metrics", headers=_bearer(alice)).text)
        ended = [grew(after, "smart_agent_runs_total", protocol=p, status="done") for p in PROTOCOLS]
        if ended == [1] * len(PROTOCOLS) or time.monotonic() > deadline:
            break
    assert dict(zip(PROTOCOLS, ended, strict=True)) == dict.fromkeys(PROTOCOLS, 1)
    for protocol in PROTOCOLS:
        answered = grew(after, "smart_agent_api_requests_total", protocol=protocol, code="200")
        assert answered == 1, protocol  # the runs API: its events; its POST is a 201
        assert after[("smart_agent_runs_active", (("protocol", protocol),))] == 0
        # Every protocol streams over SSE: one stream opened and closed at its end, counted as its.
        assert after[("smart_agent_sse_connections", (("protocol", protocol),))] == 0
        ended_streams = grew(after, "smart_agent_sse_disconnects_total", protocol=protocol, reason="ended")
        assert ended_streams == 1, protocol
    assert grew(after, "smart_agent_api_requests_total", protocol="runs", code="201") == 1
