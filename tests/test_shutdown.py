"""Ctrl-C (SIGINT) or SIGTERM to the real app at many moments of a streaming reply: the reply so far
is stored in history with a "stopped" note, the process exits 0 without a traceback."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from smart_agent.web.shutdown import STOPPED_NOTE
from tests.chat_page import ChatPage, words
from tests.harness import Process, clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens, think_tokens

pytestmark = pytest.mark.e2e

# Seconds after the reply's first words show (None: before anything shows), and the signal.
MOMENTS = [(None, signal.SIGINT), (0.0, signal.SIGINT), (0.7, signal.SIGINT), (2.0, signal.SIGINT)]
MOMENTS += [(1.2, signal.SIGTERM)]


def _stored(data: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(data / "history.db") as db:
        found = db.execute('SELECT type, name, output FROM steps ORDER BY "createdAt"').fetchall()
    return [(kind, name, output or "") for kind, name, output in found]


@contextlib.contextmanager
def _chatting(browser: Browser, scripted: ScriptedServer, logs: Path) -> Iterator[tuple[ChatPage, Process]]:
    """The app on the scripted model, and a chat page open on it."""
    flags = ("--base-url", scripted.url, "--model", MODEL_ID)
    with running_app(*flags, env=clean_env(OPENAI_API_KEY="test-key"), log_dir=logs) as (url, process):
        chat = ChatPage.open(browser, url)
        try:
            yield chat, process
        finally:
            chat.close()


def _stop(process: Process, how: signal.Signals) -> int:
    process.send_signal(how)
    return process.wait(timeout=30)


@pytest.mark.parametrize(("after", "how"), MOMENTS, ids=[f"{how.name}@{after}" for after, how in MOMENTS])
def test_signal_mid_reply_when_sent_then_reply_so_far_stored_stopped_and_clean_exit(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path, after: float | None, how: signal.Signals
) -> None:
    expected = "".join(script_tokens(400))
    with _chatting(browser, scripted, tmp_path) as (chat, process):
        chat.send("#script tokens=400 rate=50 first_delay=0.5")
        if after is None:
            chat.wait_event("task_start", 2, timeout=30)  # the turn runs; no text yet
            seen: list[str] = []
        else:
            chat.wait_text("w00002", timeout=30)
            chat.page.wait_for_timeout(after * 1000)  # the moment of the sweep
            seen = chat.reply_words()
        code = _stop(process, how)
    log = next(tmp_path.glob("app-*.log")).read_text()
    assert code == 0, log[-2000:]
    assert "Traceback" not in log and "could not show" not in log, log[-3000:]
    steps = _stored(tmp_path / "data")
    replies = "".join(out for kind, name, out in steps if kind == "assistant_message" and name != "note")
    assert expected.startswith(replies)  # what was stored is the reply's start, nothing else
    assert len(words(replies)) >= len(seen)  # at least what the user saw
    notes = [out for kind, name, out in steps if name == "note"]
    assert notes == [f"_{STOPPED_NOTE}_"]


def test_ctrl_c_while_the_model_thinks_then_thinking_so_far_stored_with_the_stopped_note(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path
) -> None:
    thinking = "".join(think_tokens(400))
    with _chatting(browser, scripted, tmp_path) as (chat, process):
        chat.send("#script think=400 tokens=100 rate=50")
        chat.page.wait_for_function("() => document.body.innerText.includes('t00005')", timeout=30_000)
        code = _stop(process, signal.SIGINT)
    log = next(tmp_path.glob("app-*.log")).read_text()
    assert code == 0 and "Traceback" not in log, log[-3000:]
    steps = _stored(tmp_path / "data")
    (thought,) = [out for kind, name, out in steps if kind == "tool" and name.startswith("Thought for ")]
    assert len(words(thought)) >= 6 and thinking.startswith(thought)  # what was shown, in order
    assert not [out for kind, name, out in steps if kind == "assistant_message" and name != "note"]
    assert [out for kind, name, out in steps if name == "note"] == [f"_{STOPPED_NOTE}_"]


def test_two_ctrl_c_when_pressed_then_exits_at_once(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path
) -> None:
    with _chatting(browser, scripted, tmp_path) as (chat, process):
        chat.send("#script tokens=400 rate=50")
        chat.wait_text("w00002", timeout=30)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        assert time.monotonic() - started < 10
