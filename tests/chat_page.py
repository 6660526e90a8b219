"""Driving a Chainlit chat page in headless Chromium: type, wait, read text, count frames."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from playwright.sync_api import Browser, Page, Route, WebSocket
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

REPLY = '[data-step-type="assistant_message"] .message-content'
# A reply's own text, without the stats/copy footer that smart-agent attaches to it.
REPLY_TEXT_JS = """(el) => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll('.smart-agent-footer').forEach((n) => n.remove());
    return copy.textContent;
}"""
# Every reply's words as a reader sees them: blocks apart (textContent would glue a list item or
# a paragraph to the next one), code blocks whole, without a code block's language label.
REPLY_WORDS_JS = """(els) => els.map((el) => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll('.smart-agent-footer').forEach((n) => n.remove());
    copy.querySelectorAll('pre').forEach((pre) => {
        const card = pre.parentElement && pre.parentElement.parentElement;
        const head = card && card.firstElementChild;
        if (head && !head.contains(pre)) head.remove();
    });
    copy.querySelectorAll('div, p, li, ul, ol, pre, blockquote, h1, h2, h3, h4, h5, h6')
        .forEach((n) => n.after(' '));
    return copy.textContent;
}).join(' ')"""
THINKING_STEP = '[id^="step-Thinking"], [id^="step-Thought for"]'
"""The trigger (or, without content, the line) of each of the model's thinking steps (web/thinking.py)."""
_EVENT = re.compile(r'^42(?:/[^,]*,)?\["([^"]+)"')


def _loopback_only(route: Route) -> None:
    # Chainlit links Google Fonts and a CDN stylesheet; with no internet they would hang.
    host = urlparse(route.request.url).hostname or ""
    if host in {"127.0.0.1", "localhost", "::1"}:
        route.continue_()
    else:
        route.abort()


@dataclass
class ChatPage:
    """One browser tab on the chat app, recording every Socket.IO event it receives and sends."""

    page: Page
    frames: list[tuple[float, str, str]] = field(default_factory=list)
    sent: list[tuple[float, str, str]] = field(default_factory=list)
    sockets: list[WebSocket] = field(default_factory=list)
    persistent: bool | None = None  # whether the app keeps history, once asked

    @classmethod
    def open(
        cls,
        browser: Browser,
        url: str,
        init_script: str | None = None,
        login: tuple[str, str] | None = None,
        on_login_form: Callable[[Page], None] | None = None,
    ) -> ChatPage:
        """Open a fresh browser context on the app and wait until the chat session is ready; with
        `login`, sign in through Chainlit's login form first (`on_login_form` sees the form)."""
        context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        chat = cls(page)
        page.route("**/*", _loopback_only)
        page.on("websocket", chat._watch)
        page.goto(url, timeout=30_000)
        if login is not None:
            page.wait_for_selector("#email", timeout=30_000)
            if on_login_form is not None:
                on_login_form(page)
            page.fill("#email", login[0])
            page.fill("#password", login[1])
            page.press("#password", "Enter")
        page.wait_for_selector("#chat-input", timeout=30_000)
        if not chat.sockets:  # socket.io starts with long polling, then upgrades
            page.wait_for_event("websocket", timeout=30_000)
        # Ready once the connection's task_end and on_chat_start's task_end have arrived; a
        # prompt typed before that is not submitted.
        chat.wait_event("task_end", 2, timeout=30)
        return chat

    def _watch(self, ws: WebSocket) -> None:
        self.sockets.append(ws)

        def recorder(into: list[tuple[float, str, str]]) -> Callable[[str | bytes], None]:
            def record(payload: str | bytes) -> None:
                if isinstance(payload, bytes):
                    return
                match = _EVENT.match(payload)
                if match:
                    into.append((time.monotonic(), match.group(1), payload))

            return record

        ws.on("framereceived", recorder(self.frames))
        ws.on("framesent", recorder(self.sent))

    def count(self, event: str) -> int:
        """How many frames of this Socket.IO event the page received."""
        return sum(1 for _, name, _ in self.frames if name == event)

    def count_sent(self, event: str) -> int:
        """How many frames of this Socket.IO event the page sent."""
        return sum(1 for _, name, _ in self.sent if name == event)

    def turns_done(self) -> int:
        """How many prompts the app has finished answering.

        Not every task_end closes a turn: Chainlit also ends a task after the connection
        handshake, on_chat_start and each settings change. A turn is Chainlit's `on_message`
        run step; the first task_end after that step opens is the end of the turn.
        """
        done, running = 0, False
        for _, name, raw in self.frames:
            if name == "new_message":
                step = json.loads(raw[raw.index("[") :])[1]
                running = running or (step.get("type"), step.get("name")) == ("run", "on_message")
            elif name == "task_end" and running:
                done, running = done + 1, False
        return done

    def payloads(self, event: str) -> list[Any]:
        """The data objects of every frame of this event."""
        return [json.loads(raw[raw.index("[") :])[1] for _, name, raw in self.frames if name == event]

    def send(self, text: str, timeout: float = 60.0) -> None:
        """Type a prompt into Chainlit's composer and submit it, as a user would: once the page
        takes a message, and again if the page lost it before it left.

        Chainlit's page ignores Enter while a task runs (a reply's text can be on the page before
        its task ends), and with history on it moves a new chat to `/thread/ID` after its first
        message, re-mounting the composer: a prompt typed while that happens is lost. So wait for
        the address and for the send button, and return only once the message frame went out.
        """
        started = self.payloads("first_interaction")
        if started and started[-1].get("thread_id") and self._persistent():
            thread = re.escape(str(started[-1]["thread_id"]))
            self.page.wait_for_url(re.compile(f"/thread/{thread}$"), timeout=30_000)
        before, deadline = self.count_sent("client_message"), time.monotonic() + timeout
        composer = self.page.locator("#chat-input")
        while True:
            if composer.input_value(timeout=30_000) != text:
                composer.fill(text)  # first time, or the re-mounted composer lost it
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the page did not send {text[:40]!r} within {timeout} s")
            try:  # enabled once no task runs and the text is in; the stop button stands in for it
                self.page.locator("#chat-submit:enabled").wait_for(timeout=min(remaining, 5.0) * 1000)
            except PlaywrightTimeoutError:
                continue
            composer.press("Enter")
            if self._wait_sent(before, min(max(remaining, 1.0), 10.0)):
                return

    def _wait_sent(self, before: int, timeout: float) -> bool:
        """Whether a `client_message` frame beyond the first `before` goes out within `timeout`."""
        deadline = time.monotonic() + timeout
        while self.count_sent("client_message") <= before:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.sockets:
                return False
            try:
                self.sockets[-1].wait_for_event("framesent", timeout=min(remaining, 0.5) * 1000)
            except PlaywrightError:  # a timeout (a subclass) or the socket closed: look again
                continue
        return True

    def _persistent(self) -> bool:
        """Whether the app keeps chat history (Chainlit's `dataPersistence`), asked once."""
        if self.persistent is None:
            settings = self.page.evaluate(
                "async () => (await fetch('/project/settings?language=en-US', {credentials: 'include'}))"
                ".json()"
            )
            self.persistent = bool(settings.get("dataPersistence"))
        return self.persistent

    def wait_event(self, event: str, count: int = 1, timeout: float = 60.0) -> None:
        """Wait until the page has received `count` frames of `event`."""
        self._wait_until(
            lambda: self.count(event) >= count,
            lambda: f"{self.count(event)} of {count} {event} frames after {timeout} s",
            timeout,
        )

    def _wait_until(self, done: Callable[[], bool], failure: Callable[[], str], timeout: float) -> None:
        """Wait, frame by frame, until `done()` holds."""
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.sockets:
                raise TimeoutError(failure())
            # Wait on the newest socket in slices: after a reconnect the old one never fires again.
            newest, slice_ms = self.sockets[-1], min(remaining, 1.0) * 1000
            try:
                if newest.is_closed():  # the server went away: wait for the page's next socket
                    self.page.wait_for_event("websocket", timeout=slice_ms)
                else:
                    newest.wait_for_event("framereceived", timeout=slice_ms)
            except PlaywrightTimeoutError:
                continue
            except PlaywrightError:  # it closed while we waited
                continue

    def wait_turns(self, turns: int = 1, timeout: float = 60.0) -> None:
        """Wait until the app has finished answering `turns` prompts in all."""
        self._wait_until(
            lambda: self.turns_done() >= turns,
            lambda: f"{self.turns_done()} of {turns} turns done after {timeout} s",
            timeout,
        )

    def wait_text(self, needle: str, timeout: float = 60.0, replies: int = 1) -> str:
        """Wait (checked once per animation frame in the page) until `replies` replies contain
        `needle`; return the text of the last of them."""
        handle = self.page.wait_for_function(
            f"""([selector, needle, wanted]) => {{
                const text = {REPLY_TEXT_JS};
                const found = [...document.querySelectorAll(selector)].map(text).filter(
                    (t) => t.includes(needle)
                );
                return found.length >= wanted ? found[found.length - 1] : false;
            }}""",
            arg=[REPLY, needle, replies],
            timeout=timeout * 1000,
        )
        return str(handle.json_value())

    def open_settings(self) -> Page:
        """Open the chat settings panel."""
        self.page.locator("#chat-settings-open-modal").click()
        self.page.locator("#confirm").wait_for(timeout=10_000)
        return self.page

    def change_settings(self, **values: str | bool) -> None:
        """Open the chat settings panel, set values (text for inputs, an option's label for a Select,
        bool for switches) on whichever tab holds them, confirm; return once the app has handled the
        change. Call it while no reply is running."""
        page = self.open_settings()
        for name, value in values.items():
            control = page.locator(f"#{name}")
            if control.count() == 0:  # on the panel's other tab (web/ui.py: Chat, Advanced)
                for tab in page.get_by_role("tab").all():
                    tab.click()
                    if control.count():
                        break
            if isinstance(value, bool):
                if (control.get_attribute("aria-checked") == "true") != value:
                    control.click()
            elif control.get_attribute("role") == "combobox":  # a Select: choose the option by its label
                control.click()
                page.get_by_role("option", name=value).click()
            else:
                control.fill(value)
        submitted, ended = self.count_sent("chat_settings_change"), self.count("task_end")
        page.locator("#confirm").click()
        # Chainlit runs on_settings_update as a task: its task_end says the app is done with it
        # (a prompt sent before that could be answered with the old settings or miscount turns).
        self.wait_event("task_end", ended + 1, timeout=30)
        assert self.count_sent("chat_settings_change") == submitted + 1, "the panel was not submitted once"

    def reply_text(self, index: int = 0) -> str:
        """The text content of reply `index` (0 is the first assistant message)."""
        return str(self.page.locator(REPLY).nth(index).evaluate(REPLY_TEXT_JS) or "")

    def replies(self) -> list[str]:
        """Text of every assistant message on the page."""
        return [str(t) for t in self.page.locator(REPLY).evaluate_all(f"els => els.map({REPLY_TEXT_JS})")]

    def reply_words(self) -> list[str]:
        """The words of every assistant message on the page, in order, as a reader sees them."""
        return words(str(self.page.locator(REPLY).evaluate_all(REPLY_WORDS_JS)))

    def thinking(self) -> list[tuple[str, str]]:
        """Every thinking step's name and text, in order; a folded step is opened to read it."""
        steps = []
        triggers = self.page.locator(THINKING_STEP)
        for index in range(triggers.count()):
            trigger = triggers.nth(index)
            if trigger.get_attribute("aria-expanded") == "false":
                # A click event, not a pointer click: while the page settles the step re-renders and
                # its neighbours can overlap it, which fails Playwright's actionability checks.
                trigger.dispatch_event("click")
                self.page.wait_for_function(
                    "([s, i]) => document.querySelectorAll(s)[i].getAttribute('aria-expanded') === 'true'",
                    arg=[THINKING_STEP, index],
                    timeout=10_000,
                )
            # The name as the styles show it, read from the computed styles rather than innerText:
            # innerText is the raw text (Chainlit's hidden "Used" included) for a step that is not
            # being rendered at that moment (a CI run read "Used Thought for 0.2 s" once).
            name, text = trigger.evaluate(
                """(b) => {
                    const shown = (n) => n.nodeType === Node.TEXT_NODE ? n.data
                        : n.nodeType === Node.ELEMENT_NODE && getComputedStyle(n).display === 'none'
                        ? '' : [...n.childNodes].map(shown).join('');
                    const region = document.getElementById(b.getAttribute('aria-controls') || '');
                    return [shown(b).replace(/\\s+/g, ' ').trim(), region ? region.textContent : ''];
                }"""
            )
            steps.append((str(name), str(text)))
        return steps

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until the page shows no running task (Chainlit's stop button is gone)."""
        self.page.locator("#stop-button").wait_for(state="detached", timeout=timeout * 1000)

    def close(self) -> None:
        self.page.context.close()


def words(text: str) -> list[str]:
    """Whitespace-separated words, for comparing rendered text with model text."""
    return text.split()
