"""The README's screenshot of a message with attachments: a text file and an image sent with a question,
and the model's answer. The real app in headless Chromium against the scripted server.

python -m benchmarks.attachment_screenshot docs/
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.sync_api import sync_playwright

from tests.chat_page import ChatPage
from tests.harness import CHROMIUM, CHROMIUM_ARGS, clean_env, running_app
from tests.scripted_server import MODEL_ID, Script, serve

NOTES = "# Release checklist\n- tag the version\n- build the wheel\n- update the changelog\n"
ANSWER = (
    "Your checklist has three steps: tag the version, build the wheel and update the changelog. "
    "The chart shows downloads rising every month, so the changelog is worth writing carefully."
)


def chart() -> bytes:
    """A small bar chart, as a user might attach."""
    image = Image.new("RGB", (480, 300), (250, 250, 252))
    draw = ImageDraw.Draw(image)
    for index, height in enumerate((60, 95, 120, 170, 210, 240)):
        left = 40 + index * 72
        draw.rectangle((left, 270 - height, left + 48, 270), fill=(70, 110, 220))
    draw.line((30, 270, 460, 270), fill=(60, 60, 60), width=2)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def main() -> None:
    """Attach notes.md and downloads.png, ask, and screenshot the answered message at 1100x760."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    with serve(Script(text=ANSWER, rate=60)) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        flags = ["--base-url", server.url, "--model", MODEL_ID]
        try:
            with (
                tempfile.TemporaryDirectory() as logs,
                running_app(*flags, env=clean_env(OPENAI_API_KEY="x"), log_dir=Path(logs)) as (url, _),
            ):
                chat = ChatPage.open(browser, url)
                try:
                    chat.page.set_viewport_size({"width": 1100, "height": 760})
                    files = [
                        {"name": "notes.md", "mimeType": "text/markdown", "buffer": NOTES.encode()},
                        {"name": "downloads.png", "mimeType": "image/png", "buffer": chart()},
                    ]
                    chat.page.set_input_files("#upload-button-input", files=files)
                    chat.page.wait_for_function("() => !document.querySelector('#chat-submit[disabled]')")
                    chat.page.wait_for_timeout(800)
                    chat.send("What do these say?")
                    chat.wait_turns(timeout=60)
                    chat.wait_idle()
                    chat.page.wait_for_timeout(500)
                    chat.page.screenshot(path=str(out / "attachments.png"))
                finally:
                    chat.close()
        finally:
            browser.close()
    print(out / "attachments.png")


if __name__ == "__main__":
    main()
