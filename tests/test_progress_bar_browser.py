"""The slim progress bar of a long reply on the chat page, in headless Chromium: a bounded number of
updates, a percentage that grows, gone when the reply ends; none on a short reply; the text exact."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser

from smart_agent.web.progress_bar import CELLS, EMPTY, FILLED, UNKNOWN
from tests.chat_page import ChatPage, words
from tests.scripted_server import script_tokens

LONG = "#script tokens=300 rate=50"  # 6 s: long enough for a bar
SHORT = "#script tokens=20 rate=1000"
BAR_GLYPHS = f"{FILLED}{EMPTY}{UNKNOWN}"


def _reply_frames(chat: ChatPage, since: int) -> list[tuple[str, dict[str, object]]]:
    return [(name, json.loads(raw[raw.index("[") :])[1]) for _, name, raw in chat.frames[since:]]


def _bar_frames(frames: list[tuple[str, dict[str, object]]]) -> list[tuple[str, str]]:
    """The bar line's frames: its creation, updates and removal, with the text each showed."""
    ids = {data["id"] for name, data in frames if name == "new_message" and data.get("name") == "stats"}
    return [
        (name, str(data.get("output", "")))
        for name, data in frames
        if name in ("new_message", "update_message", "delete_message") and data.get("id") in ids
    ]


@pytest.mark.timing  # whether a reply counts as long depends on the rate measured
def test_progress_bar_when_history_expects_long_reply_then_bar_grows_and_goes(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    chat = ChatPage.open(browser, scripted_app())  # the stats line is off: the bar has a line of its own
    try:
        counts: list[int] = []
        bars: list[list[tuple[str, str]]] = []
        for turn, prompt in enumerate([SHORT, LONG, LONG, LONG], start=1):
            since = len(chat.frames)
            chat.send(prompt)
            if turn == 4:  # the history says long: the bar shows while the reply streams
                chat.page.get_by_text(re.compile(rf"{FILLED}+{EMPTY}* +\d+ %")).wait_for(timeout=10_000)
            chat.wait_turns(turn)
            tokens = 20 if prompt == SHORT else 300
            text = chat.wait_text(f"w{tokens - 1:05d}", replies=1 if turn == 1 else turn - 1)
            assert words(text) == words("".join(script_tokens(tokens)))
            frames = _reply_frames(chat, since)
            counts.append(len(frames))
            bars.append(_bar_frames(frames))
        # A short reply, and a long one before the history knows the model's rate: no bar. Then
        # (if the reply counts as long at the rate measured) an honest one: 20 and 300 tokens say little.
        assert bars[:2] == [[], []]
        assert not any("%" in output for _, output in bars[2]), bars[2]
        bar = bars[3]
        assert bar[0][0] == "new_message" and bar[-1][0] == "delete_message", bar
        assert len(bar) <= CELLS + 2, bar  # at most one update per cell, not one per token
        shown = [int(m.group(1)) for _, output in bar if (m := re.search(r"(\d+) %", output))]
        assert len(shown) >= 2 and shown == sorted(shown) and shown[-1] > shown[0], bar
        # Gone at the end: nothing of the bar is left on the page.
        assert not any(glyph in chat.page.inner_text("body") for glyph in BAR_GLYPHS)
        print(f"socket events: short {counts[0]}, long {counts[2]}, long with bar {counts[3]}; bar {bar}")
        for ending in ("model error", "stop"):  # the bar goes however the reply ends
            since = len(chat.frames)
            chat.send(f"{LONG} error_at=150" if ending == "model error" else LONG)
            chat.page.get_by_text(re.compile(rf"{FILLED}+{EMPTY}* +\d+ %")).wait_for(timeout=10_000)
            if ending == "stop":
                chat.page.locator("#stop-button").click()
            chat.wait_idle()
            ended = _bar_frames(_reply_frames(chat, since))
            assert ended[0][0] == "new_message" and ended[-1][0] == "delete_message", (ending, ended)
            assert not any(glyph in chat.page.inner_text("body") for glyph in BAR_GLYPHS), ending
    finally:
        chat.close()


@pytest.mark.timing  # whether a reply counts as long depends on the rate measured
def test_progress_bar_when_stats_shown_then_bar_rides_on_the_stats_line_and_short_reply_has_none(
    browser: Browser, scripted_app: Callable[..., str]
) -> None:
    chat = ChatPage.open(browser, scripted_app("--show-stats"))
    try:
        stats: list[list[str]] = []
        for turn, (prompt, tokens) in enumerate([(LONG, 300), (SHORT, 20)], start=1):
            since = len(chat.frames)
            chat.send(prompt)
            if turn == 1:  # no history yet: an honest bar, a dashed track without a percentage
                honest = re.compile(f"{UNKNOWN}+ +estimating the length")
                chat.page.get_by_text(honest).wait_for(timeout=10_000)
            chat.wait_turns(turn)
            text = chat.wait_text(f"w{tokens - 1:05d}", replies=turn)
            assert words(text) == words("".join(script_tokens(tokens)))
            chat.page.locator('#reply-stats[data-done="yes"]').nth(turn - 1).wait_for(timeout=10_000)
            stats.append(_bar_frames(_reply_frames(chat, since)))  # the stats line's frames
        long = [output for name, output in stats[0] if name == "update_message"]
        barred = [output for output in long if UNKNOWN in output]
        assert barred and not any("%" in output for output in barred), long
        assert len(long) <= 2 * 4 + 2, long  # the stats line's own updates: the bar adds none
        short = [output for _, output in stats[1]]
        assert short and not any(glyph in output for output in short for glyph in BAR_GLYPHS), short
        assert not any(glyph in chat.page.inner_text("body") for glyph in BAR_GLYPHS)
    finally:
        chat.close()
