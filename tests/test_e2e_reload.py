"""End to end: a page reloaded in headless Chromium while its reply is generated continues it live."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage, words
from tests.conftest import AppFactory
from tests.harness import clean_env
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

pytestmark = pytest.mark.e2e


def test_reload_when_reply_is_generating_then_page_shows_it_growing_to_the_exact_full_text(
    browser: Browser, start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_HISTORY="1")
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    expected = words("".join(script_tokens(400)))
    chat = ChatPage.open(browser, url)
    try:
        chat.send("#script tokens=400 rate=80 stall_at=300 stall=6")  # about 5 s, held at 300 for 6 s
        chat.wait_text("w00080")
        chat.page.wait_for_url("**/thread/**", timeout=10_000)  # Chainlit shows the thread's own URL
        chat.page.reload()
        chat.wait_text("w00200", timeout=60)  # still growing after the reload
        shown_midway = len(chat.reply_words())
        chat.page.screenshot(path=str(tmp_path / "reloaded-midway.png"))
        text = chat.wait_text("w00399", timeout=60)
        chat.wait_idle()
        chat.page.screenshot(path=str(tmp_path / "reloaded.png"), full_page=True)
        assert words(text) == expected
        assert chat.reply_words() == expected  # one copy on the page: nothing lost or repeated
        assert shown_midway < len(expected)
    finally:
        chat.close()
