"""The docs' screenshots of the slim progress bar over a long reply, desktop, light and dark: the real
app in headless Chromium against the scripted server, after two replies taught it the model's length.

python -m benchmarks.progress_bar_screenshot docs/screens
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.chat_page import ChatPage
from tests.harness import CHROMIUM, CHROMIUM_ARGS, clean_env, running_app
from tests.scripted_server import MODEL_ID, Script, serve

PROMPT = "How does batching keep a long reply smooth?"
HALFWAY = re.compile(r"━+─+ +[3-6]\d %")


def main() -> None:
    """Two replies of 240 markdown tokens at 40 tok/s teach the length; the third is shot mid-way."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screens")
    script = Script(tokens=240, kind="markdown", rate=40)
    with serve(script) as server, sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        flags = ["--base-url", server.url, "--model", MODEL_ID]
        try:
            with running_app(*flags, env=clean_env(OPENAI_API_KEY="x"), log_dir=Path(logs)) as (url, _):
                learner = ChatPage.open(browser, url)
                for turn in (1, 2):  # the app learns the model's reply length and rate
                    learner.send(PROMPT)
                    learner.wait_turns(turn, timeout=60)
                learner.close()
                for theme in ("light", "dark"):
                    script_ = f"localStorage.setItem('vite-ui-theme', '{theme}');"
                    chat = ChatPage.open(browser, url, init_script=script_)
                    try:
                        chat.page.set_viewport_size({"width": 1366, "height": 768})
                        chat.send(PROMPT)
                        chat.page.get_by_text(HALFWAY).wait_for(timeout=30_000)
                        chat.page.screenshot(path=str(out / f"desktop-{theme}-progress-bar.png"))
                        chat.wait_turns(timeout=60)
                    finally:
                        chat.close()
        finally:
            browser.close()
    print(out / "desktop-light-progress-bar.png", out / "desktop-dark-progress-bar.png")


if __name__ == "__main__":
    main()
