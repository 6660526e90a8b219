"""The model client's HTTP transport: openai's own aiohttp adapter, failing with httpx's errors."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx2
from openai._vendor.httpx_aiohttp import AiohttpTransport
from openai._vendor.httpx_aiohttp.transport import AiohttpResponseStream

from smart_agent.llm.read_ticks import in_ticks, ticker

# As many connections as openai's own client allows (`DEFAULT_CONNECTION_LIMITS`).
MAX_CONNECTIONS = 1000


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS settings every model client uses, built once per process.

    httpx builds a context per client by default, loading the system's CA certificates each time:
    about 30 ms of blocked event loop per chat session, 3 s when 100 sessions open (issue 14).
    """
    return httpx2.create_ssl_context()


def _as_httpx(exc: httpx2.HTTPError, request: httpx2.Request) -> httpx2.HTTPError:
    """The error httpx's own transport raises for the aiohttp failure behind `exc`.

    The adapter maps a refused connection and a server that closed without answering to a connect
    timeout, which would tell the user the server was slow rather than down.
    """
    cause = exc.__cause__
    message = str(exc) or type(cause).__name__
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx2.ConnectError(message, request=request)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return httpx2.RemoteProtocolError(message, request=request)
    if isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, aiohttp.ServerTimeoutError):
        return httpx2.ReadError(message, request=request)
    return exc


class _TickedStream(AiohttpResponseStream):
    """A response body read once per tick while it flows and many others do (`llm/read_ticks.py`)."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        response = self._aiohttp_response
        connection = response.connection
        transport = connection.transport if connection is not None else None
        ticks = ticker()

        def pause() -> None:
            # A body read to its end has given its connection back to the pool, for the next
            # request to read at once: leave it reading.
            if ticks.busy and transport is not None and response.connection is not None:
                ticks.pause(transport)

        with ticks.streaming():
            async for data in in_ticks(super().__aiter__(), pause):
                yield data


class ModelTransport(AiohttpTransport):
    """aiohttp under the openai client: about 40 % less CPU per streamed token than httpx over anyio,
    and a p99 event-loop lag of 1.6 ms instead of 15 (`benchmarks/transport_bench.py`, issue 28).

    `keepalive=False` opens a connection per request (llama.cpp's server, see `llm/client.py`);
    `ticks=False` reads each chunk as it comes, as native Chainlit does (`--no-stream-batching`).
    """

    def __init__(self, *, keepalive: bool = True, ticks: bool = True) -> None:
        super().__init__(verify=shared_ssl_context(), client=self._session)
        self._keepalive = keepalive
        self._ticks = ticks

    def _session(self) -> aiohttp.ClientSession:
        """The aiohttp session, made inside the event loop at the first request."""
        connector = aiohttp.TCPConnector(
            ssl=self.ssl_context, limit=MAX_CONNECTIONS, force_close=not self._keepalive
        )
        return aiohttp.ClientSession(connector=connector)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request`; a failure to connect or to get an answer raises httpx's error.

        A body that breaks off needs no mapping: aiohttp fails it with `ClientPayloadError` or a read
        timeout, which the adapter already maps to httpx's `ReadError` and `ReadTimeout`.
        """
        if request.url.userinfo:
            # httpx has made the URL's user-info the Authorization header already, as its own
            # transport would send it; aiohttp refuses a request that has both.
            request.url = request.url.copy_with(userinfo=b"")
        try:
            response = await super().handle_async_request(request)
        except httpx2.HTTPError as exc:
            raise _as_httpx(exc, request) from exc.__cause__
        if self._ticks and isinstance(response.stream, AiohttpResponseStream):
            response.stream = _TickedStream(response.stream._aiohttp_response)
        return response
