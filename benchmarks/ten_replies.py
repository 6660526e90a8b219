"""Issue 28's sixth scenario: ten long replies in one chat, the page's memory after each.

After every reply: the JS heap in use after a forced collection (the DevTools Protocol's
`HeapProfiler.collectGarbage`), and the elements on the page, to see both grow with what the chat
shows rather than with the tokens streamed; for native Chainlit, the default before issue 28 and the
default (browser_bench's variants).

    python -m benchmarks.ten_replies --replies 10 --tokens 5000 --rate 2000 --variants native,previous,default
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright
from playwright.sync_api import TimeoutError as PageTimeout

from benchmarks.browser_bench import VARIANTS, _heap_mb, style_variant, variant_env
from tests.chat_page import ChatPage
from tests.harness import CHROMIUM, CHROMIUM_ARGS, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, serve


@dataclass
class AfterReply:
    """The page once reply `reply` (1 for the first) is complete."""

    reply: int
    heap_mb: float
    dom_nodes: int
    text_chars: int  # the text of every reply on the page
    variant: str = "default"
    complete: bool = True  # False: the reply had not ended on the page in time; the chat stops there


def run_replies(
    browser: Browser,
    server: ScriptedServer,
    log_dir: Path,
    replies: int,
    tokens: int,
    rate: float,
    variant: str = "default",
) -> list[AfterReply]:
    """Stream `replies` replies of `tokens` tokens into one chat and read the page after each."""
    flags = ["--base-url", server.url, "--model", MODEL_ID, *VARIANTS[variant]]
    with running_app(*flags, env=variant_env(variant), log_dir=log_dir) as (url, _):
        chat = ChatPage.open(browser, url)
        try:
            style_variant(chat, variant)
            cdp = chat.page.context.new_cdp_session(chat.page)
            found = []
            for index in range(1, replies + 1):
                chat.send(f"#script tokens={tokens} rate={rate:g} kind=markdown")
                try:
                    chat.wait_turns(index, timeout=tokens / rate + 60)
                    chat.wait_idle()
                    complete = True
                except (TimeoutError, PageTimeout):  # native Chainlit falls behind a fast reply for minutes
                    complete = False
                found.append(
                    AfterReply(
                        reply=index,
                        heap_mb=round(_heap_mb(cdp), 1),
                        dom_nodes=int(chat.page.evaluate("document.getElementsByTagName('*').length")),
                        text_chars=sum(len(text) for text in chat.replies()),
                        variant=variant,
                        complete=complete,
                    )
                )
                if not complete:
                    break
            return found
        finally:
            chat.close()


def main() -> None:
    """Run the scenario and print the page's figures after each reply as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--variants", default="native,previous,default")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    found: list[AfterReply] = []
    with serve() as server, sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        for variant in args.variants.split(","):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            run_dir = Path(logs) / variant
            run_dir.mkdir()
            try:
                rows = run_replies(browser, server, run_dir, args.replies, args.tokens, args.rate, variant)
            finally:
                browser.close()
            for row in rows:
                print(json.dumps(asdict(row)), flush=True)
            found += rows
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ten_replies.json").write_text(json.dumps([asdict(r) for r in found], indent=2))


if __name__ == "__main__":
    main()
