"""The app as a stranger meets it, in screenshots: a desktop (1366x768) and a phone (390x844) viewport,
light and dark, of first start, login, first reply, a tool call, a failed tool, a stop, a model error,
settings (and the model picker), Team and a reopened chat. The real app in headless Chromium
against the scripted server.

    python -m tools.screenshots docs/screens
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from tests.chat_page import ChatPage
from tests.harness import CHROMIUM, CHROMIUM_ARGS, clean_env, running_app
from tests.login_helpers import add_account
from tests.scripted_server import MODEL_ID, Script, ScriptedServer, serve

VIEWPORTS = {"desktop": (1366, 768), "phone": (390, 844)}
THEMES = ("light", "dark")
ANSWER = (
    "Batching groups the tokens of a reply into a few page updates a second, so the browser renders "
    "less often and the text still appears smoothly.\n\n- The **first token** is shown at once.\n"
    "- Later tokens wait at most 100 ms.\n- A long reply continues in a new message.\n\nAsk me more!"
)


def _theme_script(theme: str) -> str:
    # Chainlit 2.12's page keeps the chosen theme in localStorage under this key.
    return f"localStorage.setItem('vite-ui-theme', '{theme}');"


def _open(browser: Browser, url: str, size: tuple[int, int], theme: str, **kwargs: object) -> ChatPage:
    chat = ChatPage.open(browser, url, init_script=_theme_script(theme), **kwargs)  # type: ignore[arg-type]
    chat.page.set_viewport_size({"width": size[0], "height": size[1]})
    chat.page.wait_for_timeout(300)
    return chat


def _type(chat: ChatPage, prompt: str) -> None:
    # Typed as a user does; ChatPage.send's wait for Chainlit's move to /thread/ID never ends on a
    # phone-sized page (the move happens, the URL check does not see it), so wait a moment instead.
    chat.page.wait_for_timeout(1000)
    chat.page.locator("#chat-input").fill(prompt)
    chat.page.locator("#chat-input").press("Enter")


def _ask(chat: ChatPage, server: ScriptedServer, prompt: str, script: Script, turns: int) -> None:
    server.default = script
    _type(chat, prompt)
    chat.wait_turns(turns, timeout=60)
    chat.wait_idle()
    chat.page.wait_for_timeout(500)


def _shots(browser: Browser, url: str, server: ScriptedServer, out: Path, name: str) -> None:
    """Every chat state for one viewport and theme."""
    size, theme = VIEWPORTS[name.split("-")[0]], name.split("-")[1]
    chat = _open(browser, url, size, theme)

    def shot(state: str) -> None:
        chat.page.screenshot(path=str(out / f"{name}-{state}.png"))

    try:
        shot("first-start")
        _ask(chat, server, "How does smart-agent keep a reply smooth?", Script(text=ANSWER, rate=120), 1)
        shot("first-reply")
        _ask(chat, server, "What is 6 * 7? Use the calculator.", Script(tool="calculator", expr="6*7"), 2)
        shot("tool-call")
        _ask(chat, server, "And 1 / 0?", Script(tool="calculator", expr="1/0"), 3)
        shot("failed-tool")
        server.default = Script(tokens=3000, rate=60, kind="markdown")
        _type(chat, "Write me a long essay about streaming.")
        chat.page.wait_for_timeout(2500)
        chat.page.click("#stop-button")
        chat.wait_idle()
        chat.page.wait_for_timeout(500)
        shot("stop")
        _ask(chat, server, "Are you there?", Script(status=500), 5)
        shot("model-error")
        page: Page = chat.open_settings()
        page.wait_for_timeout(300)
        shot("settings")
        page.locator("#model").click()  # the model picker, open
        page.wait_for_timeout(300)
        shot("model-picker")
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")
        chat.page.reload()
        chat.page.wait_for_selector("#chat-input", timeout=30_000)
        chat.page.wait_for_timeout(1500)
        shot("history-resume")
    finally:
        chat.close()


def main() -> None:
    """All the screenshots into the folder named on the command line."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screens")
    out.mkdir(parents=True, exist_ok=True)
    with serve() as server, sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        flags = ["--base-url", server.url, "--model", MODEL_ID]
        env = clean_env(OPENAI_API_KEY="x")
        try:
            with running_app(*flags, env=env, log_dir=Path(logs)) as (url, _):
                for name in [f"{v}-{t}" for v in VIEWPORTS for t in THEMES]:
                    _shots(browser, url, server, out, name)
            team_dir = Path(logs) / "team"
            team_dir.mkdir()
            with running_app(*flags, "--profile", "team", env=env, log_dir=team_dir) as (url, _):
                for name in [f"{v}-{t}" for v in VIEWPORTS for t in THEMES]:
                    size, theme = VIEWPORTS[name.split("-")[0]], name.split("-")[1]
                    chat = _open(browser, url, size, theme)
                    try:
                        _ask(
                            chat, server, "Plan a weekend trip to the sea.", Script(text=ANSWER, rate=150), 1
                        )
                        chat.page.locator('[id="step-Team"]').first.click()
                        chat.page.wait_for_timeout(500)
                        chat.page.screenshot(path=str(out / f"{name}-team.png"))
                    finally:
                        chat.close()
            login_dir = Path(logs) / "login"
            add_account(login_dir / "data", "alice", "a-long-password")
            with running_app(*flags, env=env, log_dir=login_dir) as (url, _):
                for name in [f"{v}-{t}" for v in VIEWPORTS for t in THEMES]:
                    size, theme = VIEWPORTS[name.split("-")[0]], name.split("-")[1]
                    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
                    context.add_init_script(_theme_script(theme))
                    page = context.new_page()
                    page.goto(url)
                    page.wait_for_selector("#email", timeout=30_000)
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(out / f"{name}-login.png"))
                    context.close()
        finally:
            browser.close()
    print(out)


if __name__ == "__main__":
    main()
