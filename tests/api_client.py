"""A small client of the SSE API for the tests: start runs, read their events, resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


@dataclass(frozen=True)
class Event:
    """One received SSE event."""

    kind: str
    data: dict[str, Any]
    id: str | None

    @classmethod
    def of(cls, sse: ServerSentEvent) -> Event:
        """Parse one httpx-sse event."""
        return cls(sse.event, json.loads(sse.data), sse.id or None)


def start_run(base: str, content: str, headers: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """POST a one-message run; returns the 201 body."""
    body = {"messages": [{"role": "user", "content": content}], **extra}
    response = httpx.post(f"{base}/api/v1/runs", json=body, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return dict(response.json())


def events(
    base: str,
    run_id: str,
    *,
    after: str | None = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    limit: int | None = None,
) -> Iterator[Event]:
    """The run's events from `after`; stops after `limit` events (a client disconnecting)."""
    sent = dict(headers or {})
    if after is not None:
        sent["Last-Event-ID"] = after
    url = f"{base}/api/v1/runs/{run_id}/events"
    with (
        httpx.Client(timeout=TIMEOUT) as client,
        connect_sse(client, "GET", url, params=params, headers=sent) as source,
    ):
        source.response.raise_for_status()
        count = 0
        for sse in source.iter_sse():
            yield Event.of(sse)
            count += 1
            if limit is not None and count >= limit:
                return


def read_all(base: str, run_id: str, **options: Any) -> list[Event]:
    """Every event of a reading, heartbeats included."""
    return list(events(base, run_id, **options))


def read_to_end(base: str, run_id: str, reconnects: int = 20, **options: Any) -> list[Event]:
    """Every event until the run's end, reconnecting after the last id as an EventSource does when
    the server ends a stream early (a reader that fell behind its buffer)."""
    received = read_all(base, run_id, **options)
    for _ in range(reconnects):
        if received and received[-1].kind in ("done", "error"):
            break
        last = next((event.id for event in reversed(received) if event.id), None)
        received += read_all(base, run_id, after=last, **options)
    return received


def text_of(received: list[Event]) -> str:
    """The reply as a client shows it: a snapshot replaces, tokens append."""
    text = ""
    for event in received:
        if event.kind == "snapshot":
            text = event.data["text"]
        elif event.kind == "token":
            text += event.data["text"]
    return text


def get_run(base: str, run_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET /api/v1/runs/{id}."""
    return httpx.get(f"{base}/api/v1/runs/{run_id}", headers=headers, timeout=TIMEOUT)
