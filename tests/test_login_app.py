"""Login in the real app (history on): the local user until an account exists, then password login only."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import socketio

from smart_agent.history.accounts import Accounts
from smart_agent.history.urls import HISTORY_FILE
from tests.conftest import AppFactory
from tests.harness import clean_env
from tests.login_helpers import add_account, call, cookie_headers, password_login, signed_in, users
from tests.scripted_server import MODEL_ID, ScriptedServer
from tests.sio_client import ChatClient
from tests.test_history_app import reply_text, settled, stored

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

    users(tmp_path / "data", "remove", "alice")
    async with asyncio.timeout(10):  # a removed account is signed out within the names' lifetime
        while (await call(url, "GET", "/user", alice)).status_code != 401:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def add_accounts(database: Path, passwords: dict[str, str]) -> None:
    """Store these accounts in the history database before the app starts."""
    accounts = await Accounts.open(database)
    try:
        for name, password in passwords.items():
            await accounts.add(name, password)
    finally:
        await accounts.close()


def owned_by(rows: dict[str, list[dict[str, Any]]], thread_id: str) -> dict[str, list[dict[str, Any]]]:
    """The thread's row and every step, element and feedback row of it."""
    return {
        "threads": [t for t in rows["threads"] if t["id"] == thread_id],
        **{
            table: [r for r in rows[table] if r["threadId"] == thread_id]
            for table in ("steps", "elements", "feedbacks")
        },
    }


async def logged(log_dir: Path, text: str, seconds: float = 30) -> None:
    """Wait until the app's log holds `text` (a refusal written by a fire-and-forget task)."""
    async with asyncio.timeout(seconds):
        # Another process writes the log: no event crosses, so the file is polled.
        while not any(text in log.read_text() for log in log_dir.glob("app-*.log")):  # noqa: ASYNC110, ASYNC240
            await asyncio.sleep(0.1)


async def test_ownership_when_bob_acts_on_alices_thread_over_http_and_socketio_then_refused_and_unchanged(
    start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    database = tmp_path / "data" / HISTORY_FILE
    await add_accounts(database, {"alice": ALICE_PASSWORD, "bob": "bob's own password"})
    env = {**history_env(), "SMART_AGENT_SHOW_STATS": "1"}  # the reply gets a footer element
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    assert not (await call(url, "GET", "/auth/config")).json()["headerAuth"]
    alice = await signed_in(url, "alice", ALICE_PASSWORD)
    bob = await signed_in(url, "bob", "bob's own password")

    # Alice chats, and rates the reply.
    alice_client = ChatClient(url)
    await alice_client.connect(headers=dict(alice))
    try:
        await alice_client.send("#script text=alice_secret")
        await alice_client.wait_task_ends(3, 60)
        reply = alice_client.reply()
        rows = await settled(database, lambda r: bool(r["elements"]) and reply_text(r) == reply)
        answer = next(s for s in rows["steps"] if s["type"] == "assistant_message")
        thread_id = answer["threadId"]
        rating = {"forId": answer["id"], "threadId": thread_id, "value": 1, "comment": "mine"}
        rated = await call(
            url, "PUT", "/feedback", alice, {"feedback": rating, "sessionId": alice_client.session_id}
        )
        assert rated.status_code == 200, rated.text
    finally:
        await alice_client.close()
    # The disconnect copies the session into the thread's metadata: wait for it, then take the picture.
    rows = await settled(
        database,
        lambda r: bool(r["feedbacks"]) and "client_type" in json.loads(r["threads"][0]["metadata"] or "{}"),
    )
    before = owned_by(rows, thread_id)
    footer = before["elements"][0]
    feedback_id = before["feedbacks"][0]["id"]
    user_steps = [s for s in before["steps"] if s["type"] == "user_message"]
    everything = [(s["threadId"], s["type"], s["name"]) for s in rows["steps"]]
    assert user_steps, f"no stored user message in thread {thread_id}; stored steps: {everything}"
    user_step = user_steps[0]

    # Over HTTP, with Bob's cookie, and with none.
    threads = {"pagination": {"first": 20, "cursor": None}, "filter": {}}
    listed = await call(url, "POST", "/project/threads", bob, threads)
    assert listed.status_code == 200 and listed.json()["data"] == []
    bob_client = ChatClient(url)
    await bob_client.connect(headers=dict(bob))
    try:
        element = {**footer, "type": "custom", "props": {"summary": "pwned"}}
        attempts = {
            "read": ("GET", f"/project/thread/{thread_id}", None),
            "rename": ("PUT", "/project/thread", {"threadId": thread_id, "name": "pwned"}),
            "delete": ("DELETE", "/project/thread", {"threadId": thread_id}),
            "read element": ("GET", f"/project/thread/{thread_id}/element/{footer['id']}", None),
            "update element in alice's session": (
                "PUT",
                "/project/element",
                {"element": element, "sessionId": alice_client.session_id},
            ),
            "delete element in alice's session": (
                "DELETE",
                "/project/element",
                {"element": element, "sessionId": alice_client.session_id},
            ),
            "rate": (
                "PUT",
                "/feedback",
                {"feedback": {**rating, "value": 0}, "sessionId": bob_client.session_id},
            ),
            "delete rating": ("DELETE", "/feedback", {"feedbackId": feedback_id}),
            "share": ("PUT", "/project/thread/share", {"threadId": thread_id, "isShared": True}),
            "read shared": ("GET", f"/project/share/{thread_id}", None),
        }
        for what, (method, path, body) in attempts.items():
            for who, headers in (("bob", bob), ("nobody", None)):
                response = await call(url, method, path, headers, body)
                expected = {404} if "share" in what else {401} if who == "nobody" else {401, 403, 404}
                assert response.status_code in expected, (what, who, response.status_code, response.text)
                assert "alice_secret" not in response.text, (what, who)
        # In his own session Chainlit lets Bob ask for an element write: the data layer refuses it.
        for method in ("PUT", "DELETE"):
            response = await call(
                url, method, "/project/element", bob, {"element": element, "sessionId": bob_client.session_id}
            )
            assert response.status_code in (200, 401, 403, 404)

        # Over Socket.IO: a message and an edit carrying Alice's thread and step ids.
        crafted = {
            "id": str(uuid.uuid4()),
            "threadId": thread_id,
            "name": "User",
            "type": "user_message",
            "output": "#script text=bob_was_here",
            "createdAt": datetime.now(UTC).isoformat(),
        }
        await bob_client.sio.emit("client_message", {"message": crafted, "fileReferences": None})
        await bob_client.wait_text(lambda text: "bob_was_here" in text, 60)
        # Chainlit queues a session's writes until its first message (data/utils.py), so only now:
        await logged(tmp_path, "create_element refused")
        await logged(tmp_path, "delete_element refused")
        edit = {**user_step, "output": "#script text=edited_by_bob"}
        await bob_client.sio.emit("edit_message", {"message": edit, "fileReferences": None})
        bob_reply = bob_client.reply()
        await settled(database, lambda r: any((s["output"] or "") == bob_reply for s in r["steps"]))
    finally:
        await bob_client.close()
    for intruder in (
        ChatClient(url, thread_id=thread_id),
        ChatClient(url, session_id=alice_client.session_id),
    ):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await intruder.connect(seconds=10, headers=dict(bob))

    after = stored(database)
    assert owned_by(after, thread_id) == before
    assert [t["userIdentifier"] for t in after["threads"] if t["id"] != thread_id] == ["bob"]
    own = await call(url, "GET", f"/project/thread/{thread_id}", alice)
    assert own.status_code == 200 and "alice_secret" in own.text

    # Sharing is off (features.allow_thread_sharing): Chainlit 2.12 would still let Alice mark her thread
    # shared and then serve it to anyone without login at /project/share/{id}.
    share = await call(url, "PUT", "/project/thread/share", alice, {"threadId": thread_id, "isShared": True})
    assert share.status_code == 404
    for headers in (None, bob, alice):
        shown = await call(url, "GET", f"/project/share/{thread_id}", headers)
        assert shown.status_code == 404 and "alice_secret" not in shown.text
    assert "is_shared" not in json.loads(stored(database)["threads"][0]["metadata"] or "{}")
