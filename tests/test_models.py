"""The backend's models: `smart-agent models`, the API's `model` checked against the list, a server
without `/v1/models`, and a configured model the server does not list."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from smart_agent import cli
from smart_agent.config import Settings
from smart_agent.llm.client import make_client
from smart_agent.llm.local_server import free_port
from smart_agent.llm.models import available_models, forget_models, resolve_model, unlisted
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, MODELS, OTHER_MODEL, ScriptedServer, serve

runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_lists() -> Iterator[None]:
    """Each test asks its servers anew (lists are cached for a minute)."""
    forget_models()
    yield
    forget_models()


@pytest.fixture(scope="module")
def unlisting() -> Iterator[ScriptedServer]:
    """A server without `/v1/models`, which serves whatever model is asked for."""
    with serve(models=None) as server:
        yield server


def models_cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli.app, ["models", *args], env={"OPENAI_API_KEY": "k"}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_models_cli_when_server_lists_them_then_one_per_line(scripted: ScriptedServer) -> None:
    assert models_cli("--base-url", scripted.url) == (0, "".join(f"{m}\n" for m in MODELS), "")


def test_models_cli_when_server_has_no_model_list_then_exit_1_saying_so(unlisting: ScriptedServer) -> None:
    code, out, err = models_cli("--base-url", unlisting.url)
    assert (code, out) == (1, "")
    assert err == f"Error: The model server at {unlisting.url} does not list its models (no /v1/models).\n"


def test_models_cli_when_no_server_then_exit_1_with_a_readable_reason() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, out, err = models_cli("--base-url", url)
    assert (code, out) == (1, "")
    assert err == f"Error: Could not connect to the model server at {url}: is it running?\n"


def test_models_cli_when_base_url_is_bad_then_exit_2_naming_it() -> None:
    code, _, err = models_cli("--base-url", "not-a-url")
    assert code == 2 and "'not-a-url'" in err and "--base-url" in err


async def test_model_when_configured_but_unlisted_then_warned_and_without_list_served(
    scripted: ScriptedServer, unlisting: ScriptedServer
) -> None:
    for server, expected in ((scripted, MODELS), (unlisting, ())):
        settings = Settings(api_key="k", base_url=server.url, model="custom")
        client = make_client(settings)
        try:
            models = await available_models(client, settings)
            assert models.ids == expected
            assert await resolve_model(client, settings) == "custom"
        finally:
            await client.close()
        warning = unlisted("custom", models)
        if server is scripted:
            assert (
                warning
                == f"the model 'custom' is not among the models the server lists ({', '.join(MODELS)})"
            )
        else:
            assert warning is None  # a server that lists nothing: --model is trusted


async def test_resolve_model_when_no_model_and_no_list_then_one_error_naming_model_flag(
    unlisting: ScriptedServer,
) -> None:
    settings = Settings(api_key="k", base_url=unlisting.url)
    client = make_client(settings)
    try:
        with pytest.raises(Exception, match=r"does not list its models.*--model"):
            await resolve_model(client, settings)
    finally:
        await client.close()


def test_api_model_when_not_listed_then_400_naming_the_allowed_and_when_listed_then_used(
    scripted_app: Callable[..., str], scripted: ScriptedServer
) -> None:
    url = scripted_app()
    body = {"messages": [{"role": "user", "content": "#script tokens=2"}], "model": "gpt-5"}
    refused = httpx.post(f"{url}/api/v1/runs", json=body, headers={"Origin": url}, timeout=30)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["field"] == "model" and f"allowed: {MODEL_ID}, {OTHER_MODEL}" in error["message"]
    body["model"] = OTHER_MODEL
    started = httpx.post(f"{url}/api/v1/runs", json=body, headers={"Origin": url}, timeout=30)
    assert started.status_code == 201
    with httpx.stream(
        "GET", url + started.json()["events_url"], headers={"Origin": url}, timeout=30
    ) as events:
        for line in events.iter_lines():
            if line.startswith("event: done"):
                break
    assert scripted.requests[-1]["model"] == OTHER_MODEL


def test_app_when_model_unlisted_then_start_log_warns_once_naming_the_listed(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="k")
    with running_app("--base-url", scripted.url, "--model", "gpt-5", env=env, log_dir=tmp_path):
        pass
    log = next(tmp_path.glob("app-*.log")).read_text()
    assert log.count("the model 'gpt-5' is not among the models the server lists") == 1, log[-2000:]
