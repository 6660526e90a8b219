"""End to end: smart-agent chainlit in a subprocess, headless Chromium typing into it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage, words
from tests.scripted_server import script_tokens

pytestmark = pytest.mark.e2e


def _expected_words(tokens: int) -> list[str]:
    return words("".join(script_tokens(tokens)))


def test_prompt_when_batched_then_complete_reply_in_few_frames(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    url = scripted_app()
    chat = ChatPage.open(browser, url)
    try:
        chat.send("#script tokens=400 rate=400")
        chat.wait_turns()
        text = chat.wait_text("w00399")
        assert words(text) == _expected_words(400)
        frames = chat.count("stream_token")
        # 400 tokens over ~1 s with at most 20 events/s: about 20 events, never one per token
        assert 1 <= frames <= 40, frames
    finally:
        chat.close()


def test_prompt_when_batching_off_then_one_frame_per_token_like_native(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    url = scripted_app("--no-stream-batching")
    chat = ChatPage.open(browser, url)
    try:
        chat.send("#script tokens=300 rate=1000")
        chat.wait_turns()
        text = chat.wait_text("w00299")
        assert words(text) == _expected_words(300)
        assert chat.count("stream_token") == 299  # the first token travels in stream_start
    finally:
        chat.close()


def test_backend_fails_mid_reply_when_streaming_then_partial_kept_and_error_shown(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    url = scripted_app()
    chat = ChatPage.open(browser, url)
    try:
        chat.send("#script tokens=100 rate=500 cut=60")
        chat.wait_turns()
        text = chat.wait_text("w00059")
        assert words(text) == _expected_words(60)
        chat.page.get_by_text("broke off").first.wait_for(timeout=10_000)
        # the app keeps working for the next message
        chat.send("#script tokens=70")
        chat.wait_turns(2)
        assert words(chat.wait_text("w00069")) == _expected_words(70)
    finally:
        chat.close()
