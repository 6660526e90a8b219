"""The sidebar lists a signed-in user's new chat as soon as its first message is sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage
from tests.conftest import AppFactory
from tests.harness import clean_env
from tests.login_helpers import add_account
from tests.scripted_server import MODEL_ID, ScriptedServer

pytestmark = pytest.mark.e2e


def test_first_message_of_a_signed_in_user_when_sent_then_its_thread_is_in_the_sidebar_at_once(
    browser: Browser, start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    add_account(tmp_path / "data", "alice", "pw-alice-1")
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=clean_env(OPENAI_API_KEY="test-key"))
    chat = ChatPage.open(browser, url, login=("alice", "pw-alice-1"))
    try:
        chat.send("#script tokens=3")
        chat.wait_text("w00002", timeout=30)
        # Its frame may be handed to this test after the page already shows the reply: wait for it.
        chat.wait_event("first_interaction", 1, timeout=30)
        thread = chat.payloads("first_interaction")[-1]["thread_id"]
        chat.page.wait_for_selector(f'a[href$="/thread/{thread}"]', timeout=10_000)
        assert chat.page.locator(f'a[href$="/thread/{thread}"]').inner_text() == "#script tokens=3"
        assert "No threads found" not in chat.page.inner_text("body")
    finally:
        chat.close()
