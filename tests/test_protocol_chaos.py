"""Chaos across instances: the deploy recipe (two instances on Redis behind HAProxy); for each
resumable protocol a client goes away at 20 moments of a reply and resumes through the balancer on
the other instance. The text is exact every time; where a protocol resumes by id, no id is lost or
repeated (the AI SDK replays the active stream from its start, by design)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.harness import clean_env
from tests.history_fixtures import fresh_database
from tests.postgres_server import PostgresServer
from tests.redis_server import RedisServer
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens
from tests.test_deploy import SECRET, deployed

MOMENTS = 20
TOKENS = 120
SCRIPT = f"#script tokens={TOKENS} rate=300"
# The AI SDK resumes only a stream still active: its reply lasts long enough for every cut to be.
SLOW_SCRIPT = f"#script tokens={TOKENS} rate=80"
EXPECTED = "".join(script_tokens(TOKENS))
TIMEOUT = httpx.Timeout(30.0)
Event = tuple[str, str, dict[str, Any]]  # (id, event name, data)


@pytest.fixture(scope="module")
def balancer(
    postgres: PostgresServer,
    redis_server: RedisServer,
    scripted: ScriptedServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path]]:
    """The recipe running: its balancer's URL and HAProxy's log (which names the server of each request)."""
    folder = tmp_path_factory.mktemp("chaos")
    env = clean_env(
        OPENAI_API_KEY="test-key",
        SMART_AGENT_DATABASE_URL=asyncio.run(fresh_database(postgres)),
        CHAINLIT_AUTH_SECRET=SECRET,
        SMART_AGENT_REDIS_URL=redis_server.url,
        SMART_AGENT_DATA_DIR=str(folder / "data"),
    )
    # Small batches, so that a short reply has events enough for 20 moments in every protocol.
    flags = [
        "--base-url",
        scripted.url,
        "--model",
        MODEL_ID,
        "--batch-size",
        "2",
        "--max-events-per-second",
        "100",
    ]
    with deployed(flags, env, folder) as deployment:
        yield deployment.url, folder / "haproxy.log"


def _on(instance: str) -> dict[str, str]:
    """The balancer's stickiness cookie: the request goes to `instance` (deploy/haproxy.cfg)."""
    return {"Cookie": f"SA_INSTANCE={instance}"}


def _read(
    method: str, url: str, instance: str, limit: int | None = None, **kw: Any
) -> tuple[list[Event], str]:
    """(id, event, data) of each SSE event, up to `limit` (a client going away), and the instance
    that answered (the balancer's cookie, or the one asked for)."""
    received: list[Event] = []
    headers = {**_on(instance), **kw.pop("headers", {})}
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        connect_sse(client, method, url, headers=headers, **kw) as source,
    ):
        if source.response.status_code == 204:  # nothing active to resume: the client has it all
            return received, instance
        assert source.response.status_code == 200, source.response.read()
        served = source.response.cookies.get("SA_INSTANCE") or instance
        for sse in source.iter_sse():
            if sse.data and sse.data != "[DONE]":
                received.append((sse.id, sse.event, json.loads(sse.data)))
            if limit is not None and len(received) >= limit:
                break
    return received, served


class Protocol:
    """How one protocol starts a reply, resumes it, and which of its events carry text."""

    name: str
    read_path: str  # a pattern of the requests that resume (and, if `starts_read`, that start)
    starts_read = False
    by_id = True  # resumes after Last-Event-ID; else replays the active stream from its start
    cut_share = 1.0  # the share of the reply's events the cuts are spread over

    def start(self, base: str, instance: str, limit: int | None) -> tuple[list[Event], Any]:
        """Start a reply on `instance`; the events read and what resuming needs."""
        raise NotImplementedError

    def resume(self, base: str, instance: str, handle: Any, after: str | None) -> list[Event]:
        """Read the rest of the reply from `instance`."""
        raise NotImplementedError

    def text(self, events: list[Event]) -> str:
        """The reply's text in these events."""
        raise NotImplementedError


class Runs(Protocol):
    name = "runs"
    read_path = r"GET /api/v1/runs/[^/ ]+/events"
    starts_read = True  # its start and its resume read the same path

    def start(self, base: str, instance: str, limit: int | None) -> tuple[list[Event], Any]:
        body = {"messages": [{"role": "user", "content": SCRIPT}]}
        created = httpx.post(f"{base}/api/v1/runs", json=body, headers=_on(instance), timeout=TIMEOUT)
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        return _read("GET", f"{base}/api/v1/runs/{run_id}/events", instance, limit)[0], run_id

    def resume(self, base: str, instance: str, handle: Any, after: str | None) -> list[Event]:
        headers = {"Last-Event-ID": after} if after else {}
        return _read("GET", f"{base}/api/v1/runs/{handle}/events", instance, headers=headers)[0]

    def text(self, events: list[Event]) -> str:
        return "".join(data["text"] for _, name, data in events if name == "token")


class AiSdk(Protocol):
    name = "ai-sdk"
    by_id = False
    read_path = r"GET /api/chat/[^/ ]+/stream"
    # A stream that ended cannot be resumed (204, by the AI SDK's design): cut well before the end.
    cut_share = 0.6

    def start(self, base: str, instance: str, limit: int | None) -> tuple[list[Event], Any]:
        chat_id = f"chat-{uuid.uuid4()}"
        body = {
            "id": chat_id,
            "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": SLOW_SCRIPT}]}],
        }
        return _read("POST", f"{base}/api/chat", instance, limit, json=body)[0], chat_id

    def resume(self, base: str, instance: str, handle: Any, after: str | None) -> list[Event]:
        return _read("GET", f"{base}/api/chat/{handle}/stream", instance)[0]

    def text(self, events: list[Event]) -> str:
        return "".join(data["delta"] for _, _, data in events if data.get("type") == "text-delta")


class AgUi(Protocol):
    name = "ag-ui"
    read_path = r"GET /api/ag-ui/runs/"

    def start(self, base: str, instance: str, limit: int | None) -> tuple[list[Event], Any]:
        body = {
            "threadId": f"thread-{uuid.uuid4()}",
            "runId": f"run-{uuid.uuid4()}",
            "messages": [{"id": "u1", "role": "user", "content": SCRIPT}],
            "tools": [],
            "context": [],
            "state": {},
            "forwardedProps": {},
        }
        return _read("POST", f"{base}/api/ag-ui", instance, limit, json=body)[0], body

    def resume(self, base: str, instance: str, handle: Any, after: str | None) -> list[Event]:
        headers = {"Last-Event-ID": after} if after else {}
        url = f"{base}/api/ag-ui/runs/{handle['runId']}/events"
        return _read("GET", url, instance, params={"threadId": handle["threadId"]}, headers=headers)[0]

    def text(self, events: list[Event]) -> str:
        return "".join(data["delta"] for _, _, data in events if data.get("type") == "TEXT_MESSAGE_CONTENT")


class Seed004(Protocol):
    name = "seed004"
    read_path = r"GET /api/question/stream"
    starts_read = True

    def start(self, base: str, instance: str, limit: int | None) -> tuple[list[Event], Any]:
        params = {"question": f"{uuid.uuid4().hex} {SCRIPT}", "session_id": str(uuid.uuid4())}
        return _read("GET", f"{base}/api/question/stream", instance, limit, params=params)[0], params

    def resume(self, base: str, instance: str, handle: Any, after: str | None) -> list[Event]:
        headers = {"Last-Event-ID": after} if after else {}
        return _read("GET", f"{base}/api/question/stream", instance, params=handle, headers=headers)[0]

    def text(self, events: list[Event]) -> str:
        return "".join(data["content"] for _, name, data in events if name == "message")


PROTOCOLS: list[Callable[[], Protocol]] = [Runs, AiSdk, AgUi, Seed004]


@pytest.mark.parametrize("make", PROTOCOLS, ids=lambda make: make.name)
def test_disconnect_when_at_any_of_20_moments_then_the_other_instance_resumes_it_exactly(
    balancer: tuple[str, Path], make: Callable[[], Protocol]
) -> None:
    base, haproxy_log = balancer
    logged = len(haproxy_log.read_bytes())
    protocol = make()
    whole, _ = protocol.start(base, "app1", None)
    assert protocol.text(whole) == EXPECTED
    span = int((len(whole) - 2) * protocol.cut_share)
    cuts = sorted({1 + i * span // (MOMENTS - 1) for i in range(MOMENTS)})
    # Enough events for a sweep. Under load the batching sends fewer, larger events (a CI-like run
    # had 18): with fewer than MOMENTS, every one of them is a cut.
    assert span >= MOMENTS // 2, [name for _, name, _ in whole]
    mid_reply = 0
    for cut in cuts:
        first, handle = protocol.start(base, "app1", cut)
        rest = protocol.resume(base, "app2", handle, first[-1][0])
        if protocol.by_id:
            ids = [event_id for event_id, _, _ in [*first, *rest] if event_id]
            assert len(ids) == len(set(ids)), f"{protocol.name}: an id came twice (cut {cut})"
            text = protocol.text([*first, *rest])
        else:  # the rest is the whole active stream again, from its start
            text = protocol.text(rest) if rest else protocol.text(first)  # [] : it had it all
            assert not rest or protocol.text(rest).startswith(protocol.text(first))
        assert text == EXPECTED, f"{protocol.name}: cut after {cut} events"
        mid_reply += bool(rest)
    assert mid_reply >= MOMENTS // 2, f"{protocol.name}: only {mid_reply} cuts fell mid-reply"
    # HAProxy's own log says which instance served what: every resume went to the other one.
    starts = 1 + len(cuts) if protocol.starts_read else 0
    expected = {"app1": starts, "app2": len(cuts)}
    expected = {name: count for name, count in expected.items() if count}
    deadline = time.monotonic() + 10
    while (served := _servers(haproxy_log, logged, protocol.read_path)) != expected:
        assert time.monotonic() < deadline, (served, expected)  # HAProxy logs as each request ends
        time.sleep(0.05)


def _servers(log: Path, offset: int, pattern: str) -> dict[str, int]:
    """How many requests matching `pattern` HAProxy sent to each server since `offset` (httplog)."""
    lines = log.read_bytes()[offset:].decode(errors="replace")
    return dict(Counter(re.findall(rf'instances/(app\d+) [^"]*"{pattern}', lines)))
