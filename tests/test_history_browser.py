"""Headless Chromium with history on: a segmented reply reopened from the sidebar reads as one
reply, footer included, and the reopened chat goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.chat_page import REPLY, ChatPage
from tests.conftest import AppFactory
from tests.harness import clean_env
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

pytestmark = pytest.mark.e2e

TOKENS = 400
PROMPT = f"#script tokens={TOKENS} rate=400 kind=markdown"


def test_sidebar_when_a_segmented_reply_is_reopened_then_one_reply_with_footer_and_chat_goes_on(
    browser: Browser, start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_SEGMENT_CHARS="300")
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    text = "".join(script_tokens(TOKENS, "markdown"))

    first = ChatPage.open(browser, url)
    try:
        first.send(PROMPT)
        first.wait_turns()
        first.wait_idle()
        live_segments = first.page.locator(REPLY).count()
        live_words = first.reply_words()
    finally:
        first.close()
    assert live_segments >= 3  # the reply was cut into segments while it streamed

    later = ChatPage.open(browser, url)  # the next day: a new tab, the same local user
    try:
        thread = later.page.locator('[id^="thread-"]').first
        thread.wait_for(timeout=30_000)
        thread.click()
        later.page.wait_for_url("**/thread/*", timeout=30_000)
        later.wait_text(live_words[-1], timeout=30)
        replies = later.page.locator(REPLY)
        assert replies.count() == 1
        assert later.reply_words() == live_words
        reopened = later.replies()[0]
        footer = later.page.locator(".smart-agent-footer")
        footer.wait_for(timeout=30_000)  # a custom element, rendered after the message's text
        assert footer.count() == 1, "the reopened reply has its footer"
        later.page.screenshot(path=str(tmp_path / "reopened.png"))
        later.send("#script text=the_chat_goes_on")
        later.wait_text("the_chat_goes_on", timeout=60)
        later.wait_idle()
        assert later.replies()[0] == reopened  # still on the page, above the new reply
        assert len(later.replies()) == 2
        later.page.screenshot(path=str(tmp_path / "continued.png"))
    finally:
        later.close()
    assert scripted.requests[-1]["messages"][:2] == [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": text},
    ]
