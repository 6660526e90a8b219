"""Seed 004's `GET /api/question/stream` end to end: the real app, the scripted model, httpx-sse."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from uvicorn.protocols.utils import get_path_with_query_string

from smart_agent.api.keys import KEYS_FILE, KeyStore
from smart_agent.api.seed004 import PATH, REDACTED, redact_access_log
from tests.harness import clean_env, running_app
from tests.redis_server import RedisServer
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
ESTIMATE = {"percentageComplete", "tokensPerSecond", "estimatedSecondsRemaining", "confidence"}


@dataclass(frozen=True)
class Received:
    """One SSE event as seed 004's frontend sees it (`message` for the unnamed token events)."""

    event: str
    data: dict[str, Any]
    id: str


def _read(
    base: str,
    question: str,
    session: str,
    *,
    last_id: str | None = None,
    limit: int | None = None,
    key: str | None = None,
) -> Iterator[Received]:
    headers = {"Last-Event-ID": last_id} if last_id is not None else {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    params = {"question": question, "session_id": session}
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        connect_sse(client, "GET", base + PATH, params=params, headers=headers) as source,
    ):
        assert source.response.status_code == 200, source.response.read()
        count = 0
        for sse in source.iter_sse():
            if not sse.data:  # `retry:` alone (the run is being created): EventSource dispatches nothing
                continue
            yield Received(sse.event, json.loads(sse.data), sse.id)
            count += 1
            if limit is not None and count >= limit:
                return  # the browser goes away mid-reply


def _text(received: list[Received]) -> str:
    return "".join(event.data["content"] for event in received if event.event == "message")


def _asked(scripted: ScriptedServer, marker: str) -> int:
    """How many requests for `marker` the scripted model received."""
    return sum(marker in json.dumps(body["messages"]) for body in scripted.requests)


def _question(script: str) -> tuple[str, str]:
    marker = uuid.uuid4().hex
    return f"Tell me about {marker} #script {script}", marker


@pytest.fixture(scope="module")
def app(scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One app on the in-memory run log, and the folder of its log."""
    log_dir = tmp_path_factory.mktemp("seed004")
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_SSE_HEARTBEAT="0.5")
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=log_dir) as (url, _):
        yield url, log_dir


def test_stream_when_read_to_the_end_then_thinking_tokens_progress_done_and_the_text_exact(
    app: tuple[str, Path], scripted: ScriptedServer
) -> None:
    question, marker = _question("tokens=120 rate=150")
    received = list(_read(app[0], question, "s1"))
    kinds = [event.event for event in received]
    assert kinds[0] == "thinking" and received[0].data["message"]
    assert kinds[-1] == "done" and kinds.count("done") == 1 and "error" not in kinds
    assert set(kinds) == {"thinking", "message", "progress", "done"}
    assert _text(received) == "".join(script_tokens(120))
    assert received[-1].data == {"total_tokens": 120}
    tokens = [event for event in received if event.event == "message"]
    assert all(event.data["batch_size"] == len(event.data["content"]) for event in tokens)
    progress = [event.data for event in received if event.event == "progress"]
    assert progress and all(ESTIMATE <= set(figures) for figures in progress)
    assert all(0 <= figures["percentageComplete"] < 100 for figures in progress)
    assert progress[-1]["tokensPerSecond"] > 0 and progress[-1]["estimatedSecondsRemaining"] is not None
    assert _asked(scripted, marker) == 1


def test_reconnect_when_no_last_event_id_then_the_same_run_from_its_start(
    app: tuple[str, Path], scripted: ScriptedServer
) -> None:
    question, marker = _question("tokens=80 rate=100")
    first = list(_read(app[0], question, "s2", limit=4))
    assert first[0].event == "thinking" and "done" not in [event.event for event in first]
    again = list(_read(app[0], question, "s2"))
    assert again[0].event == "thinking" and again[-1].event == "done"
    assert _text(again) == "".join(script_tokens(80))
    assert _asked(scripted, marker) == 1, "the reconnect read the run, it did not start another"


def test_reconnect_when_last_event_id_then_the_rest_exactly_once(
    app: tuple[str, Path], scripted: ScriptedServer
) -> None:
    question, marker = _question("tokens=80 rate=100")
    first = list(_read(app[0], question, "s3", limit=5))
    last_id = [event.id for event in first if event.id][-1]
    rest = list(_read(app[0], question, "s3", last_id=last_id))
    assert "thinking" != rest[0].event and rest[-1].event == "done"
    assert _text(first) + _text(rest) == "".join(script_tokens(80))
    assert _asked(scripted, marker) == 1
    # After the end, a resume from the last event gets 204: an EventSource stops reconnecting.
    params = {"question": question, "session_id": "s3"}
    ended = httpx.get(app[0] + PATH, params=params, headers={"Last-Event-ID": rest[-1].id}, timeout=TIMEOUT)
    assert ended.status_code == 204


def test_same_question_when_another_session_then_another_run(
    app: tuple[str, Path], scripted: ScriptedServer
) -> None:
    question, marker = _question("tokens=5")
    for session in ("s4a", "s4b"):
        assert list(_read(app[0], question, session))[-1].event == "done"
    assert _asked(scripted, marker) == 2


def test_keys_when_configured_then_required_and_each_key_has_its_own_runs(
    app: tuple[str, Path], scripted: ScriptedServer
) -> None:
    store = KeyStore(app[1] / "data" / KEYS_FILE)  # the app's data folder (tests/harness.py)
    first, second = store.add("seed-a"), store.add("seed-b")
    try:
        question, marker = _question("tokens=12")
        params = {"question": question, "session_id": "s9"}
        refused = httpx.get(app[0] + PATH, params=params, timeout=TIMEOUT)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
        for key in (first, first, second):
            assert _text(list(_read(app[0], question, "s9", key=key))) == "".join(script_tokens(12))
        assert _asked(scripted, marker) == 2, "the same key reads its run again; another key has its own"
    finally:
        store.remove("seed-a")
        store.remove("seed-b")


def test_model_failure_when_streaming_then_an_error_event_that_may_be_retried(app: tuple[str, Path]) -> None:
    question, _ = _question("tokens=30 error_at=10")
    received = list(_read(app[0], question, "s5"))
    assert received[0].event == "thinking" and received[-1].event == "error"
    assert "done" not in [event.event for event in received]
    assert received[-1].data["message"] and received[-1].data["recoverable"] is True


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"session_id": "s"}, "question"),
        ({"question": " ", "session_id": "s"}, "question"),
        ({"question": "hi"}, "session_id"),
    ],
)
def test_request_when_a_parameter_is_missing_then_400_naming_it(
    app: tuple[str, Path], params: dict[str, str], field: str
) -> None:
    response = httpx.get(app[0] + PATH, params=params, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_app_log_when_questions_were_asked_then_none_of_them_is_in_it(app: tuple[str, Path]) -> None:
    question, marker = _question("tokens=5")
    assert list(_read(app[0], question, "s6"))[-1].event == "done"
    logs = "".join(path.read_text(errors="replace") for path in app[1].glob("app-*.log"))
    assert logs, "the app wrote its log"
    assert marker not in logs


def test_access_log_when_uvicorn_logs_the_request_then_the_query_is_redacted() -> None:
    redact_access_log()
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("uvicorn.access")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for path, query in ((PATH, b"question=secret+plans&session_id=s"), ("/api/v1/runs", b"x=1")):
            scope: Any = {"root_path": "", "raw_path": path.encode(), "query_string": query}
            # uvicorn's h11 and httptools protocols log exactly this call (uvicorn 0.3x).
            logger.info(
                '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", get_path_with_query_string(scope), "1.1", 200
            )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert lines[0] == f'127.0.0.1:5 - "GET {PATH}{REDACTED} HTTP/1.1" 200'
    assert lines[1] == '127.0.0.1:5 - "GET /api/v1/runs?x=1 HTTP/1.1" 200'


def test_reconnect_when_on_another_instance_then_the_same_run(
    scripted: ScriptedServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_REDIS_URL=redis_server.url)
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_app(*flags, env=env, log_dir=tmp_path / "a") as (first_url, _),
        running_app(*flags, env=env, log_dir=tmp_path / "b") as (second_url, _),
    ):
        question, marker = _question("tokens=80 rate=100")
        first = list(_read(first_url, question, "s7", limit=5))
        last_id = [event.id for event in first if event.id][-1]
        rest = list(_read(second_url, question, "s7", last_id=last_id))
        assert _text(first) + _text(rest) == "".join(script_tokens(80))
        assert _text(list(_read(second_url, question, "s7"))) == "".join(script_tokens(80))
        assert _asked(scripted, marker) == 1

        # Browsers asking the same at the same moment on both instances: still one run.
        question, marker = _question("tokens=30 rate=100")
        with ThreadPoolExecutor(6) as pool:
            texts = list(
                pool.map(lambda i: _read_like_eventsource(question, (first_url, second_url)[i % 2]), range(6))
            )
        assert texts == ["".join(script_tokens(30))] * 6
        assert _asked(scripted, marker) == 1


def _read_like_eventsource(question: str, base: str) -> str:
    """Read to the end, asking again after a stream that ended without an event (run being created)."""
    for _ in range(20):
        received = list(_read(base, question, "s8"))
        if received:
            assert received[-1].event == "done"
            return _text(received)
    raise AssertionError("the run never appeared")
