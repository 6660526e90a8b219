"""The real app with history on: what one chat leaves in the SQLite file in the data folder."""

import asyncio
import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smart_agent.history.urls import HISTORY_FILE
from tests.conftest import AppFactory
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens
from tests.sio_client import STOPPED_MARKER, ChatClient, sign_in


def stored(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of Chainlit's tables in the history file; steps in the order the page shows them."""
    # Rows land in any order (see `settled`): only createdAt orders the steps.
    order = {"steps": ' ORDER BY "createdAt", id'}
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return {
            table: [dict(row) for row in db.execute(f'SELECT * FROM "{table}"{order.get(table, "")}')]
            for table in ("users", "threads", "steps", "elements", "feedbacks")
        }


def reply_text(rows: dict[str, list[dict[str, Any]]]) -> str:
    """The stored reply: its segments' text, joined (without Chainlit's stop marker)."""
    return "".join(
        s["output"] or ""
        for s in rows["steps"]
        if s["type"] == "assistant_message"
        and s["name"] not in ("stats", "note")
        and s["output"] != STOPPED_MARKER
    )


async def settled(
    path: Path, done: Callable[[dict[str, list[dict[str, Any]]]], bool], seconds: float = 30
) -> dict[str, list[dict[str, Any]]]:
    """The stored rows once `done` holds for them.

    Chainlit 2.12 persists in fire-and-forget tasks (message.py `_create`, `update`, `remove`), so
    nothing the client receives says the writes have landed: the file is read until they have.
    """
    async with asyncio.timeout(seconds):
        # Another process writes: no event crosses, so the file is polled.
        while not done(rows := stored(path)):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return rows


def turn_stored(reply: str) -> Callable[[dict[str, list[dict[str, Any]]]], bool]:
    """Whether a whole turn has landed: the user's message, the reply's final text and its footer.
    Each is a write of its own, in any order (a CI-like run read the reply before the user's message)."""

    def done(rows: dict[str, list[dict[str, Any]]]) -> bool:
        return asked(rows) and bool(rows["elements"]) and reply_text(rows) == reply

    return done


def asked(rows: dict[str, list[dict[str, Any]]]) -> bool:
    """Whether the user's message is stored."""
    return any(step["type"] == "user_message" for step in rows["steps"])


async def disconnected(database: Path) -> dict[str, list[dict[str, Any]]]:
    """The stored rows once the client's disconnect has landed: Chainlit then copies the user session
    into the thread's metadata (client_type among it)."""
    return await settled(
        database,
        lambda r: bool(r["threads"]) and "client_type" in json.loads(r["threads"][0]["metadata"]),
    )


def put_feedback(url: str, headers: dict[str, str], body: dict[str, Any]) -> int:
    """PUT /feedback as the page does; the HTTP status."""
    request = urllib.request.Request(
        f"{url}/feedback",
        method="PUT",
        data=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


async def test_feedback_when_signed_in_owner_rates_a_reply_then_it_is_stored_for_that_step(
    start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_HISTORY="1")
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    headers = await sign_in(url)
    client = ChatClient(url)
    await client.connect(headers=dict(headers))  # the Socket.IO client takes the cookie out of the dict
    try:
        await client.send("#script text=rate_me")
        await client.wait_task_ends(3, 60)
        rows = await settled(tmp_path / "data" / HISTORY_FILE, lambda r: reply_text(r) == client.reply())
        reply = next(s for s in rows["steps"] if s["type"] == "assistant_message")
        feedback = {"forId": reply["id"], "threadId": reply["threadId"], "value": 1, "comment": "good"}
        # Chainlit checks nobody's ownership on /feedback: the data layer needs the acting user.
        status = put_feedback(url, headers, {"feedback": feedback, "sessionId": client.session_id})
        anonymous = put_feedback(url, {"Origin": url}, {"feedback": feedback, "sessionId": client.session_id})
    finally:
        await client.close()
    assert (status, anonymous) == (200, 401)
    stored_feedback = stored(tmp_path / "data" / HISTORY_FILE)["feedbacks"]
    assert [(f["forId"], f["value"], f["comment"]) for f in stored_feedback] == [(reply["id"], 1, "good")]


async def test_chat_with_history_when_a_tool_is_called_then_thread_steps_and_footer_are_stored(
    start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(
        OPENAI_API_KEY="test-key",
        SMART_AGENT_HISTORY="1",
        SMART_AGENT_SEGMENT_CHARS="40",
        SMART_AGENT_SHOW_STATS="1",  # the live stats line shows, and must not be stored
    )
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    client = ChatClient(url)
    await client.connect()
    try:
        await client.send('#script tool=calculator expr=2+3*4 args_raw={"expression":"2+3*4"}')
        await client.wait_task_ends(3, 60)
        reply = client.reply()
        rows = await settled(tmp_path / "data" / HISTORY_FILE, turn_stored(reply))
    finally:
        await client.close()

    assert [user["identifier"] for user in rows["users"]] == ["local"]
    assert len(rows["threads"]) == 1 and rows["threads"][0]["userIdentifier"] == "local"
    by_type: dict[str, list[dict[str, Any]]] = {}
    for step in rows["steps"]:
        by_type.setdefault(step["type"], []).append(step)
    assert by_type["user_message"][0]["output"].startswith("#script tool=calculator")
    tools = by_type["tool"]
    assert len(tools) == 1 and tools[0]["output"] == "14"
    assert json.loads(tools[0]["metadata"]) == {"arguments": '{"expression":"2+3*4"}'}
    replies = [s for s in by_type["assistant_message"] if s["name"] not in ("stats", "note")]
    assert reply and reply_text(rows) == reply
    assert not [s for s in rows["steps"] if s["name"] == "stats"], "the live stats line is not history"
    footer = rows["elements"]
    assert [e["name"] for e in footer] == ["ReplyFooter"] and footer[0]["forId"] == replies[-1]["id"]


async def test_resume_when_app_restarted_then_model_sees_the_stored_conversation_and_chat_goes_on(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_HISTORY="1", SMART_AGENT_SYSTEM_PROMPT="be brief")
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    database = tmp_path / "data" / HISTORY_FILE
    first = '#script tool=calculator args_raw={"expression":"2+3*4"}'
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        client = ChatClient(url)
        await client.connect()
        try:
            await client.send(first)
            await client.wait_task_ends(3, 60)
            reply = client.reply()
        finally:
            await client.close()
        rows = await disconnected(database)
    thread = rows["threads"][0]
    assert "history" not in json.loads(thread["metadata"])
    assert len(thread["metadata"]) < 2048, thread["metadata"]  # copied on every disconnect: kept small
    tool = next(s for s in rows["steps"] if s["type"] == "tool")

    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        client = ChatClient(url, thread_id=thread["id"])
        await client.connect(task_ends=1)
        try:
            resumed = await client.wait_resumed()
            assert resumed["id"] == thread["id"]
            seen = len(scripted.requests)
            await client.send("#script text=and_again")
            await client.wait_text(lambda text: "and_again" in text, 60)
        finally:
            await client.close()

    assert len(scripted.requests) == seen + 1
    call = {"id": f"call_{tool['id']}", "type": "function"}
    assert scripted.requests[-1]["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": first},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {**call, "function": {"name": "calculator", "arguments": '{"expression":"2+3*4"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": call["id"], "content": "14"},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "#script text=and_again"},
    ]


async def test_resume_when_reply_was_segmented_then_page_gets_it_as_one_message_with_its_footer(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_HISTORY="1", SMART_AGENT_SEGMENT_CHARS="300")
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    database = tmp_path / "data" / HISTORY_FILE
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        client = ChatClient(url)
        await client.connect()
        try:
            await client.send("#script tokens=300 kind=markdown")
            await client.wait_task_ends(3, 60)
            reply = client.reply()
            rows = await settled(database, turn_stored(reply))
        finally:
            await client.close()
    segments = [s for s in rows["steps"] if s["type"] == "assistant_message"]
    assert len(segments) > 1, "the reply must have been stored in segments for this test to mean anything"

    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        client = ChatClient(url, thread_id=rows["threads"][0]["id"])
        await client.connect(task_ends=1)
        try:
            resumed = await client.wait_resumed()
        finally:
            await client.close()
    shown = [s for s in resumed["steps"] if s["type"] == "assistant_message"]
    assert [s["output"] for s in shown] == [reply]
    assert [e["forId"] for e in resumed["elements"]] == [shown[0]["id"]]


async def test_database_url_when_given_on_the_command_line_then_history_goes_there(
    start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    # Found: checking the URL imported Chainlit before the launcher set its app root, so the app
    # refused to start whenever a database URL was set.
    database = tmp_path / "elsewhere" / "chats.db"
    database.parent.mkdir()
    env = clean_env(OPENAI_API_KEY="test-key")
    url = start_app(
        "--base-url", scripted.url, "--model", MODEL_ID, "--database-url", f"sqlite:///{database}", env=env
    )
    client = ChatClient(url)
    await client.connect()
    try:
        await client.send("#script text=kept_elsewhere")
        await client.wait_task_ends(3, 60)
        rows = await settled(database, lambda r: reply_text(r) == client.reply())
    finally:
        await client.close()
    assert reply_text(rows) == "kept_elsewhere"
    assert not (tmp_path / "data" / HISTORY_FILE).exists()
    assert database.stat().st_mode & 0o777 == 0o600


async def test_resume_when_a_reply_was_stopped_then_model_sees_the_partial_reply_without_the_stop_marker(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key")
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    database = tmp_path / "data" / HISTORY_FILE
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        client = ChatClient(url)
        await client.connect()
        try:
            await client.send("#script tokens=400 rate=40")
            await client.wait_text(lambda text: len(text.split()) >= 10, 60)
            await client.stop()
            await client.wait_task_ends(3, 60)
            partial = client.reply()
        finally:
            await client.close()
        rows = await disconnected(database)
        await settled(database, lambda r: reply_text(r) == partial)
        thread_id = rows["threads"][0]["id"]

        client = ChatClient(url, thread_id=thread_id)
        await client.connect(task_ends=1)
        try:
            await client.wait_resumed()
            await client.send("#script text=after_stop")
            await client.wait_text(lambda text: "after_stop" in text, 60)
        finally:
            await client.close()
    assert 0 < len(partial) < len("".join(script_tokens(400, "words")))
    assert scripted.requests[-1]["messages"] == [
        {"role": "user", "content": "#script tokens=400 rate=40"},
        {"role": "assistant", "content": partial},
        {"role": "user", "content": "#script text=after_stop"},
    ]


async def test_reconnect_mid_reply_when_the_turn_is_resent_then_the_thread_stores_one_copy(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    # The reconnect re-send (web/resync.py) emits the turn again: it must not store it again.
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_SEGMENT_CHARS="300")
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    database = tmp_path / "data" / HISTORY_FILE
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        first = ChatClient(url)
        await first.connect()
        await first.send("#script tokens=300 rate=100")
        await first.wait_text(lambda text: len(text.split()) >= 40, 60)
        await first.close()  # a drop in the middle of the reply; the turn goes on
        again = ChatClient(url, session_id=first.session_id)
        await again.connect(headers=dict(first.login), task_ends=1)
        try:
            await again.wait_task_ends(2, 60)  # the reconnect's own, then the turn's
            reply = again.reply()
        finally:
            await again.close()
        rows = await settled(database, lambda r: reply_text(r) == reply and asked(r))
    assert reply == "".join(script_tokens(300, "words"))
    segments = [s for s in rows["steps"] if s["type"] == "assistant_message" and s["name"] != "stats"]
    assert len(segments) == len({s["id"] for s in segments}) == len(again.order)
    assert [s["type"] for s in rows["steps"]].count("user_message") == 1
