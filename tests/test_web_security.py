"""The real app's guard: only its own origins and Host values, and no oversized request bodies."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
import socketio

from smart_agent.web.security import MAX_BODY_BYTES
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer
from tests.sio_client import ChatClient

EVIL = "https://evil.example"
PROXY = "https://chat.example.com"  # as if a reverse proxy served the app there


@pytest.fixture(scope="module")
def app_url(scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One app for the module, against the scripted model server."""
    env = clean_env(OPENAI_API_KEY="test-key")
    flags = ("--base-url", scripted.url, "--model", MODEL_ID, "--allowed-origins", PROXY)
    with running_app(*flags, env=env, log_dir=tmp_path_factory.mktemp("app")) as (url, _):
        yield url


async def test_socketio_when_origin_is_foreign_then_refused_while_own_origin_chats(app_url: str) -> None:
    evil = ChatClient(app_url)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await evil.connect(seconds=10, headers={"Origin": EVIL})
    finally:
        await evil.close()  # releases the client's HTTP session
    own = ChatClient(app_url)
    try:
        await own.connect(headers={"Origin": app_url.replace("127.0.0.1", "localhost")})
        await own.send("#script tokens=3")
        await own.wait_task_ends(3)
        assert own.reply() == " w00000 w00001 w00002"
    finally:
        await own.close()


def test_http_when_origin_is_foreign_then_403_and_no_cors_grant(app_url: str) -> None:
    with httpx.Client(timeout=10) as http:
        evil = http.get(f"{app_url}/auth/config", headers={"Origin": EVIL})
        preflight = http.options(
            f"{app_url}/mcp",
            headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
        )
        own = http.get(f"{app_url}/auth/config", headers={"Origin": app_url})
    assert evil.status_code == 403
    assert "access-control-allow-origin" not in evil.headers
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    assert own.status_code == 200
    assert own.headers["access-control-allow-origin"] == app_url


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:{port}", "127.0.0.1.nip.io:{port}"])
def test_request_when_host_is_foreign_then_400(app_url: str, host: str) -> None:
    port = urlsplit(app_url).port
    with httpx.Client(timeout=10) as http:
        foreign = http.get(f"{app_url}/", headers={"Host": host.format(port=port)})
        localhost = http.get(f"{app_url}/", headers={"Host": f"localhost:{port}"})
    assert foreign.status_code == 400
    assert "SMART_AGENT_ALLOWED_ORIGINS" in foreign.text
    assert localhost.status_code == 200


PART = (
    b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
)


def _post_head(app_url: str, framing: bytes) -> bytes:
    netloc = urlsplit(app_url).netloc.encode()
    return (
        b"POST /project/file?session_id=nope HTTP/1.1\r\nHost: " + netloc + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=xyz\r\n" + framing + b"\r\n"
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def test_upload_when_declared_over_cap_then_413_before_the_body_is_sent(app_url: str) -> None:
    address = (urlsplit(app_url).hostname, urlsplit(app_url).port)
    with socket.create_connection(address, timeout=15) as sock:
        sock.sendall(_post_head(app_url, b"Content-Length: 1073741824\r\n") + PART + b"x" * 1000)
        answer = sock.recv(4096)  # the other 1 GiB is never sent: the app must not wait for it
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_upload_when_streamed_past_cap_then_413_before_the_end(app_url: str) -> None:
    address = (urlsplit(app_url).hostname, urlsplit(app_url).port)
    chunk = b"x" * 65536
    frame = _chunk(chunk)
    limit = 16 * MAX_BODY_BYTES
    sent = 0
    with socket.create_connection(address, timeout=15) as sock:
        sock.sendall(_post_head(app_url, b"Transfer-Encoding: chunked\r\n") + _chunk(PART))
        deadline = time.monotonic() + 60
        try:
            while sent < limit and not select.select([sock], [], [], 0)[0]:
                sock.sendall(frame)
                sent += len(chunk)
                assert time.monotonic() < deadline
        except OSError:  # the app closed the connection after answering
            pass
        if sent >= limit:
            sock.sendall(b"0\r\n\r\n")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < limit, f"the app read {sent:,} bytes before answering"


def test_request_when_through_the_configured_proxy_origin_then_served(app_url: str) -> None:
    with httpx.Client(timeout=10) as http:
        response = http.get(f"{app_url}/auth/config", headers={"Host": "chat.example.com", "Origin": PROXY})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == PROXY


@pytest.mark.parametrize(
    ("path", "refused"), [("/project/file?session_id=nope", False), ("/project/threads", True)]
)
def test_body_when_over_2_mib_then_only_the_upload_route_takes_it(
    app_url: str, path: str, refused: bool
) -> None:
    body = PART + b"x" * (3 * 1024 * 1024) + b"\r\n--xyz--\r\n"  # within the 5 MB upload limit
    headers = {"Content-Type": "multipart/form-data; boundary=xyz", "Origin": app_url}
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{app_url}{path}", content=body, headers=headers)
    assert (response.status_code == 413) == refused, response.text[:200]
