"""Math in replies: the real app in headless Chromium renders LaTeX with KaTeX served by the app, keeps
prices and code as text, and leaves what is stored, sent through the API and copied as the model wrote."""

from __future__ import annotations

import base64
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, WebSocket

from tests.api_client import read_all, start_run, text_of
from tests.chat_page import REPLY, ChatPage
from tests.harness import clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer

pytestmark = pytest.mark.e2e

MODEL_TEXT = "\n".join(
    [
        r"Display: $$\int_0^1 x\,dx$$",
        "",
        r"Pythagoras: \(a^2+b^2\) is \(c^2\).",
        "",
        r"\[e^{i\pi}+1=0\]",
        "",
        "It costs $5 and $10.",
        "",
        "```python",
        r'price = "$5"  # \(not math\) and \[nor this\]',
        "```",
        "",
        r"Inline code: `\(x\)` and `$y$`.",
    ]
)
FORMULAS = [r"\int_0^1 x\,dx", "a^2+b^2", "c^2", r"e^{i\pi}+1=0"]
# The reply's last line as the page shows it: waited for whole (a CI-like run on long-polling read the
# reply once the stop button had gone, before its last characters were on the page).
LAST_SHOWN = r"Inline code: \(x\) and $y$."
# One character per token and one page event per token: every delimiter reaches the page split.
SCRIPT = f"#script text_b64={base64.b64encode(MODEL_TEXT.encode()).decode()} chars=1"
PROMPT = f"Is $3 and $4 too much? {SCRIPT}"
# What the page's content security policy refused: refused before any request is made (the
# browser still lists it among the page's resources, with nothing transferred).
# Socket.IO on long-polling only (Chainlit's page reads `window.transports`, which its own inline
# script leaves unset), recording the events each poll brings.
POLLING_ONLY = """
window.transports = ['polling'];
window.polledEvents = [];
const open = XMLHttpRequest.prototype.open;
XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    if (method === 'GET' && String(url).includes('/ws/socket.io/')) {
        this.addEventListener('load', () => {
            for (const packet of this.responseText.split('\\x1e')) {
                const event = /^42\\["([a-z_]+)"/.exec(packet);
                if (event) window.polledEvents.push(event[1]);
            }
        });
    }
    return open.call(this, method, url, ...rest);
};
"""
RECORD_REFUSED = """
window.refusedByCsp = [];
document.addEventListener('securitypolicyviolation', (e) => window.refusedByCsp.push(e.blockedURI));
"""


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("math")


@pytest.fixture(scope="module")
def app(scripted: ScriptedServer, logs: Path) -> Iterator[str]:
    """One app for the module (its data folder is `logs/data`), one event per token."""
    flags = ("--base-url", scripted.url, "--model", MODEL_ID, "--no-stream-batching")
    with running_app(*flags, env=clean_env(OPENAI_API_KEY="test-key"), log_dir=logs) as (url, _):
        yield url


@pytest.fixture(scope="module")
def chat(browser: Browser, app: str) -> Iterator[ChatPage]:
    """One page that asked for the reply (the reopening test, last, reloads it)."""
    page = ChatPage.open(browser, app, init_script=RECORD_REFUSED)
    try:
        page.send(PROMPT)
        page.wait_text(LAST_SHOWN, timeout=60)
        page.wait_idle()
        yield page
    finally:
        page.close()


def _math(page: Page) -> dict[str, Any]:
    """What the reply and the user's message show: KaTeX's formulas (their TeX), texts and code."""
    return dict(
        page.evaluate(
            """(reply) => {
                const el = document.querySelector(reply);
                const user = document.querySelector('[data-step-type="user_message"]');
                return {
                    tex: [...el.querySelectorAll('.katex annotation')].map((a) => a.textContent),
                    displays: el.querySelectorAll('.katex-display').length,
                    text: el.textContent,
                    code: [...el.querySelectorAll('pre')].map((p) => p.textContent),
                    inline: [...el.querySelectorAll('code:not(pre code)')].map((c) => c.textContent),
                    user: user.textContent,
                    userMath: user.querySelectorAll('.katex').length,
                };
            }""",
            REPLY,
        )
    )


def _copied(page: Page) -> str:
    """Click the reply's copy button (Chainlit's); once it shows it copied, what the clipboard holds."""
    button = page.locator(f"{REPLY} + div button").first
    page.evaluate("() => navigator.clipboard.writeText('')")
    button.click()
    button.locator("svg.lucide-check").wait_for(timeout=10_000)  # the write has finished
    return str(page.evaluate("() => navigator.clipboard.readText()"))


def test_reply_with_latex_when_streamed_then_katex_renders_and_prices_and_code_stay_text(
    chat: ChatPage,
) -> None:
    page = chat
    shown = _math(page.page)
    assert shown["tex"] == FORMULAS
    assert shown["displays"] == 1  # \[…\] alone on its line is display math
    assert "It costs $5 and $10." in shown["text"]
    assert any(r'price = "$5"  # \(not math\) and \[nor this\]' in code for code in shown["code"])
    assert shown["inline"] == [r"\(x\)", "$y$"]
    assert "Is $3 and $4 too much?" in shown["user"] and shown["userMath"] == 0
    # the page received the model's text: only what it shows was changed
    tokens = [t for t in page.payloads("stream_token") if not t.get("isSequence")]
    first = page.payloads("stream_start")[-1]["output"]
    assert first + "".join(t["token"] for t in tokens) == MODEL_TEXT


def test_katex_stylesheet_when_page_loads_then_served_by_the_app_and_no_cdn_asked(
    chat: ChatPage, app: str
) -> None:
    page = chat
    fonts = page.page.evaluate(
        "async () => { await document.fonts.ready; return [...document.fonts].filter((f) => "
        "f.family.startsWith('KaTeX') && f.status === 'loaded').map((f) => f.family); }"
    )
    assert "KaTeX_Main" in fonts and "KaTeX_Math" in fonts
    # KaTeX's files came from the app; Chainlit's CDN link was refused by the CSP, never fetched
    loaded = page.page.evaluate("() => performance.getEntriesByType('resource').map((e) => e.name)")
    katex = [url for url in loaded if "katex" in url.lower()]
    assert f"{app}/public/katex/katex.min.css" in katex
    assert any(url.startswith(f"{app}/public/katex/fonts/KaTeX_Main") for url in katex), katex
    refused = page.page.evaluate("() => window.refusedByCsp")
    assert all(url.startswith(f"{app}/public/katex/") or url in refused for url in katex), (katex, refused)
    assert "https://cdn.jsdelivr.net/npm/katex@0.16.22/dist/katex.min.css" in refused


def test_copy_button_when_clicked_then_copies_the_models_text(chat: ChatPage) -> None:
    page = chat
    assert _copied(page.page) == MODEL_TEXT


def test_stored_history_when_read_then_the_models_text_exactly(chat: ChatPage, logs: Path) -> None:
    deadline = time.monotonic() + 20
    stored: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        with sqlite3.connect(logs / "data" / "history.db") as db:
            stored = db.execute(
                "SELECT type, output FROM steps WHERE type IN ('user_message', 'assistant_message') "
                'ORDER BY "createdAt"'
            ).fetchall()
        if len(stored) >= 2:
            break
        time.sleep(0.2)  # polls the database file, which has no change signal
    assert stored == [("user_message", PROMPT), ("assistant_message", MODEL_TEXT)]


def test_api_run_when_model_writes_latex_then_its_text_is_the_models_exactly(app: str) -> None:
    run = start_run(app, SCRIPT)
    received = read_all(app, run["id"])
    assert text_of(received) == MODEL_TEXT


def test_reply_when_thread_reopened_then_math_renders_again(chat: ChatPage) -> None:
    page = chat
    page.page.reload()
    page.page.wait_for_selector(f"{REPLY} .katex", timeout=30_000)
    shown = _math(page.page)
    assert shown["tex"] == FORMULAS
    assert "It costs $5 and $10." in shown["text"]
    assert _copied(page.page) == MODEL_TEXT


def test_reply_when_socket_on_long_polling_then_math_renders_the_same(browser: Browser, app: str) -> None:
    context = browser.new_context()
    context.add_init_script(POLLING_ONLY)
    page = context.new_page()
    sockets: list[WebSocket] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith(app) else route.abort()
    )
    try:
        page.goto(app, timeout=30_000)
        # ready once the connection's and on_chat_start's tasks have ended (as ChatPage.open waits)
        page.wait_for_function("() => window.polledEvents.filter((e) => e === 'task_end').length >= 2")
        page.fill("#chat-input", PROMPT)
        page.press("#chat-input", "Enter")
        page.wait_for_function(
            """([reply, last]) => {
                const el = document.querySelector(reply);
                const done = !document.getElementById('stop-button');
                return done && el !== null && el.textContent.includes(last);
            }""",
            arg=[REPLY, LAST_SHOWN],
            timeout=60_000,
        )
        shown = _math(page)
        assert not sockets
        assert "stream_token" in page.evaluate("() => window.polledEvents")
        assert shown["tex"] == FORMULAS and shown["displays"] == 1
        assert "It costs $5 and $10." in shown["text"]
        assert shown["inline"] == [r"\(x\)", "$y$"]
    finally:
        context.close()
