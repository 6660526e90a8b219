"""End to end: smart-agent chainlit in a subprocess, headless Chromium typing into it."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser, Locator, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.chat_page import REPLY, ChatPage, words
from tests.harness import clean_env, llama_servers, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

pytestmark = pytest.mark.e2e


def _expected_words(tokens: int) -> list[str]:
    return words("".join(script_tokens(tokens)))


@pytest.mark.timing
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
        assert 0 < frames <= 40, frames
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


def test_stop_button_when_clicked_mid_reply_then_stream_ends_and_prefix_stays(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    url = scripted_app()
    chat = ChatPage.open(browser, url)
    try:
        chat.send("#script tokens=3000 rate=200")
        chat.wait_text("w00040")
        chat.page.locator("#stop-button").click()
        chat.wait_turns()
        chat.page.get_by_text("Task manually stopped.").first.wait_for(timeout=10_000)
        finals = [
            p
            for p in chat.payloads("new_message")
            if p.get("type") == "assistant_message" and p.get("name") != "stats"
        ]
        reply_id = finals[-1]["id"]
        final_text = finals[-1]["output"]
        # the final message carries exactly what the page shows, a prefix of the model's text
        full = "".join(script_tokens(3000))
        assert full.startswith(final_text) and len(final_text) < len(full)
        shown = chat.wait_text(final_text.split()[-1])
        assert words(shown) == words(final_text)
        # nothing streamed for this reply after its final message
        frames_after = chat.count("stream_token")
        chat.page.wait_for_timeout(1000)  # the window in which a live stream would keep emitting
        assert chat.count("stream_token") == frames_after
        assert all(p["id"] == reply_id for p in chat.payloads("stream_token"))
    finally:
        chat.close()


def test_embedded_model_when_no_backend_configured_then_answers_and_stops_with_the_app(
    browser: Browser, tmp_path: Path
) -> None:
    # no OPENAI_API_KEY / OPENAI_BASE_URL: SmolLM2 via llama.cpp
    with running_app(log_dir=tmp_path, timeout=180) as (url, app):
        llama = llama_servers()
        assert len(llama) == 1
        chat = ChatPage.open(browser, url)
        try:
            chat.send("Say hello in one short sentence.")
            chat.wait_turns(timeout=120)
            replies = [text.strip() for text in chat.replies()]
            assert replies and replies[0], replies
        finally:
            chat.close()
        app.terminate()  # SIGTERM, as Ctrl+C or a service manager would stop it
        app.wait(timeout=30)
    _, alive = psutil.wait_procs(llama, timeout=15)
    assert alive == []


def _open(button: Locator) -> None:
    """Open a folded step. Under the full suite's load a click once went unanswered (the step stayed
    folded for 10 s): click again while it says it is closed, a few times at most."""
    for _ in range(4):
        if button.get_attribute("aria-expanded") == "true":
            return
        button.click()
        with contextlib.suppress(PlaywrightTimeoutError):
            expect(button).to_have_attribute("aria-expanded", "true", timeout=5_000)
    expect(button).to_have_attribute("aria-expanded", "true", timeout=1)


def test_calculator_prompt_when_answered_then_tool_step_shows_arguments_and_result(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    url = scripted_app()
    chat = ChatPage.open(browser, url)
    try:
        chat.send("#script tool=calculator expr=2+3*4")
        chat.wait_turns()
        assert chat.wait_text("Result: 14").strip() == "Result: 14"
        step = chat.page.locator('[data-step-type="tool"]')
        _open(step.locator("button[aria-expanded]", has_text="Used calculator"))
        step.get_by_text("2+3*4").first.wait_for(timeout=10_000)
        step.get_by_text("14", exact=True).first.wait_for(timeout=10_000)
        # the tool step comes before the reply, and no tool-call JSON reaches the reply text
        order = chat.page.evaluate(
            "() => Array.from(document.querySelectorAll('[data-step-type]'))"
            ".map(e => e.getAttribute('data-step-type'))"
        )
        assert order == ["user_message", "tool", "assistant_message"]
        streamed = "".join(p["token"] for p in chat.payloads("stream_token"))
        started = "".join(p["output"] for p in chat.payloads("stream_start"))
        assert "expression" not in streamed + started + "".join(chat.replies())
    finally:
        chat.close()


def test_mcp_config_when_one_server_broken_then_message_and_other_server_tools_work(
    browser: Browser, start_app: Callable[..., str], scripted: ScriptedServer, tmp_path: Path
) -> None:
    config = tmp_path / "mcp.json"
    echo = str(Path(__file__).with_name("mcp_echo_server.py"))
    config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "echo": {"command": sys.executable, "args": [echo]},
                    "broken": {"command": sys.executable, "args": ["-c", "raise SystemExit(3)"]},
                }
            }
        )
    )
    env = clean_env(OPENAI_API_KEY="k", SMART_AGENT_MCP_CONFIG=str(config))
    url = start_app("--base-url", scripted.url, "--model", MODEL_ID, env=env)
    chat = ChatPage.open(browser, url)
    try:
        chat.page.get_by_text("MCP server 'broken' failed to start").first.wait_for(timeout=30_000)
        chat.send('#script tool=shout args_raw={"text":"loud"}')
        chat.wait_turns()
        assert chat.wait_text("Result: LOUD!").strip() == "Result: LOUD!"
    finally:
        chat.close()


@pytest.mark.timing
def test_long_reply_when_segmented_then_segments_join_to_model_text_and_copy_gives_all(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    url = scripted_app("--segment-chars", "2000")
    chat = ChatPage.open(browser, url)
    try:
        chat.send("#script tokens=3000 rate=3000 kind=markdown")
        chat.wait_turns()
        expected = "".join(script_tokens(3000, "markdown"))
        finals = [
            p["output"]
            for p in chat.payloads("new_message")
            if p.get("type") == "assistant_message" and p.get("name") != "stats"
        ]
        assert len(finals) > 3
        assert "".join(finals) == expected
        # what the page shows, segment by segment, is the model's text
        chat.wait_text(expected.split()[-1])
        shown = chat.replies()
        assert len(shown) == len(finals)
        # every block's marker word is on the page once, in order: nothing lost or duplicated
        assert re.findall(r"m\d{5}", " ".join(shown)) == re.findall(r"m\d{5}", expected)
        # one avatar for the whole reply: later segments hide theirs
        visible_avatars = chat.page.evaluate(
            """() => Array.from(document.querySelectorAll(
                    '[data-step-type="assistant_message"] .ai-message > span.inline-block'))
                .filter(e => getComputedStyle(e).visibility !== 'hidden').length"""
        )
        assert visible_avatars == 1
        # segments follow each other with at most a paragraph break between them
        gaps = chat.page.locator(REPLY).evaluate_all(
            """els => {
                const rects = els.map(e => e.getBoundingClientRect());
                return rects.slice(1).map((r, i) => r.top - rects[i].bottom);
            }"""
        )
        assert gaps and all(0 <= gap <= 24 for gap in gaps), gaps
        # the view followed the reply: its last line is in view
        assert chat.page.locator(REPLY).last.evaluate(
            """last => {
                let box = last.parentElement;
                while (getComputedStyle(box).overflowY !== 'auto') box = box.parentElement;
                // the reply's markdown, not the footer that arrives after the last scroll
                const end = last.firstElementChild.getBoundingClientRect().bottom;
                const view = box.getBoundingClientRect();
                return end > view.top && end <= view.bottom;
            }"""
        )
        # the only copy button is the whole reply's: Chainlit's own would copy the last segment
        native_copies = chat.page.locator(f"{REPLY} + div button").evaluate_all(
            "els => els.filter(e => e.checkVisibility()).length"
        )
        assert native_copies == 0
        chat.page.locator("#copy-whole-reply").click()
        assert chat.page.evaluate("() => navigator.clipboard.readText()") == expected
    finally:
        chat.close()


def test_streaming_cursor_when_a_reply_streams_then_it_blinks_in_steps(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    # A smooth pulse costs a style recalculation every frame of the reply (smart-agent.css).
    url = scripted_app()
    chat = ChatPage.open(browser, url)
    try:
        chat.send("#script tokens=400 rate=100")
        # Chainlit re-creates the cursor on each update: read it in the page, in one go.
        animation = chat.page.wait_for_function(
            """() => {
                const el = document.querySelector('.loading-cursor');
                if (!el) return false;
                const style = getComputedStyle(el);
                return [style.animationName, style.animationTimingFunction];
            }""",
            timeout=30_000,
        ).json_value()
        assert animation == ["loading-cursor-pulse", "steps(2, jump-none)"]
        chat.wait_text("w00399")
    finally:
        chat.close()
