"""The browser benchmark's quick smoke: each page scenario runs and reads its figures (no timing
asserts; `make bench` prints the figures)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from benchmarks.browser_bench import MAIN_THREAD, run_one
from benchmarks.hidden_tab import run_hidden
from benchmarks.ten_replies import run_replies
from tests.scripted_server import ScriptedServer

# Heavy pages (a long chat of 200 messages, a stopped page): run alone, not beside other browser tests.
pytestmark = [pytest.mark.e2e, pytest.mark.timing]


@pytest.mark.parametrize("history", [False, True], ids=["fresh chat", "long chat"])
def test_scenario_when_run_quickly_then_the_reply_is_exact_and_every_figure_is_read(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path, history: bool
) -> None:
    # the fresh chat's model waits 300 ms before its first token, as the --preset first one does
    wait = 0.0 if history else 300.0
    result = run_one(browser, scripted, "default", 300, 600.0, tmp_path, history=history, first_delay_ms=wait)
    assert result.completed and result.exact, result
    assert result.history is history
    assert result.ttft_ms is not None and result.ttft_ms > wait, result.ttft_ms
    assert result.ttft_ms is not None and result.fps is not None and result.heap_mb is not None
    # on one clock: the page's first text comes after the model's first token, which comes after submit
    after_model = result.first_text_after_model_ms
    assert after_model is not None and 0 < after_model < result.ttft_ms, (after_model, result.ttft_ms)
    assert result.main_thread_ms_per_s is not None
    assert set(result.main_thread_ms_per_s) == {name.removesuffix("Duration").lower() for name in MAIN_THREAD}
    assert result.dom_nodes is not None
    # the long chat's 200 earlier messages are on the page: many more elements than a fresh chat's
    assert (result.dom_nodes > 5_000) is history, result.dom_nodes


def test_hidden_tab_when_stopped_mid_reply_then_shown_the_reply_is_whole_and_exact(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path
) -> None:
    result = run_hidden(browser, scripted, tmp_path, 400, 200.0, 3.0)
    assert result.exact, result
    assert result.shown_to_whole_ms is not None and result.server_s is not None


def test_replies_when_several_in_one_chat_then_the_page_is_read_after_each(
    browser: Browser, scripted: ScriptedServer, tmp_path: Path
) -> None:
    found = run_replies(browser, scripted, tmp_path, 2, 300, 600.0)
    assert [row.reply for row in found] == [1, 2]
    assert 0 < found[0].dom_nodes < found[1].dom_nodes and 0 < found[0].text_chars < found[1].text_chars
    assert all(row.heap_mb > 0 for row in found)
