"""Headless Chromium on the app with an account: Chainlit's login form, cleanly, then the chat."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from smart_agent.history.login import FAILURES_PER_NAME
from tests.chat_page import ChatPage, _loopback_only
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


def _sign_in(page: Page, name: str, password: str) -> int:
    """Submit the login form as a user does; the status of the app's answer."""
    page.fill("#email", name)
    page.fill("#password", password)
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as answer:
        page.press("#password", "Enter")
    return answer.value.status


def _form_error(page: Page, text: str) -> None:
    page.get_by_text(text, exact=True).wait_for(timeout=10_000)
    # Only the form says it, in words: no toast repeating Chainlit's raw key.
    assert page.locator("[data-sonner-toast]").count() == 0
    assert "credentialssignin" not in page.content() and "toomanysignins" not in page.content()


def test_login_form_when_wrong_passwords_then_user_name_label_human_refusals_and_the_limit_shown(
    browser: Browser, start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    add_account(tmp_path / "data", "alice", "alice's password")
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_HISTORY="1")
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    for locale, name, label, wrong in [
        ("de-DE", "bob", "Benutzername", "Falscher Benutzername oder falsches Passwort."),  # no such user
        ("en-US", "alice", "User name", "Wrong user name or password."),
    ]:
        context = browser.new_context(locale=locale)
        try:
            page = context.new_page()
            page.route("**/*", _loopback_only)
            page.goto(url)
            page.wait_for_selector("#email", timeout=30_000)
            assert page.locator("label[for='email']").inner_text() == label
            assert page.get_attribute("#email", "placeholder") in ("", None)
            tries = 1 if locale == "de-DE" else FAILURES_PER_NAME
            for _ in range(tries):
                assert _sign_in(page, name, "not the password") == 401
                _form_error(page, wrong)
        finally:
            context.close()
    # Over the limit even the right password is refused, and the page says why and for how long.
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.route("**/*", _loopback_only)
        page.goto(url)
        page.wait_for_selector("#email", timeout=30_000)
        assert _sign_in(page, "alice", "alice's password") == 429
        _form_error(page, "Too many failed sign-ins. Wait a minute, then try again.")
        page.screenshot(path=str(tmp_path / "limit.png"))
    finally:
        context.close()
