"""The model picker in headless Chromium: it lists the server's models, switches the model of the next
request, and a reopened chat keeps the chosen model; a server without /v1/models gets no picker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage
from tests.conftest import AppFactory
from tests.harness import clean_env
from tests.scripted_server import MODEL_ID, MODELS, OTHER_MODEL, ScriptedServer, serve

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def unlisting() -> Iterator[ScriptedServer]:
    """A server without `/v1/models`."""
    with serve(models=None) as server:
        yield server


def _options(chat: ChatPage) -> list[str]:
    page = chat.open_settings()
    page.locator("#model").click()
    options = [option.inner_text() for option in page.get_by_role("option").all()]
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    return options


def test_picker_when_another_model_chosen_then_next_request_uses_it_and_reopened_chat_keeps_it(
    browser: Browser, start_app: AppFactory, scripted: ScriptedServer, tmp_path: Path
) -> None:
    # No --model: the app takes the server's first, and the picker offers the rest.
    url = start_app("--base-url", scripted.url, env=clean_env(OPENAI_API_KEY="test-key"))
    chat = ChatPage.open(browser, url)
    try:
        assert _options(chat) == list(MODELS)
        chat.send("#script tokens=2")
        chat.wait_text("w00001", timeout=30)
        assert scripted.requests[-1]["model"] == MODEL_ID
        chat.change_settings(model=OTHER_MODEL)
        chat.send("#script tokens=3")
        chat.wait_text("w00002", timeout=30)
        assert scripted.requests[-1]["model"] == OTHER_MODEL
        chat.wait_idle()
        deadline = time.monotonic() + 20
        while True:  # Chainlit stores the session with the thread when the page goes
            chat.page.reload()
            chat.page.wait_for_selector("#chat-input", timeout=30_000)
            chat.page.wait_for_function("() => document.body.innerText.includes('w00002')", timeout=30_000)
            if chat.open_settings().locator("#model").inner_text() == OTHER_MODEL:
                break
            assert time.monotonic() < deadline, "the reopened chat lost the chosen model"
            chat.page.keyboard.press("Escape")
    finally:
        chat.close()


def test_picker_when_server_lists_no_models_then_absent_and_chat_works_with_the_configured_model(
    browser: Browser, start_app: AppFactory, unlisting: ScriptedServer
) -> None:
    url = start_app("--base-url", unlisting.url, "--model", "any-model", env=clean_env(OPENAI_API_KEY="k"))
    chat = ChatPage.open(browser, url)
    try:
        panel = chat.open_settings()
        assert panel.locator("#model").count() == 0
        # What the paperclip takes is said before anything is refused.
        assert panel.locator("#attachments").input_value().startswith("Up to 5 files of 5 MB each: txt, md")
        chat.page.keyboard.press("Escape")
        chat.send("#script tokens=2")
        chat.wait_text("w00001", timeout=30)
        assert unlisting.requests[-1]["model"] == "any-model"
    finally:
        chat.close()
