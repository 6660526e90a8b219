"""End to end on the embedded SmolLM2 (4,096 tokens of context) in headless Chromium: a paste far
beyond the context gets a clear message, and the next question a normal answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage
from tests.harness import clean_env, running_app

pytestmark = pytest.mark.e2e

PASTE = "The quick brown fox jumps over the lazy dog while the farmer counts his sheep. " * 507


@pytest.mark.parametrize(
    ("max_input_chars", "refusal"),
    [("", "It was not sent to the model"), ("100000", "too long for the model's context")],
)
def test_embedded_model_when_paste_beyond_context_then_clear_message_and_question_answered(
    browser: Browser, tmp_path: Path, max_input_chars: str, refusal: str
) -> None:
    assert len(PASTE) > 40_000
    # no OPENAI_API_KEY / OPENAI_BASE_URL: SmolLM2 via llama.cpp
    env = clean_env(SMART_AGENT_MAX_INPUT_CHARS=max_input_chars)
    with running_app(env=env, log_dir=tmp_path, timeout=180) as (url, _):
        chat = ChatPage.open(browser, url)
        try:
            chat.send(PASTE)
            chat.wait_turns(1, timeout=120)
            after_paste = chat.replies()
            assert any(refusal in text for text in after_paste), after_paste
            assert any("4,096" in text for text in after_paste), after_paste  # names the context
            chat.send("What is 2+2? Answer in one short sentence.")
            chat.wait_turns(2, timeout=240)
            answer = [text.strip() for text in chat.replies()[len(after_paste) :]]
            assert answer and answer[0], answer
            assert not any(word in " ".join(answer) for word in ("Error", "too long", "failed", "refused"))
        finally:
            chat.close()
