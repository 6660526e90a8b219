"""A TCP proxy on 127.0.0.1 in front of the app that cuts connections mid-response, on cue.

Tests see what a client sees when the server (or a load balancer) closes an event stream mid-run:
the response simply stops, in the middle of an event or of its headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]\r\n")
CHUNK = 65536


@dataclass(frozen=True)
class Request:
    """One HTTP request seen on its way to the app: its method, path and header block."""

    method: str
    path: str
    head: str

    def header(self, name: str) -> str | None:
        """The value of header `name` (case-insensitive), or None."""
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    cut_path: bool = False  # its current request is for the cut path
    budget: int | None = None  # response bytes still let through before the cut
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self) -> None:
        """A FIN to both sides, as a server closing the connection sends."""
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):  # the other side may be gone already
                writer.close()
        self.closed.set()


class DroppingProxy:
    """Forwards 127.0.0.1:`port` to the app; cuts responses to `cut_path` after planned byte counts.

    `plan(*budgets)`: the next responses to a request whose path contains `cut_path` are cut
    after that many bytes each (headers included); later ones pass. `cut()` closes every
    connection whose current request is for `cut_path`, at once.
    """

    def __init__(self, cut_path: str = "/events") -> None:
        self.cut_path = cut_path
        self.port = 0
        self.upstream_port: int | None = None
        self.requests: list[Request] = []
        self.cuts = 0
        self._budgets: deque[int] = deque()
        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def plan(self, *budgets: int) -> None:
        """Cut the next len(budgets) responses to `cut_path` after these many bytes each."""
        with self._lock:
            self._budgets.extend(budgets)

    def planned(self) -> int:
        """Planned cuts that have not happened yet."""
        with self._lock:
            return len(self._budgets)

    def cut(self) -> int:
        """Close every connection now serving `cut_path`; how many were closed."""
        return asyncio.run_coroutine_threadsafe(self._cut_now(), self._loop).result(timeout=10)

    def seen(self, part: str | None = None) -> list[Request]:
        """The requests whose path contains `part` (default: `cut_path`)."""
        with self._lock:
            return [r for r in self.requests if (part or self.cut_path) in r.path]

    async def _cut_now(self) -> int:
        hit = [conn for conn in self._connections if conn.cut_path]
        for conn in hit:
            conn.close()
        with self._lock:
            self.cuts += len(hit)
        return len(hit)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        conn = _Connection(writer, up_writer)
        self._connections.add(conn)
        try:
            pumps = [
                asyncio.create_task(self._requests(reader, conn)),
                asyncio.create_task(self._responses(up_reader, conn)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._connections.discard(conn)
            conn.close()

    async def _requests(self, reader: asyncio.StreamReader, conn: _Connection) -> None:
        while data := await reader.read(CHUNK):
            match = _REQUEST_LINE.match(data)
            if match:  # a new request on this connection (clients here never pipeline)
                path = match.group(2).decode()
                head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
                with self._lock:
                    self.requests.append(Request(match.group(1).decode(), path, head))
                    conn.cut_path = self.cut_path in path
                    conn.budget = self._budgets.popleft() if conn.cut_path and self._budgets else None
            conn.upstream.write(data)
            await conn.upstream.drain()

    async def _responses(self, reader: asyncio.StreamReader, conn: _Connection) -> None:
        while data := await reader.read(CHUNK):
            if conn.budget is not None and len(data) >= conn.budget:
                conn.client.write(data[: conn.budget])
                await conn.client.drain()
                with self._lock:
                    self.cuts += 1
                return  # the caller closes both sides
            if conn.budget is not None:
                conn.budget -= len(data)
            conn.client.write(data)
            await conn.client.drain()

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)

        async def listen() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self._loop.run_until_complete(listen())
        started.set()
        self._loop.run_forever()

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @contextmanager
    def running(self) -> Iterator[DroppingProxy]:
        """Serve in a thread of its own until the block ends."""
        started = threading.Event()
        thread = threading.Thread(target=self._run, args=(started,), name="dropping-proxy", daemon=True)
        thread.start()
        if not started.wait(10):
            raise RuntimeError("the proxy did not start")
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(timeout=10)
            self._loop.close()
