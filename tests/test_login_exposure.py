"""A non-loopback host with history on starts only with a login (accounts, OAuth), never the local user."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from smart_agent.llm.local_server import free_port
from tests.conftest import AppFactory
from tests.harness import ROOT, clean_env
from tests.login_helpers import add_account, call, signed_in
from tests.scripted_server import MODEL_ID, ScriptedServer

EXPOSED = ("--host", "0.0.0.0")


def app_log(log_dir: Path) -> str:
    """The text the app printed so far."""
    return next(log_dir.glob("app-*.log")).read_text()


def history_env(**extra: str) -> dict[str, str]:
    """A clean environment with history on and the scripted model."""
    return clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_HISTORY="1", **extra)


def test_exposed_when_no_account_and_no_oauth_then_exit_2_saying_how_to_add_an_account(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "smart_agent", "chainlit", "--headless", "--port", str(free_port())]
    flags = [*EXPOSED, "--base-url", scripted.url, "--model", MODEL_ID]
    env = history_env(SMART_AGENT_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [*command, *flags], env=env, cwd=ROOT, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr.decode()
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "--host 0.0.0.0" in lines[0] and "`smart-agent users add NAME`" in lines[0]
    assert "--expose-without-login" in lines[0]


async def test_exposed_when_an_account_exists_then_it_starts_with_password_login_and_no_local_user(
    start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    add_account(tmp_path / "data", "alice", "alice's password")
    url = start_app(*EXPOSED, "--base-url", scripted.url, "--model", MODEL_ID, env=history_env())
    offered = (await call(url, "GET", "/auth/config")).json()
    assert (offered["requireLogin"], offered["headerAuth"], offered["passwordAuth"]) == (True, False, True)
    assert (await call(url, "POST", "/auth/header")).status_code in (400, 401)
    alice = await signed_in(url, "alice", "alice's password")
    assert (await call(url, "GET", "/user", alice)).json()["identifier"] == "alice"


async def test_exposed_when_github_oauth_is_set_then_it_starts_offering_github_with_its_callback_url(
    start_app: AppFactory, scripted: ScriptedServer
) -> None:
    env = history_env(OAUTH_GITHUB_CLIENT_ID="client-id", OAUTH_GITHUB_CLIENT_SECRET="client-secret")
    url = start_app(*EXPOSED, "--base-url", scripted.url, "--model", MODEL_ID, env=env)
    offered = (await call(url, "GET", "/auth/config")).json()
    assert (offered["headerAuth"], offered["oauthProviders"]) == (False, ["github"])
    redirect = await call(url, "GET", "/auth/oauth/github")
    assert redirect.status_code in (302, 307)
    target = urlsplit(redirect.headers["location"])
    assert target.netloc == "github.com"
    assert parse_qs(target.query)["redirect_uri"] == [f"{url}/auth/oauth/github/callback"]


async def test_exposed_when_opted_out_without_login_then_it_starts_with_history_off_and_a_warning(
    start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    flags = (*EXPOSED, "--expose-without-login", "--base-url", scripted.url, "--model", MODEL_ID)
    url = start_app(*flags, env=history_env())
    offered = (await call(url, "GET", "/auth/config")).json()
    assert not offered["requireLogin"] and not offered["headerAuth"]
    log = app_log(tmp_path)
    assert "WITHOUT authentication" in log and "chat history is off" in log
