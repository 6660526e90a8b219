"""A backend URL's credentials and query never reach chat users, logs or the launch banner."""

from __future__ import annotations

from pathlib import Path

import httpx2
import openai
import pytest

from smart_agent.config import Settings
from smart_agent.errors import ModelError
from smart_agent.llm.client import describe_error, ended_early, make_client, redact_url
from smart_agent.llm.local_server import free_port
from smart_agent.llm.models import resolve_model
from smart_agent.web.launch import _backend
from tests.harness import clean_env, running_app
from tests.sio_client import ChatClient

SECRETS = ("secret", "api-key=abc", "user:", "abc")


def _secret_url(port: int = 9) -> str:
    return f"http://user:secret@127.0.0.1:{port}/v1?api-key=abc"


def _assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in {text!r}"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:secret@127.0.0.1:9/v1?api-key=abc", "http://***@127.0.0.1:9/v1?***"),
        ("https://token@api.example/v1#frag", "https://***@api.example/v1#***"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("http://[::1]:9/v1?k=1", "http://[::1]:9/v1?***"),
    ],
)
def test_redact_url_when_secrets_then_user_info_and_query_hidden(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def _errors(url: str) -> list[BaseException]:
    request = httpx2.Request("POST", url + "/chat/completions")

    def response(status: int) -> httpx2.Response:
        return httpx2.Response(status, request=request)

    echoed = f"upstream {url} said no"  # a library or proxy that echoes the URL it was given
    return [
        openai.APIConnectionError(request=request),
        openai.APITimeoutError(request=request),
        openai.AuthenticationError(echoed, response=response(401), body=None),
        openai.NotFoundError(echoed, response=response(404), body=None),
        openai.RateLimitError(echoed, response=response(429), body=None),
        openai.InternalServerError(echoed, response=response(500), body=None),
        httpx2.ConnectError(echoed, request=request),
        httpx2.ReadError(echoed, request=request),
        RuntimeError(echoed),
    ]


@pytest.mark.parametrize("mid_stream", [False, True])
def test_describe_error_when_url_has_credentials_then_message_has_none(mid_stream: bool) -> None:
    settings = Settings(api_key="k", base_url=_secret_url(), model="m")
    for exc in _errors(_secret_url()):
        message = str(describe_error(exc, settings, mid_stream=mid_stream))
        _assert_no_secret(message)


def test_ended_early_when_url_has_credentials_then_message_has_none() -> None:
    message = str(ended_early(Settings(api_key="k", base_url=_secret_url(), model="m")))
    assert "ended the reply early" in message
    _assert_no_secret(message)


async def test_resolve_model_when_server_offers_none_then_message_has_no_credentials() -> None:
    settings = Settings(api_key="k", base_url=_secret_url())
    no_models = httpx2.MockTransport(
        lambda request: httpx2.Response(200, json={"object": "list", "data": []})
    )
    client = make_client(settings, httpx2.AsyncClient(transport=no_models))
    try:
        with pytest.raises(ModelError) as raised:
            await resolve_model(client, settings)
    finally:
        await client.close()
    assert "http://***@127.0.0.1:9/v1?***" in str(raised.value)
    _assert_no_secret(str(raised.value))


def test_launch_banner_when_url_has_credentials_then_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    with _backend(Settings(api_key="k", base_url=_secret_url(), model="m")):
        pass
    out = capsys.readouterr().out
    assert "at http://***@127.0.0.1:9/v1?***" in out
    _assert_no_secret(out)


async def test_app_when_backend_refuses_connection_then_chat_and_log_show_no_credentials(
    tmp_path: Path,
) -> None:
    url = _secret_url(free_port())
    env = clean_env(OPENAI_API_KEY="k", SMART_AGENT_DEBUG="1")  # debug logging too
    with running_app("--base-url", url, "--model", "m", env=env, log_dir=tmp_path) as (app_url, _):
        client = ChatClient(app_url)
        try:
            await client.connect()
            await client.send("hello")
            await client.wait_text(lambda text: "Could not connect" in text, seconds=30)
        finally:
            await client.close()
    assert "http://***@127.0.0.1" in client.reply()
    _assert_no_secret(client.reply())
    _assert_no_secret(_app_log(tmp_path))


def _app_log(folder: Path) -> str:
    (log,) = folder.glob("app-*.log")
    return log.read_text()
