"""The README's screenshot of a long segmented reply: the real app in headless Chromium.

python -m benchmarks.readme_screenshot docs/segmented-reply.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.chat_page import ChatPage
from tests.harness import CHROMIUM, CHROMIUM_ARGS, clean_env, running_app
from tests.scripted_server import MODEL_ID, serve


def main() -> None:
    """Stream a 1,500-token reply in 2,000-character segments and screenshot its end."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/segmented-reply.png")
    with serve() as server, sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        flags = ["--base-url", server.url, "--model", MODEL_ID, "--segment-chars", "2000"]
        try:
            with running_app(*flags, env=clean_env(OPENAI_API_KEY="x"), log_dir=Path(logs)) as (url, _):
                chat = ChatPage.open(browser, url)
                try:
                    chat.page.set_viewport_size({"width": 1100, "height": 900})
                    chat.send("#script tokens=1500 rate=1500 kind=markdown")
                    chat.wait_turns()
                    chat.page.locator("#copy-whole-reply").wait_for(timeout=10_000)
                    chat.page.screenshot(path=str(out))
                finally:
                    chat.close()
        finally:
            browser.close()
    print(out)


if __name__ == "__main__":
    main()
