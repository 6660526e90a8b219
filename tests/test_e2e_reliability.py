"""Reliability in a real browser: the page's network drops mid-reply, or while the reply ends;
after socket.io reconnects the page must show the complete reply."""

from __future__ import annotations

import contextlib
import difflib
import re
import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Route
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.chat_page import ChatPage, words
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens

pytestmark = pytest.mark.e2e
OFFLINE_SECONDS = 3


def _poll(chat: ChatPage, done: Callable[[], bool], seconds: float, failure: str) -> None:
    """Check `done()` every 200 ms of page time for up to `seconds`: it watches the model server
    or an offline page, so there is no page frame to wait for (ChatPage._wait_until)."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, failure
        chat.page.wait_for_timeout(200)


def _offline(
    chat: ChatPage, seconds: float = OFFLINE_SECONDS, until: Callable[[], bool] | None = None
) -> None:
    """Cut the page's network (CDP offline emulation) for `seconds`, or until `until()`."""
    chat.page.context.set_offline(True)
    try:
        chat.page.wait_for_timeout(seconds * 1000)  # the outage itself is the scenario
        if until is not None:
            _poll(chat, until, 30, "the reply did not end while the page was offline")
    finally:
        chat.page.context.set_offline(False)


@pytest.mark.parametrize("flags", [(), ("--segment-chars", "4000")], ids=["single", "segmented"])
def test_network_drops_mid_reply_when_back_then_complete_reply(
    browser: Browser, scripted_app: Callable[..., str], flags: tuple[str, ...]
) -> None:
    chat = ChatPage.open(browser, scripted_app(*flags))
    try:
        chat.send("#script tokens=2000 rate=250")
        chat.wait_text("w00300")
        _offline(chat)
        expected = words("".join(script_tokens(2000)))
        chat.wait_text(expected[-1], timeout=60)
        chat.wait_idle(timeout=20)  # the live stats line goes only after the reply's last words
        assert words(" ".join(chat.replies())) == expected
    finally:
        chat.close()


def test_reply_ends_while_offline_when_back_then_tail_recovered(
    browser: Browser, scripted_app: Callable[..., str], scripted: ScriptedServer
) -> None:
    chat = ChatPage.open(browser, scripted_app())
    try:
        ends = len(scripted.stream_ends)
        chat.send("#script tokens=1500 rate=500")
        chat.wait_text("w00200")
        _offline(chat, until=lambda: len(scripted.stream_ends) > ends)
        expected = words("".join(script_tokens(1500)))
        chat.wait_text(expected[-1], timeout=30)
        chat.wait_idle(timeout=20)  # the live stats line goes only after the reply's last words
        assert words(" ".join(chat.replies())) == expected
    finally:
        chat.close()


def test_footer_source_and_thread_list_fail_to_load_once_when_retried_then_footer_and_sidebar_whole(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    # The moment a drop cannot be timed from outside: the first request for the footer's source
    # and for the sidebar's thread list fail as they do offline ("Failed to fetch").
    chat = ChatPage.open(browser, scripted_app("--show-stats"))
    failed: list[str] = []

    def fail_once(route: Route) -> None:
        key = f"{route.request.method} {route.request.url.split('/', 3)[-1]}"
        if key not in failed:
            failed.append(key)
            route.abort("internetdisconnected")
        else:
            route.fallback()

    chat.page.route("**/public/elements/**", fail_once)
    chat.page.route("**/project/threads", fail_once)
    try:
        chat.send("#script tokens=60 rate=200")
        chat.wait_turns()
        chat.page.locator(".smart-agent-footer").first.wait_for(timeout=20_000)
        chat.page.get_by_text("#script tokens=60 rate=200").last.wait_for(timeout=20_000)
        body = chat.page.inner_text("body")
        assert "public/elements/ReplyFooter.jsx" in " ".join(failed), failed  # the failures happened
        assert any(key.startswith("POST ") for key in failed), failed
        assert "Failed to fetch" not in body
        assert "60 tokens" in chat.page.locator(".smart-agent-footer").first.inner_text()
        sidebar = chat.page.locator("#history, [data-sidebar='content']").first.inner_text(timeout=5_000)
        assert "#script tokens=60 rate=200" in sidebar
    finally:
        chat.close()


# The sweep: one long segmented reply per case (2,000 tokens at 200 tok/s, about 10 s, cut into
# four segments at tokens 603, 1147 and 1691); the page goes offline when it shows a marker
# word (mNNNNN ends block NNNNN of the scripted markdown), for the given seconds.
SWEEP_TOKENS = 2000
SWEEP_PROMPT = f"#script tokens={SWEEP_TOKENS} rate=200 kind=markdown"
SWEEP_DROPS: dict[str, list[tuple[str, float]]] = {
    "first-segment": [("m00000", 1)],  # tokens ~58-450: inside the first segment
    "across-a-boundary": [("m00009", 1)],  # ~466-850: over the cut at 603
    "mid-reply": [("m00015", 3)],  # ~738-1500: over the cut at 1147
    "as-a-segment-ends": [("m00024", 1)],  # the cut at 1147 comes right after m00024
    "late": [("m00030", 3)],  # ~1418-2000
    "across-the-end": [("m00039", 3)],  # ~1826: the reply ends while the page is offline
    "twice": [("m00006", 1), ("m00027", 1)],
}


@pytest.fixture(scope="module")
def sweep_app(scripted: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One app with 3,000-character segments for the whole sweep."""
    env = clean_env(OPENAI_API_KEY="test-key")
    flags = ("--base-url", scripted.url, "--model", MODEL_ID, "--segment-chars", "3000")
    with running_app(*flags, env=env, log_dir=tmp_path_factory.mktemp("sweep")) as (url, _):
        yield url


def _sweep_reply(
    browser: Browser, url: str, scripted: ScriptedServer, drops: list[tuple[str, float]]
) -> list[str]:
    """Run the sweep's reply with these drops; the words the page ends with."""
    chat = ChatPage.open(browser, url)
    try:
        ends = len(scripted.stream_ends)
        chat.send(SWEEP_PROMPT)
        for marker, seconds in drops:
            chat.wait_text(marker, timeout=30)
            _offline(chat, seconds)
        _poll(chat, lambda: len(scripted.stream_ends) > ends, 60, "the model server never finished the reply")
        with contextlib.suppress(PlaywrightTimeoutError):  # a reply missing its end is measured below
            chat.wait_text("END.", timeout=20)
        chat.wait_idle(timeout=20)
        return chat.reply_words()
    finally:
        chat.close()


@pytest.fixture(scope="module")
def sweep_reference(browser: Browser, sweep_app: str, scripted: ScriptedServer) -> list[str]:
    """The words the page shows for the sweep's reply when the network never drops."""
    shown = _sweep_reply(browser, sweep_app, scripted, [])
    expected = "".join(script_tokens(SWEEP_TOKENS, "markdown"))
    assert re.findall(r"m\d{5}", " ".join(shown)) == re.findall(r"m\d{5}", expected)
    assert shown[-1] == "END."
    return shown


@pytest.mark.parametrize("drops", list(SWEEP_DROPS.values()), ids=list(SWEEP_DROPS))
def test_network_drops_anywhere_in_segmented_reply_when_back_then_exact_reply(
    browser: Browser,
    sweep_app: str,
    scripted: ScriptedServer,
    sweep_reference: list[str],
    drops: list[tuple[str, float]],
) -> None:
    shown = _sweep_reply(browser, sweep_app, scripted, drops)
    matcher = difflib.SequenceMatcher(a=sweep_reference, b=shown, autojunk=False)
    lost = sum(i2 - i1 for tag, i1, i2, _, _ in matcher.get_opcodes() if tag in {"delete", "replace"})
    extra = sum(j2 - j1 for tag, _, _, j1, j2 in matcher.get_opcodes() if tag in {"insert", "replace"})
    assert shown == sweep_reference, f"{lost} of {len(sweep_reference)} words lost, {extra} extra"
