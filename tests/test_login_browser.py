"""Headless Chromium on the app with an account: Chainlit's login form, cleanly, then the chat."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.chat_page import ChatPage
from tests.conftest import AppFactory
from tests.harness import clean_env
from tests.login_helpers import add_account
from tests.scripted_server import MODEL_ID, ScriptedServer

pytestmark = pytest.mark.e2e

# Counts the page's calls of POST /auth/header (Chainlit's login page makes one when offered header auth).
COUNT_HEADER_AUTH = """
window.headerAuthCalls = 0;
const originalFetch = window.fetch;
window.fetch = (resource, init) => {
    if (String(resource instanceof Request ? resource.url : resource).endsWith('/auth/header')) {
        window.headerAuthCalls += 1;
    }
    return originalFetch(resource, init);
};
"""


def test_page_when_an_account_exists_then_login_form_without_error_and_signed_in_chat_answers(
    browser: Browser, start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    add_account(tmp_path / "data", "alice", "alice's password")
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_HISTORY="1")
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    tried: list[int] = []

    def look_at_form(page: Page) -> None:
        page.wait_for_load_state("networkidle")
        tried.append(page.evaluate("window.headerAuthCalls"))
        page.screenshot(path=str(tmp_path / "login.png"))
        # The page never tries the local user, so no "Unable to sign in" box and no 401 toast.
        assert page.locator("text=Unable to sign in").count() == 0
        assert page.locator("text=credentialssignin").count() == 0

    chat = ChatPage.open(
        browser, url, COUNT_HEADER_AUTH, login=("alice", "alice's password"), on_login_form=look_at_form
    )
    try:
        chat.send("#script text=signed_in_reply")
        chat.wait_turns()
        assert "signed_in_reply" in chat.wait_text("signed_in_reply")
        chat.page.screenshot(path=str(tmp_path / "chat.png"))
        user = chat.page.evaluate("fetch('/user', {credentials: 'include'}).then((r) => r.json())")
        assert user["identifier"] == "alice"
    finally:
        chat.close()
    assert tried == [0]
