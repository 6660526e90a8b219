"""The README's screenshots of a reasoning model: its thinking streaming live in the Thinking step, and
the answer below the folded step. The real app in headless Chromium against the scripted server.

python -m benchmarks.thinking_screenshot docs/
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.chat_page import ChatPage
from tests.harness import CHROMIUM, CHROMIUM_ARGS, clean_env, running_app
from tests.scripted_server import MODEL_ID, Script, serve


def main() -> None:
    """Think 90 tokens, then answer 70 of markdown, at 30 tok/s; screenshot both phases."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    script = Script(think=90, think_kind="prose", tokens=70, kind="markdown", rate=30)
    with serve(script) as server, sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        flags = ["--base-url", server.url, "--model", MODEL_ID]
        try:
            with running_app(*flags, env=clean_env(OPENAI_API_KEY="x"), log_dir=Path(logs)) as (url, _):
                chat = ChatPage.open(browser, url)
                try:
                    chat.page.set_viewport_size({"width": 1100, "height": 760})
                    chat.send("How does batching keep a long reply smooth?")
                    chat.page.wait_for_function("() => /think about what/.test(document.body.innerText)")
                    chat.page.wait_for_timeout(1200)
                    chat.page.screenshot(path=str(out / "thinking-live.png"))
                    chat.wait_turns(timeout=60)
                    chat.wait_idle()
                    chat.page.screenshot(path=str(out / "thinking-done.png"))
                finally:
                    chat.close()
        finally:
            browser.close()
    print(out / "thinking-live.png", out / "thinking-done.png")


if __name__ == "__main__":
    main()
