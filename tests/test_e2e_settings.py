"""Per-session settings in a real browser, the live stats line, and the stop button's latency."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage, words
from tests.scripted_server import script_tokens

pytestmark = pytest.mark.e2e


def test_settings_changed_in_one_session_when_both_chat_then_other_session_unaffected(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    url = scripted_app()
    first, second = ChatPage.open(browser, url), ChatPage.open(browser, url)
    try:
        first.change_settings(stream_batching=False)
        first.page.get_by_text("Settings saved").first.wait_for(timeout=10_000)
        for chat in (first, second):
            chat.send("#script tokens=200 rate=1000")
        for chat in (first, second):
            chat.wait_turns()
            assert words(chat.wait_text("w00199")) == words("".join(script_tokens(200)))
        assert first.count("stream_token") == 199  # batching off: one event per token
        assert second.count("stream_token") < 40  # defaults kept
        # an out-of-range value is refused, visibly, and the previous settings stay in force
        first.change_settings(batch_size="0")
        first.page.get_by_text("Batch size: '0' is not allowed").first.wait_for(timeout=10_000)
        # the re-sent panel shows the values in force, not the refused one nor the defaults
        panel = first.open_settings()
        # what a user tunes first: batching off reads as the Instant smoothness; the internals under Advanced
        assert panel.locator("#smoothness").inner_text().startswith("Instant")
        panel.get_by_role("tab", name="Advanced").click()
        assert panel.locator("#stream_batching").get_attribute("aria-checked") == "false"
        assert panel.locator("#batch_size").input_value() == "20"
        panel.get_by_role("button", name="Cancel").click()
        panel.locator("#confirm").wait_for(state="detached", timeout=10_000)
        before = first.count("stream_token")
        first.send("#script tokens=100 rate=1000")
        first.wait_turns(2)
        assert words(first.wait_text("w00099", replies=2)) == words("".join(script_tokens(100)))
        assert first.count("stream_token") - before == 99
    finally:
        first.close()
        second.close()


def test_smoothness_when_set_to_instant_then_one_event_per_token_and_back_to_smooth_then_batched(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    chat = ChatPage.open(browser, scripted_app())
    try:
        chat.change_settings(smoothness="Instant: every word as it arrives (heavier on the browser)")
        chat.send("#script tokens=200 rate=1000")
        chat.wait_turns()
        assert words(chat.wait_text("w00199")) == words("".join(script_tokens(200)))
        assert chat.count("stream_token") == 199
        chat.change_settings(smoothness="Smooth (recommended)")
        before = chat.count("stream_token")
        chat.send("#script tokens=200 rate=1000")
        chat.wait_turns(2)
        assert words(chat.wait_text("w00199", replies=2)) == words("".join(script_tokens(200)))
        assert chat.count("stream_token") - before < 40
    finally:
        chat.close()


def test_stats_line_when_reply_streams_then_live_then_summary(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    chat = ChatPage.open(browser, scripted_app("--show-stats"))
    try:
        chat.send("#script tokens=1000 rate=500")
        chat.page.get_by_text("Streaming ·").first.wait_for(timeout=10_000)
        chat.wait_turns()
        summary = chat.page.locator('#reply-stats[data-done="yes"]')
        summary.wait_for(timeout=10_000)
        text = summary.text_content() or ""
        # A reader's figures ("1,000 tokens · 498 tok/s · 2.1 s", then the server's own counts when it
        # reports them); the developer's (first token, UI events batching saved) are --debug's log.
        assert re.match(r"1,000 tokens · [\d,]+ tok/s · \d+\.\d s( · |$)", text), text
        assert "first token" not in text and "UI events" not in text
        # live updates are bounded: a few per second, not one per token (1,000 tokens in 2 s)
        live = [p for p in chat.payloads("update_message") if p.get("name") == "stats"]
        assert 0 < len(live) <= 2 * 2 + 2
        # and the live line is gone once the summary is shown
        assert "Streaming ·" not in " ".join(chat.replies())
    finally:
        chat.close()


# Timestamps taken inside the page: when each stream_token frame arrives and when the stop
# button is clicked, so the latency excludes Playwright's own round trips.
STOP_PROBE = """
(() => {
  window.__tokenTimes = [];
  window.__stopClick = null;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        if (typeof event.data === 'string' && event.data.startsWith('42["stream_token"')) {
          window.__tokenTimes.push(performance.now());
        }
      });
    }
  };
  document.addEventListener('click', (event) => {
    if (event.target.closest && event.target.closest('#stop-button')) window.__stopClick = performance.now();
  }, true);
})();
"""


@pytest.mark.timing
def test_stop_button_when_clicked_then_tokens_end_within_100_ms_and_marker_shown(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    chat = ChatPage.open(browser, scripted_app("--show-stats"), init_script=STOP_PROBE)
    try:
        chat.send("#script tokens=5000 rate=500")
        chat.wait_text("w00300")
        chat.page.locator("#stop-button").click()
        chat.page.get_by_text("Task manually stopped.").first.wait_for(timeout=10_000)
        chat.page.locator('#reply-stats[data-done="yes"]').get_by_text("Stopped").wait_for(timeout=10_000)
        chat.page.wait_for_timeout(500)  # any straggling token event would arrive in this window
        clicked, last_token = chat.page.evaluate(
            "() => [window.__stopClick, Math.max(...window.__tokenTimes)]"
        )
        latency_ms = last_token - clicked
        print(f"stop latency: last token event at {latency_ms:+.0f} ms from the click (page clock)")
        assert latency_ms <= 100
        full = "".join(script_tokens(5000))
        shown = chat.replies()[0]
        assert words(full)[: len(words(shown))] == words(shown)
    finally:
        chat.close()
