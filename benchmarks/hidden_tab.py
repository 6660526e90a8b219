"""Issue 28's fifth scenario: the tab is hidden mid-reply, then shown again.

Headless Chromium does not throttle a background tab as a desktop browser does, and here its
`Page.setWebLifecycleState` "frozen" neither stops frames (about 5 a second go on) nor the socket's
messages. So the page's main thread is stopped outright instead, with the DevTools Protocol's
debugger (`Debugger.pause`, then `Debugger.resume`): no script, timer, socket message or frame runs
while the reply goes on, the harshest form of a hidden tab (a frozen one, as Chrome's Memory Saver
does). The reply ends while the page is stopped; measured is the time from showing the page until
it shows the whole reply, whether that reply is exact, and whether the server was slowed meanwhile;
for native Chainlit, the default before issue 28 and the default (browser_bench's variants).

    python -m benchmarks.hidden_tab --tokens 1000 --rate 200 --hidden 10 --variants native,previous,default
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from benchmarks.browser_bench import PAGE_PROBE, VARIANTS, markers, style_variant, variant_env
from tests.chat_page import REPLY, ChatPage, words
from tests.harness import CHROMIUM, CHROMIUM_ARGS, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens, serve


@dataclass
class Hidden:
    """One hidden-tab reply's figures."""

    tokens: int
    rate: float
    hidden_s: float
    exact: bool
    shown_to_whole_ms: float | None  # from showing the page to the whole reply on it (None: never stopped)
    server_s: float | None  # from submit to the model server's last token
    nominal_s: float  # what the model server takes for the reply at its rate
    variant: str = "default"


def run_hidden(
    browser: Browser,
    server: ScriptedServer,
    log_dir: Path,
    tokens: int,
    rate: float,
    hidden: float,
    variant: str = "default",
) -> Hidden:
    """Stream a reply, stop the page once its first text shows, for `hidden` s, then let it go on."""
    expected = "".join(script_tokens(tokens, "markdown"))
    flags = ["--base-url", server.url, "--model", MODEL_ID, *VARIANTS[variant]]
    with running_app(*flags, env=variant_env(variant), log_dir=log_dir) as (url, _):
        chat = ChatPage.open(browser, url, init_script=PAGE_PROBE)
        try:
            style_variant(chat, variant)
            chat.page.evaluate("n => { window.__bench.needle = n; }", expected.split()[-1])
            cdp = chat.page.context.new_cdp_session(chat.page)
            ends_before = len(server.stream_ends)
            submitted = time.time()
            chat.send(f"#script tokens={tokens} rate={rate:g} kind=markdown")
            chat.page.wait_for_function("() => window.__bench.first !== null", timeout=30_000)
            paused: list[float] = []
            cdp.on("Debugger.paused", lambda _: paused.append(time.monotonic()))
            cdp.send("Debugger.enable")
            cdp.send("Debugger.pause")  # takes effect at the page's next script: the probe's next frame
            asked = time.monotonic()
            while not paused and time.monotonic() - asked < 2:  # Playwright delivers the event meanwhile
                chat.page.wait_for_timeout(20)
            if paused:
                time.sleep(max(0.0, paused[0] + hidden - time.monotonic()))  # the tab stays hidden this long
            cdp.send("Debugger.resume")
            shown = time.time() * 1000
            done = chat.page.wait_for_function(
                "() => window.__bench.done", timeout=(tokens / rate + 60) * 1000
            ).json_value()
            chat.wait_idle()
            text = " ".join(str(t) for t in chat.page.locator(REPLY).all_inner_texts())
            server_end = server.stream_ends[-1] if len(server.stream_ends) > ends_before else None
            return Hidden(
                tokens=tokens,
                rate=rate,
                hidden_s=hidden,
                exact=markers(text) == markers(expected) and words(text)[-1:] == ["END."],
                shown_to_whole_ms=max(0.0, float(done) - shown) if done and paused else None,
                server_s=None if server_end is None else server_end - submitted,
                nominal_s=tokens / rate,
                variant=variant,
            )
        finally:
            chat.close()


def main() -> None:
    """Run the scenario and print its figures as JSON lines, one per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--hidden", type=float, default=10.0, help="seconds the page stays frozen")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (native: one)")
    parser.add_argument("--variants", default="native,previous,default")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    results = []
    with serve() as server, sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        for variant in args.variants.split(","):
            for _ in range(1 if variant == "native" else args.repeat):
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                run_dir = Path(logs) / f"run-{len(results)}"
                run_dir.mkdir()
                try:
                    result = run_hidden(
                        browser, server, run_dir, args.tokens, args.rate, args.hidden, variant
                    )
                finally:
                    browser.close()
                results.append(result)
                print(json.dumps(asdict(result)), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hidden_tab.json").write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
