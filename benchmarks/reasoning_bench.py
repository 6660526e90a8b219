"""Reasoning benchmark: a model that thinks 2,000 tokens, then answers 2,000, at 200 tok/s, in headless
Chromium against the scripted model server (issue 23).

Per run: the page's frames per second while the reply streams, the page updates per second (stream
events and step/message updates), the time from the server sending the first thought to the page
showing it (and to its Socket.IO frame reaching the page), browser CPU as a share of one core, and
whether the thinking and the answer the page ends with are exact.

    python -m benchmarks.reasoning_bench --runs 3 --variants native,default
    python -m benchmarks.reasoning_bench --history   # issue 28: into a long chat with a full sidebar
    python -m benchmarks.reasoning_bench --quick    # a short smoke (no figures to trust)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from benchmarks import long_chat
from benchmarks.browser_bench import (
    VARIANTS,
    _browser_processes,
    _tree_cpu,
    markers,
    style_variant,
    variant_env,
)
from tests.chat_page import ChatPage, words
from tests.harness import CHROMIUM, CHROMIUM_ARGS, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens, serve, think_tokens

# Frames, and when the first thought is on the page and when its Socket.IO frame arrived.
PROBE = """
(() => {
  const b = window.__reasoning = {raf: 0, first: null, frame: null, done: null, rafFirst: null};
  const Socket = window.WebSocket;
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (b.frame === null && typeof e.data === 'string' && e.data.includes('t00000')) b.frame = Date.now();
      });
    }
  };
  new MutationObserver((_, observer) => {
    if (b.first === null && document.body && document.body.textContent.includes('t00000')) {
      b.first = Date.now(); b.rafFirst = b.raf; observer.disconnect();
    }
  }).observe(document, {subtree: true, childList: true, characterData: true});
  // the answer is complete when its newest message ends with the last word (no layout read)
  const sel = '[data-step-type="assistant_message"] .message-content';
  function tick() {
    b.raf += 1;
    if (b.first !== null && b.done === null) {
      const els = document.querySelectorAll(sel);
      if (els.length && els[els.length - 1].textContent.includes('END.')) {
        b.done = Date.now(); b.rafDone = b.raf;
      }
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""
UPDATES = ("stream_start", "stream_token", "new_message", "update_message", "update_step")


@dataclass
class Run:
    """One reply's figures."""

    variant: str
    think: int
    tokens: int
    rate: float
    exact_thinking: bool
    exact_answer: bool
    fps: float | None
    updates_per_s: float | None
    first_thought_ms: float | None
    first_thought_frame_ms: float | None
    browser_cpu_share: float | None
    history: bool = False  # into a resumed chat of 200 messages, 500 threads in the sidebar


def run_one(
    browser: Browser,
    server: ScriptedServer,
    variant: str,
    think: int,
    tokens: int,
    rate: float,
    history: bool = False,
) -> Run:
    """Stream one thinking reply and measure the page; with `history`, into benchmarks/long_chat's
    resumed chat of 200 messages, with 500 threads in the sidebar."""
    answer = "".join(script_tokens(tokens, "markdown"))
    with tempfile.TemporaryDirectory() as logs:
        thread = long_chat.seed(Path(logs) / "data") if history else None
        flags = ["--base-url", server.url, "--model", MODEL_ID, *VARIANTS[variant]]
        with running_app(*flags, env=variant_env(variant), log_dir=Path(logs)) as (url, _):
            login = (long_chat.USER, long_chat.PASSWORD) if history else None
            chat = ChatPage.open(browser, url, init_script=PROBE, login=login)
            try:
                style_variant(chat, variant)
                if thread is not None:
                    long_chat.resume(chat, url, thread)
                browsers = _browser_processes()
                cpu0, start = _tree_cpu(browsers), time.time()
                frames0 = len(chat.frames)
                chat.send(f"#script think={think} tokens={tokens} rate={rate:g} kind=markdown")
                chat.wait_turns(1, timeout=(think + tokens) / rate + 60)
                # The app is done; the page may still be behind (native Chainlit is): wait for it, bounded.
                chat.page.wait_for_function("() => window.__reasoning.done !== null", timeout=60_000)
                wall = time.time() - start
                cpu = _tree_cpu(browsers) - cpu0
                state = chat.page.evaluate("() => window.__reasoning")
                sent = server.think_starts[-1] * 1000
                seconds = (
                    (state["done"] - state["first"]) / 1000 if state["done"] and state["first"] else None
                )
                updates = sum(1 for _, name, _ in chat.frames[frames0:] if name in UPDATES)
                steps = chat.thinking()
                shown = " ".join(chat.replies())
                return Run(
                    variant=variant,
                    think=think,
                    tokens=tokens,
                    rate=rate,
                    exact_thinking=len(steps) == 1
                    and words(steps[0][1]) == words("".join(think_tokens(think))),
                    exact_answer=markers(shown) == markers(answer) and words(shown)[-1:] == ["END."],
                    fps=(state["rafDone"] - state["rafFirst"]) / seconds if seconds else None,
                    updates_per_s=updates / seconds if seconds else None,
                    first_thought_ms=None if state["first"] is None else state["first"] - sent,
                    first_thought_frame_ms=None if state["frame"] is None else state["frame"] - sent,
                    browser_cpu_share=cpu / wall if wall else None,
                    history=history,
                )
            finally:
                chat.close()


def _median(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.1f}" if known else "—"


def _spread(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{min(known):.0f} to {max(known):.0f}" if known else "—"


def table(runs: list[Run]) -> str:
    """Medians per variant, with the spread of the first-thought latency."""
    head = (
        "| variant | runs | exact thinking | exact answer | fps | page updates/s | first thought visible ms "
        "(spread) | its frame arrived ms | browser CPU |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for variant in dict.fromkeys(r.variant for r in runs):
        group = [r for r in runs if r.variant == variant]
        cpu = [r.browser_cpu_share for r in group]
        first = [r.first_thought_ms for r in group]
        known_cpu = [c for c in cpu if c is not None]
        rows.append(
            f"| {variant} | {len(group)} | {sum(r.exact_thinking for r in group)}/{len(group)} "
            f"| {sum(r.exact_answer for r in group)}/{len(group)} | {_median([r.fps for r in group])} "
            f"| {_median([r.updates_per_s for r in group])} "
            f"| {_median(first)} ({_spread(first)}) "
            f"| {_median([r.first_thought_frame_ms for r in group])} "
            f"| {statistics.median(known_cpu):.0%} |"
            if known_cpu
            else f"| {variant} | {len(group)} | — | — | — | — | — | — | — |"
        )
    return head + "\n".join(rows) + "\n"


def main() -> None:
    """Run the scenario per variant and print the table (JSON and markdown go to --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="native,default")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--think", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--quick", action="store_true", help="one short run per variant: a smoke test")
    parser.add_argument("--history", action="store_true", help="into a long chat with a full sidebar")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.think, args.tokens, args.rate = 1, 100, 100, 400
    runs: list[Run] = []
    with serve() as server, sync_playwright() as playwright:
        for variant in args.variants.split(","):
            for _ in range(args.runs):
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    run = run_one(browser, server, variant, args.think, args.tokens, args.rate, args.history)
                finally:
                    browser.close()
                runs.append(run)
                print(json.dumps(asdict(run)), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "reasoning_history" if args.history else "reasoning"
    (out / f"{name}.json").write_text(json.dumps([asdict(r) for r in runs], indent=2))
    text = table(runs)
    (out / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
