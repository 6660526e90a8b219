"""Refused input is never stored, and a first turn that fails leaves a thread that says what failed:
the real app with history on, in headless Chromium, read back from its SQLite history."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage
from tests.conftest import AppFactory
from tests.harness import clean_env
from tests.scripted_server import MODEL_ID, ScriptedServer

pytestmark = pytest.mark.e2e
TOO_LONG = "refused " * 20  # 160 characters, over --max-input-chars 50


def _history(data: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """The stored threads' names and every stored message (type, text), oldest first."""
    with sqlite3.connect(data / "history.db") as db:
        names = [name for (name,) in db.execute("SELECT name FROM threads")]
        steps = db.execute(
            "SELECT type, output FROM steps WHERE type IN ('user_message', 'assistant_message') "
            'ORDER BY "createdAt"'
        ).fetchall()
    return names, [(kind, output or "") for kind, output in steps]


def _step_types(data: Path) -> list[str]:
    """The type of every stored step, oldest first (a refused turn's own step among them would show)."""
    with sqlite3.connect(data / "history.db") as db:
        return [kind for (kind,) in db.execute('SELECT type FROM steps ORDER BY "createdAt"')]


def _settled(
    data: Path, done: Callable[[tuple[list[str], list[tuple[str, str]]]], bool]
) -> tuple[list[str], list[tuple[str, str]]]:
    """The history once `done` holds for it (Chainlit stores messages in tasks of its own)."""
    deadline = time.monotonic() + 20
    while True:
        found = _history(data)
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)  # polls the database file, which has no change signal


@pytest.fixture
def app(start_app: AppFactory, scripted: ScriptedServer) -> str:
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_MAX_INPUT_CHARS="50")
    return start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)


def test_refused_first_message_when_sent_then_nothing_stored_and_next_message_names_the_thread(
    browser: Browser, app: str, tmp_path: Path
) -> None:
    chat = ChatPage.open(browser, app)
    try:
        chat.send(TOO_LONG)
        chat.page.wait_for_function(
            "() => document.body.innerText.includes('It was not sent')", timeout=30_000
        )
        chat.wait_idle()
        assert _settled(tmp_path / "data", lambda h: not h[0]) == ([], [])
        chat.send("#script tokens=3")
        chat.wait_text("w00002", timeout=30)
        names, messages = _settled(tmp_path / "data", lambda h: len(h[1]) >= 2)
        assert names == ["#script tokens=3"]
        assert messages == [
            ("user_message", "#script tokens=3"),
            ("assistant_message", " w00000 w00001 w00002"),
        ]
        chat.wait_idle()
        # on_chat_start's step went with the refused message's thread: the accepted turn only
        assert _step_types(tmp_path / "data") == ["user_message", "run", "assistant_message"]
    finally:
        chat.close()


def test_refused_later_message_when_sent_then_thread_keeps_only_the_accepted_turn(
    browser: Browser, app: str, tmp_path: Path
) -> None:
    chat = ChatPage.open(browser, app)
    try:
        chat.send("#script tokens=2")
        chat.wait_text("w00001", timeout=30)
        chat.send(TOO_LONG)
        chat.page.wait_for_function(
            "() => document.body.innerText.includes('It was not sent')", timeout=30_000
        )
        chat.wait_idle()
        names, messages = _settled(tmp_path / "data", lambda h: len(h[1]) == 2)
        assert names == ["#script tokens=2"]
        assert messages == [("user_message", "#script tokens=2"), ("assistant_message", " w00000 w00001")]
        # on_chat_start's step, then the accepted turn; nothing of the refused turn
        assert _step_types(tmp_path / "data") == ["run", "user_message", "run", "assistant_message"]
    finally:
        chat.close()


def test_first_turn_when_model_fails_then_thread_says_what_failed(
    browser: Browser, app: str, tmp_path: Path
) -> None:
    chat = ChatPage.open(browser, app)
    try:
        chat.send("#script status=500")
        chat.page.wait_for_function("() => document.body.innerText.includes('HTTP 500')", timeout=30_000)
        chat.wait_idle()
        names, messages = _settled(tmp_path / "data", lambda h: len(h[1]) >= 2)
        assert names == ["#script status=500"]
        assert messages[0] == ("user_message", "#script status=500")
        assert "HTTP 500" in messages[1][1]
    finally:
        chat.close()
