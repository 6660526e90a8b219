"""Reliability in a real browser: the page's network drops mid-reply, or while the reply ends;
after socket.io reconnects the page must show the complete reply."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser

from tests.chat_page import ChatPage, words
from tests.scripted_server import ScriptedServer, script_tokens

pytestmark = pytest.mark.e2e
OFFLINE_SECONDS = 3


def _offline(chat: ChatPage, until: Callable[[], bool] | None = None) -> None:
    """Cut the page's network (CDP offline emulation) for OFFLINE_SECONDS, or until `until()`."""
    chat.page.context.set_offline(True)
    try:
        chat.page.wait_for_timeout(OFFLINE_SECONDS * 1000)  # the outage itself is the scenario
        deadline = time.monotonic() + 30
        while until is not None and not until():
            assert time.monotonic() < deadline, "the reply did not end while the page was offline"
            chat.page.wait_for_timeout(200)
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
        assert words(" ".join(chat.replies())) == expected
    finally:
        chat.close()
