"""Login in the real app (history on): the local user until an account exists, then password login only."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import socketio

from tests.conftest import AppFactory
from tests.harness import clean_env
from tests.login_helpers import add_account, call, cookie_headers, password_login, signed_in
from tests.scripted_server import MODEL_ID, ScriptedServer
from tests.sio_client import ChatClient

ALICE_PASSWORD = "correct horse battery staple"


def history_env() -> dict[str, str]:
    """A clean environment with history on (explicitly: the default is the lead's to choose)."""
    return clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_HISTORY="1")


async def test_login_when_an_account_is_added_to_a_running_app_then_local_user_and_its_cookie_stop_working(
    start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=history_env())
    before = (await call(url, "GET", "/auth/config")).json()
    assert before["headerAuth"] and before["passwordAuth"]
    local = await call(url, "POST", "/auth/header")
    assert local.status_code == 200
    local_headers = cookie_headers(url, local)
    assert (await call(url, "GET", "/user", local_headers)).json()["identifier"] == "local"

    add_account(tmp_path / "data", "alice", ALICE_PASSWORD)  # the CLI, while the app runs
    added = time.monotonic()
    async with asyncio.timeout(10):
        while (await call(url, "GET", "/auth/config")).json()["headerAuth"]:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # another process wrote the account: nothing to await but the app
    switched = time.monotonic() - added
    print(f"header auth withdrawn {switched * 1000:.0f} ms after `users add` returned")

    after = (await call(url, "GET", "/auth/config")).json()
    assert (after["requireLogin"], after["headerAuth"], after["passwordAuth"]) == (True, False, True)
    refused = await call(url, "POST", "/auth/header")
    assert refused.status_code in (400, 401) and "set-cookie" not in refused.headers
    # The cookie issued to `local` before the account existed no longer signs anyone in.
    assert (await call(url, "GET", "/user", local_headers)).status_code == 401
    threads = {"pagination": {"first": 20, "cursor": None}, "filter": {}}
    assert (await call(url, "POST", "/project/threads", local_headers, threads)).status_code == 401
    with pytest.raises(socketio.exceptions.ConnectionError):
        await ChatClient(url).connect(seconds=10, headers=dict(local_headers))

    wrong = await password_login(url, "alice", "not her password")
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    started = time.monotonic()
    alice = await signed_in(url, "alice", ALICE_PASSWORD)
    print(f"password sign-in took {(time.monotonic() - started) * 1000:.0f} ms")
    assert (await call(url, "GET", "/user", alice)).json()["identifier"] == "alice"
    client = ChatClient(url)
    await client.connect(headers=dict(alice))
    try:
        await client.send("#script text=hello_alice")
        await client.wait_text(lambda text: "hello_alice" in text, 60)
    finally:
        await client.close()
