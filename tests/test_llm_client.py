"""Model clients: one TLS context per process, openai's own HTTP defaults otherwise (issue 14), over
openai's aiohttp transport, whose failures read as httpx's did (issue 28)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import openai
import pytest

from benchmarks.transport_bench import TRANSPORTS, one_round, read_reply
from smart_agent.config import Settings
from smart_agent.errors import ModelError
from smart_agent.llm.client import describe_error, make_client
from smart_agent.llm.transport import ModelTransport
from tests.harness import free_port
from tests.scripted_server import MODEL_ID, ScriptedServer


def _transport(client: openai.AsyncOpenAI) -> ModelTransport:
    transport = client._client._transport  # type: ignore[attr-defined]
    assert isinstance(transport, ModelTransport)
    return transport


async def _failure(settings: Settings) -> openai.APIConnectionError:
    """What reading a reply from `settings`' server fails with; it must fail, and not as a timeout
    (a server that is down or broke off is not a slow one)."""
    client = make_client(settings)
    try:
        with pytest.raises(openai.APIConnectionError) as raised:
            await read_reply(client, "hi")
    finally:
        await client.close()
    assert not isinstance(raised.value, openai.APITimeoutError)
    return raised.value


def test_make_client_when_called_per_session_then_tls_context_built_once() -> None:
    first, second = make_client(Settings()), make_client(Settings())
    assert _transport(first).ssl_context is _transport(second).ssl_context


async def test_make_client_when_no_http_client_given_then_openai_defaults_kept() -> None:
    ours, theirs = make_client(Settings()), openai.AsyncOpenAI(api_key="x")
    assert ours._client.follow_redirects is theirs._client.follow_redirects
    assert type(ours._client) is type(theirs._client)  # closes itself when dropped, as openai's does
    session = _transport(ours).get_client()
    try:
        pool = theirs._client._transport._pool  # type: ignore[attr-defined]
        assert session.connector is not None and session.connector.limit == pool._max_connections
        assert not session.connector.force_close  # keep-alive, as openai's pool
    finally:
        await session.close()


async def test_make_client_when_embedded_then_each_request_gets_a_new_connection() -> None:
    session = _transport(make_client(Settings(base_url="http://127.0.0.1:9/v1", embedded=True))).get_client()
    try:
        assert session.connector is not None and session.connector.force_close
    finally:
        await session.close()


async def test_stream_when_read_through_the_transport_then_every_token_arrives_in_order(
    scripted: ScriptedServer,
) -> None:
    client = make_client(Settings(base_url=scripted.url, api_key="k", model=MODEL_ID))
    try:
        first = "".join(await read_reply(client, "#script tokens=300"))
        second = "".join(await read_reply(client, "#script tokens=300"))  # on the kept-alive connection
    finally:
        await client.close()
    assert first == second and len(first.split()) == 300


async def test_request_when_server_refuses_then_could_not_connect_is_said() -> None:
    settings = Settings(base_url=f"http://user:pw@127.0.0.1:{free_port()}/v1", api_key="k", model="m")
    failure = await _failure(settings)
    assert isinstance(failure.__cause__, httpx2.ConnectError)
    assert "Could not connect" in str(describe_error(failure, settings))


@contextmanager
def _closing_server(answer: bytes = b"", reset: bool = False) -> Iterator[int]:
    """A server that reads one request, sends `answer` and closes the connection (with `reset`, by
    a TCP reset, as a crashed server's kernel sends)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(10)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)
                if reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(timeout=10)


async def test_request_when_server_closes_without_answering_then_not_a_timeout() -> None:
    with _closing_server() as port:
        failure = await _failure(Settings(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", model="m"))
    assert isinstance(failure.__cause__, httpx2.RemoteProtocolError)


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
async def test_stream_when_server_closes_mid_body_then_the_reply_broke_off(reset: bool) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    event = b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    body = f"{len(event):x}\r\n".encode() + event + b"\r\n"
    with _closing_server(head + body, reset) as port:
        settings = Settings(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", model="m")
        failure = await _failure(settings)
    assert isinstance(failure.__cause__, httpx2.TransportError)
    error = describe_error(failure, settings, mid_stream=True)
    assert isinstance(error, ModelError) and "broke off mid-reply" in str(error)


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
async def test_transport_bench_when_run_quickly_then_every_token_is_read_and_measured(
    scripted: ScriptedServer, transport: str
) -> None:
    result = await one_round(scripted.url, transport, streams=3, tokens=50, rate=0)
    assert result["exact"] and result["tokens"] == 150, result
    assert result["us_per_token"] > 0 and result["lag_p99_ms"] >= result["lag_p50_ms"] > -1, result
