"""A chat session without a browser: a real Socket.IO client of the Chainlit server, speaking
the same events as Chainlit's web page."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import socketio

STOPPED_MARKER = "Task manually stopped."
STATS_AUTHOR = "stats"  # the live progress line is a message of its own
NOTE_AUTHOR = "note"  # small notes, e.g. that older messages were left out


async def sign_in(url: str) -> dict[str, str]:
    """Sign in as the page does when the app offers header auth (the local user on loopback, history
    on); the handshake headers that carry the login cookie, or none when the app has no login."""
    async with httpx.AsyncClient(base_url=url, timeout=10, headers={"Origin": url}) as http:
        offered = (await http.get("/auth/config")).json()
        if not offered.get("headerAuth"):
            return {}
        response = await http.post("/auth/header")
        response.raise_for_status()
    cookies = "; ".join(f"{name}={value}" for name, value in response.cookies.items())
    return {"Cookie": cookies, "Origin": url}


@dataclass
class ChatClient:
    """One session: connect, ask, stop; it rebuilds each assistant message from the events."""

    url: str
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    sio: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))
    messages: dict[str, str] = field(default_factory=dict)  # assistant message id -> text
    order: list[str] = field(default_factory=list)
    task_ends: int = 0
    stream_tokens: int = 0
    authors: set[str] = field(default_factory=set)  # every assistant-side author seen
    notes: dict[str, str] = field(default_factory=dict)  # note id -> text
    arrivals: list[float] = field(default_factory=list)  # monotonic time of each reply event
    thread_id: str | None = None  # a stored thread to resume (history on)
    resumed: dict[str, Any] | None = None  # the thread the server sent back on resuming
    login: dict[str, str] = field(default_factory=dict)  # the Cookie/Origin headers it signed in with
    log: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)  # every step event, in order
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def connect(
        self, seconds: float = 30, headers: dict[str, str] | None = None, task_ends: int = 2
    ) -> None:
        """Open the session (sending `headers` with the handshake) and wait until on_chat_start has
        finished; a restored session (same `session_id` after a drop) sends only the handshake's
        task_end: pass `task_ends=1`."""
        sio = self.sio

        @sio.on("stream_start")  # type: ignore[untyped-decorator]
        async def stream_start(data: dict[str, Any]) -> None:
            self.log.append((time.monotonic(), "stream_start", data))
            self._set(data)

        @sio.on("new_message")  # type: ignore[untyped-decorator]
        async def new_message(data: dict[str, Any]) -> None:
            self.log.append((time.monotonic(), "new_message", data))
            self._set(data)

        @sio.on("update_message")  # type: ignore[untyped-decorator]
        async def update_message(data: dict[str, Any]) -> None:
            self.log.append((time.monotonic(), "update_message", data))
            self._changed.set()
            if data.get("id") in self.messages:
                self._set(data)

        @sio.on("stream_token")  # type: ignore[untyped-decorator]
        async def stream_token(data: dict[str, Any]) -> None:
            self.log.append((time.monotonic(), "stream_token", data))
            self.stream_tokens += 1
            self.arrivals.append(time.monotonic())
            previous = self.messages.get(data["id"], "")
            self.messages[data["id"]] = data["token"] if data.get("isSequence") else previous + data["token"]
            self._changed.set()

        @sio.on("resume_thread")  # type: ignore[untyped-decorator]
        async def resume_thread(data: dict[str, Any]) -> None:
            self.resumed = data
            self._changed.set()

        @sio.on("task_end")  # type: ignore[untyped-decorator]
        async def task_end(data: dict[str, Any]) -> None:
            self.task_ends += 1
            self._changed.set()

        headers = dict(headers or {})
        if "Cookie" not in headers:  # the caller's headers win (a test may send a foreign Origin)
            headers = {**await sign_in(self.url), **headers}
        self.login = {name: value for name, value in headers.items() if name in ("Cookie", "Origin")}
        await sio.connect(
            self.url,
            socketio_path="/ws/socket.io",
            transports=["websocket"],
            auth={
                "sessionId": self.session_id,
                "clientType": "webapp",
                "userEnv": "{}",
                **({"threadId": self.thread_id} if self.thread_id else {}),
            },
            headers=headers,
            wait_timeout=seconds,
        )
        await sio.emit("connection_successful")
        await self.wait_task_ends(task_ends, seconds)  # the handshake's and on_chat_start's

    def _set(self, data: dict[str, Any]) -> None:
        if data.get("type") == "assistant_message":
            self.authors.add(str(data.get("name")))
        if data.get("type") == "assistant_message" and data.get("name") == NOTE_AUTHOR:
            self.notes[data["id"]] = data.get("output") or ""
            return
        if data.get("type") != "assistant_message" or data.get("name") == STATS_AUTHOR:
            return
        self.arrivals.append(time.monotonic())
        if data["id"] not in self.messages:
            self.order.append(data["id"])
        self.messages[data["id"]] = data.get("output") or ""
        self._changed.set()

    async def wait_resumed(self, seconds: float = 30) -> dict[str, Any]:
        """Wait until the server has resumed the thread (on_chat_resume has run) and return it."""
        async with asyncio.timeout(seconds):
            while self.resumed is None:
                self._changed.clear()
                await self._changed.wait()
        return self.resumed

    async def wait_task_ends(self, count: int, seconds: float = 60) -> None:
        """Wait until `count` task_end events have arrived."""
        async with asyncio.timeout(seconds):
            while self.task_ends < count:
                self._changed.clear()
                await self._changed.wait()

    async def wait_text(self, predicate: Any, seconds: float = 60) -> None:
        """Wait until `predicate(self.reply())` holds."""
        async with asyncio.timeout(seconds):
            while not predicate(self.reply()):
                self._changed.clear()
                await self._changed.wait()

    async def wait_until(self, predicate: Any, seconds: float = 60) -> None:
        """Wait until `predicate()` holds, checked after every event."""
        async with asyncio.timeout(seconds):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def send(self, text: str) -> None:
        """Submit a user message, as the composer does."""
        message = {
            "id": str(uuid.uuid4()),
            "threadId": "",
            "name": "User",
            "type": "user_message",
            "output": text,
            "createdAt": datetime.now(UTC).isoformat(),
        }
        await self.sio.emit("client_message", {"message": message, "fileReferences": None})

    async def stop(self) -> None:
        """Press the stop button."""
        await self.sio.emit("stop")

    def reply(self, since: int = 0) -> str:
        """The assistant's text so far (all segments), without Chainlit's stop marker; with `since`,
        only the messages after the first `since` (e.g. `len(self.order)` before a turn)."""
        return "".join(self.messages[i] for i in self.order[since:] if self.messages[i] != STOPPED_MARKER)

    async def close(self) -> None:
        """Disconnect."""
        await self.sio.disconnect()


@asynccontextmanager
async def connected(url: str, session_id: str | None = None) -> AsyncIterator[ChatClient]:
    """A ChatClient with its session open; with `session_id`, that dropped session restored (no
    on_chat_start runs again); closed on leaving."""
    client = ChatClient(url) if session_id is None else ChatClient(url, session_id=session_id)
    try:
        await client.connect(task_ends=2 if session_id is None else 1)
        yield client
    finally:
        await client.close()
