"""Render-aware pacing end to end: a page in headless Chromium reports what rendering costs it, and
the app paces that page's reply to it; a page throttled 4x (a low-end laptop) gets fewer, larger
updates than a fast one, and both end with exactly the model's text."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage, words
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens, think_tokens

TOKENS, RATE = 1500, 150.0


pytestmark = pytest.mark.timing  # frame rates and pacing decisions: measured alone


def _markers(text: str) -> list[str]:
    return re.findall(r"m\d{5}", text)


def _reply(browser: Browser, url: str, throttle: float) -> tuple[float, str, ChatPage]:
    """Stream one reply to a fresh page throttled `throttle` times: its stream events per second
    over the reply's second half (the controller has settled), its text, and the page."""
    chat = ChatPage.open(browser, url)
    cdp = chat.page.context.new_cdp_session(chat.page)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
    submitted = time.monotonic()
    chat.send(f"#script tokens={TOKENS} rate={RATE:g} kind=markdown")
    chat.wait_turns(1, timeout=TOKENS / RATE + 90)
    chat.wait_idle(timeout=60)
    times = [t for t, name, _ in chat.frames if name == "stream_token" and t > submitted]
    middle = times[0] + (times[-1] - times[0]) / 2
    late = [t for t in times if t >= middle]
    return len(late) / (times[-1] - middle), " ".join(chat.replies()), chat


def _panel_says(chat: ChatPage) -> str:
    """What the settings panel's pacing line said last."""
    said = ""
    for _, name, raw in chat.frames:
        if name == "chat_settings":
            panel = json.loads(raw[raw.index("[") :])[1]
            inputs = [i for item in panel for i in item.get("inputs", [item])]  # tabs hold their inputs
            said = next(i["initial"] for i in inputs if i["id"] == "render_pacing")
    return said


def test_throttled_page_when_a_reply_streams_then_it_is_paced_down_and_the_text_is_exact(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path
) -> None:
    expected = "".join(script_tokens(TOKENS, "markdown"))
    env = clean_env(OPENAI_API_KEY="test-key")
    flags = ["--base-url", scripted.url, "--model", MODEL_ID, "--debug"]
    with running_app(*flags, env=env, log_dir=tmp_path) as (url, _):
        fast_rate, fast_text, fast = _reply(browser, url, 1)
        fast_panel = _panel_says(fast)
        fast.close()
        slow_rate, slow_text, slow = _reply(browser, url, 4)
        slow_reports, slow_panel = slow.count_sent("window_message"), _panel_says(slow)
        slow.close()
    log = next(tmp_path.glob("app-*.log")).read_text()
    print(f"events/s over the second half: 1x {fast_rate:.1f}, 4x {slow_rate:.1f}")

    for text in (fast_text, slow_text):  # nothing lost, duplicated or out of order
        assert _markers(text) == _markers(expected) and words(text)[-1:] == ["END."]
    assert slow_reports >= TOKENS / RATE * 2  # about four a second while the reply streams
    assert slow_rate < 0.8 * fast_rate, (slow_rate, fast_rate)
    assert slow_panel.startswith("Paced down to "), slow_panel
    assert fast_panel != slow_panel
    decisions = re.findall(r"reply pacing reports=(\d+) backoffs=(\d+)", log)
    assert len(decisions) == 2 and int(decisions[1][1]) >= 1, decisions  # one line per reply
    assert re.search(r"smart_agent\.pacing - pacing [\d.]+ -> [\d.]+ events/s \(frames lost", log)


# An old page: its script never posts (no hello, no reports), as before render-aware pacing.
SILENT = """
const post = window.postMessage.bind(window);
window.postMessage = (message, ...rest) => {
  if (message && typeof message === "object" && "smartAgentRender" in message) return;
  post(message, ...rest);
};
"""


def _fast_reply(chat: ChatPage) -> tuple[list[float], str]:
    """When the page received a fast reply's stream events (seconds after the first), and its text."""
    submitted = time.monotonic()
    chat.send("#script tokens=3000 rate=1000 kind=markdown")
    chat.wait_turns(1, timeout=60)
    chat.wait_idle(timeout=30)
    times = [t for t, name, _ in chat.frames if name in {"stream_start", "stream_token"} and t > submitted]
    return [t - times[0] for t in times], " ".join(chat.replies())


def test_new_page_when_its_first_reply_streams_then_it_starts_gently_unless_its_script_is_silent(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path
) -> None:
    expected = "".join(script_tokens(3000, "markdown"))
    env = clean_env(OPENAI_API_KEY="test-key")
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=tmp_path) as (url, _):
        new = ChatPage.open(browser, url)
        greeted, new_text = _fast_reply(new)
        new.close()
        old = ChatPage.open(browser, url, init_script=SILENT)
        capped, old_text = _fast_reply(old)
        old.close()
    print(f"first stream events (s): new page {greeted[:4]}, silent page {capped[:4]}")
    for text in (new_text, old_text):
        assert _markers(text) == _markers(expected) and words(text)[-1:] == ["END."]
    # The first words go at once either way; then the page that answered the server's ping gets
    # 4 events/s (the CPU floor) until its reports come in, the silent page the fixed 20 events/s.
    # (Times are taken as the browser receives frames, a few tens of ms apart from the server's.)
    assert greeted[1] >= 0.12 and sum(1 for t in greeted if t < 0.5) <= 4, greeted[:4]
    assert sum(1 for t in capped if t < 0.5) >= 7, capped[:8]


# A tab in the background as the page's script sees it: `document.hidden` (a desktop browser also
# throttles its timers, and may freeze it; headless Chromium does neither, see benchmarks/hidden_tab.py).
HIDEABLE = """
Object.defineProperty(Document.prototype, "hidden", {get: () => window.__hidden === true});
"""


CHANGES = ("stream_token", "update_message", "new_message")
"""The frames that change what a page shows (text, a step, the live stats line)."""


@pytest.mark.parametrize("hold", ["0.75", "0"])
def test_tab_hidden_mid_thinking_when_shown_again_then_what_it_missed_comes_at_once_and_exact(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path, hold: str
) -> None:
    """A tab hidden from mid-thinking into the answer stops reporting: the server then holds its
    updates, the live stats line's too (it reads the model on), and sends what the page missed when
    it reports again."""
    env = clean_env(OPENAI_API_KEY="test-key", SMART_AGENT_PAGE_HOLD=hold, SMART_AGENT_SHOW_STATS="1")
    with running_app("--base-url", scripted.url, "--model", MODEL_ID, env=env, log_dir=tmp_path) as (url, _):
        chat = ChatPage.open(browser, url, init_script=HIDEABLE)
        try:
            chat.send("#script think=600 tokens=1200 rate=200")
            chat.page.wait_for_function("() => document.body.innerText.includes('t00100')", timeout=30_000)
            chat.page.evaluate("() => { window.__hidden = true; }")
            hidden = time.monotonic()
            chat.page.wait_for_timeout(4000)  # the scenario itself: the tab stays hidden this long
            chat.page.evaluate("() => { window.__hidden = false; }")
            shown = time.monotonic()
            # by then the model is at least 1.5 s into its answer (thinking 3 s, hidden at 0.5 s, for 4 s)
            chat.page.wait_for_function("() => document.body.innerText.includes('w00250')", timeout=10_000)
            caught_up = time.monotonic() - shown
            chat.wait_turns(1, timeout=60)
            chat.wait_idle()
            updates = [t for t, name, _ in chat.frames if name in CHANGES and hidden + 1.5 < t < shown]
            (name, thinking), *more = chat.thinking()
            assert not more and name.startswith("Thought for ")
            assert words(thinking) == words("".join(think_tokens(600)))
            assert chat.reply_words() == words("".join(script_tokens(1200)))
        finally:
            chat.close()
    print(
        f"hold {hold}: {len(updates)} updates while hidden (after 1.5 s), caught up {caught_up:.2f} s after"
    )
    if hold == "0":
        assert len(updates) >= 2  # the way before: at the pace the page had earned, at least 1 a second
    else:  # only what goes at once: the thinking's last words and its step folded, the answer's first
        assert len(updates) <= 3
