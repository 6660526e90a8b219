"""Browser benchmark: the real app in headless Chromium against the scripted model server.

Measures per reply: stream_token frames and bytes received, time from submit to first visible
text, lag from the server's last token to the complete text on the page, frames per second
(requestAnimationFrame), main-thread saturation (Long Animation Frames), and CPU seconds.

    python -m benchmarks.browser_bench --scenarios 5000@200 --variants batched,plain,native
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import Browser, sync_playwright

from tests.chat_page import ChatPage, words
from tests.harness import CHROMIUM, CHROMIUM_ARGS, clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, script_tokens, serve

VARIANTS: dict[str, list[str]] = {
    # native Chainlit: one event per token, one growing message
    "native": ["--no-stream-batching", "--segment-chars", "0"],
    # the seed's plain policy: flush every 20 tokens or 100 ms, no cap on the event rate
    "plain": ["--max-events-per-second", "1000000", "--segment-chars", "0"],
    # batching with the event-rate cap (20 events/s), one growing message
    "capped": ["--segment-chars", "0"],
    # capped + adaptive interval, one growing message
    "adaptive": ["--adaptive-batching", "--segment-chars", "0"],
    # the product's defaults: capped batching + segmented streaming
    "default": [],
    # the defaults plus adaptive batching, per segment
    "default+adaptive": ["--adaptive-batching"],
    # the default without the live stats line
    "nostats": [],
}
EXTRA_ENV: dict[str, dict[str, str]] = {"nostats": {"SMART_AGENT_SHOW_STATS": "0"}}

# Records animation frames, Long Animation Frames and when the reply's text first shows, last
# changes and is complete; checked once per frame inside the page.
PAGE_PROBE = """
(() => {
  const b = window.__bench = {raf: 0, rafFirst: null, rafLast: null, loaf: [], longtasks: 0,
    needle: null, first: null, done: null, lastLen: 0, lastChange: null, inWindow: 0};
  try {
    new PerformanceObserver(l => { for (const e of l.getEntries()) b.loaf.push([e.startTime, e.duration]); })
      .observe({type: 'long-animation-frame', buffered: true});
  } catch (e) {}
  try { new PerformanceObserver(l => { b.longtasks += l.getEntries().length; }).observe({type: 'longtask'}); }
  catch (e) {}
  const sel = '[data-step-type="assistant_message"] .message-content';
  function tick(t) {
    b.raf += 1;
    if (b.needle !== null && b.done === null) {
      // the reply may span several messages (segments): watch the newest one's markdown part
      const els = document.querySelectorAll(sel);
      let el = els.length ? els[els.length - 1].firstElementChild : null;
      // smart-agent's live stats line is a message of its own, above the reply: not reply text
      if (el && /^(Streaming ·|Waiting for the model)/.test(el.textContent)) el = null;
      if (el) {
        const text = el.textContent;
        const now = performance.timeOrigin + t;
        const size = els.length * 1e9 + text.length;
        if (b.first === null && text.length > 0) { b.first = now; b.rafFirst = b.raf; }
        if (size !== b.lastLen) { b.lastLen = size; b.lastChange = now; }
        if (text.trimEnd().endsWith(b.needle)) { b.done = now; b.rafLast = b.raf; }
      }
    }
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);
})();
"""


@dataclass
class Result:
    """One reply's figures."""

    variant: str
    tokens: int
    rate: float
    completed: bool
    exact: bool
    frames: int
    frame_bytes: int
    ttft_ms: float | None
    tail_lag_ms: float | None
    fps: float | None
    loaf_ms_per_s: float | None
    long_tasks: int
    shown_fraction: float
    browser_cpu_s: float
    app_cpu_s: float
    wall_s: float


def markers(text: str) -> list[str]:
    """The block markers of a scripted markdown reply, in order."""
    return re.findall(r"m\d{5}", text)


def _tree_cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def _browser_processes() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]


def run_one(
    browser: Browser, server: ScriptedServer, variant: str, tokens: int, rate: float, log_dir: Path
) -> Result:
    """Stream one reply of `tokens` tokens at `rate` tok/s and measure it."""
    env = clean_env(OPENAI_API_KEY="bench", **EXTRA_ENV.get(variant, {}))
    flags = ["--base-url", server.url, "--model", MODEL_ID, *VARIANTS[variant]]
    expected = "".join(script_tokens(tokens, "markdown"))
    with running_app(*flags, env=env, log_dir=log_dir) as (url, app):
        app_proc = psutil.Process(app.pid)
        chat = ChatPage.open(browser, url, init_script=PAGE_PROBE)
        try:
            needle = expected.split()[-1]
            chat.page.evaluate("n => { window.__bench.needle = n; }", needle)
            browsers = _browser_processes()
            cpu0 = (_tree_cpu(browsers), _tree_cpu([app_proc]))
            ends_before = len(server.stream_ends)
            submitted = time.time()
            chat.send(f"#script tokens={tokens} rate={rate:g} kind=markdown")
            duration = tokens / rate
            deadline = time.monotonic() + duration + 45
            stalled_for = 0.0
            while True:
                time.sleep(0.5)  # the benchmark's own sampling period; the page checks per frame
                state = chat.page.evaluate("() => window.__bench")
                if state["done"] is not None:
                    break
                if len(server.stream_ends) > ends_before and state["lastChange"] is not None:
                    stalled_for = time.time() - state["lastChange"] / 1000
                    if stalled_for > 10:
                        break  # the page stopped updating after the server finished
                if time.monotonic() > deadline:
                    break
            wall = time.time() - submitted
            cpu1 = (_tree_cpu(browsers), _tree_cpu([app_proc]))
            state = chat.page.evaluate("() => window.__bench")
            shown = " ".join(chat.replies())
            server_end = server.stream_ends[-1] if len(server.stream_ends) > ends_before else None
            first, done = state["first"], state["done"]
            fps = loaf = None
            window_end = done or state["lastChange"]
            if first is not None and window_end is not None and window_end > first:
                span = (window_end - first) / 1000
                fps = ((state["rafLast"] or state["raf"]) - state["rafFirst"]) / span
                origin = chat.page.evaluate("performance.timeOrigin")
                busy = sum(d for start, d in state["loaf"] if first <= origin + start <= window_end)
                loaf = busy / span
            return Result(
                variant=variant,
                tokens=tokens,
                rate=rate,
                completed=done is not None,
                exact=markers(shown) == markers(expected) and words(shown)[-1:] == ["END."],
                frames=chat.count("stream_token"),
                frame_bytes=sum(len(raw) for _, name, raw in chat.frames if name == "stream_token"),
                ttft_ms=None if first is None else first - submitted * 1000,
                tail_lag_ms=None if done is None or server_end is None else done - server_end * 1000,
                fps=fps,
                loaf_ms_per_s=loaf,
                long_tasks=state["longtasks"],
                shown_fraction=len(markers(shown)) / max(1, len(markers(expected))),
                browser_cpu_s=cpu1[0] - cpu0[0],
                app_cpu_s=cpu1[1] - cpu0[1],
                wall_s=wall,
            )
        finally:
            chat.close()


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(results: list[Result]) -> str:
    """The results as a markdown table."""
    head = (
        "| scenario | variant | complete | exact | frames | KB | first text ms | tail lag ms | fps "
        "| LoAF ms/s | browser CPU s | app CPU s |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = [
        f"| {r.tokens} tok @ {r.rate:g}/s | {r.variant} | {_fmt(r.completed)} "
        f"({r.shown_fraction:.0%}) | {_fmt(r.exact)} | {r.frames} | {r.frame_bytes / 1024:.0f} "
        f"| {_fmt(r.ttft_ms)} | {_fmt(r.tail_lag_ms)} | {_fmt(r.fps, 1)} | {_fmt(r.loaf_ms_per_s)} "
        f"| {r.browser_cpu_s:.1f} | {r.app_cpu_s:.1f} |"
        for r in results
    ]
    return head + "\n".join(rows) + "\n"


def main() -> None:
    """Run the scenarios by variants and write JSON and markdown into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios",
        default="500@100,5000@200,5000@2000,20000@500,50000@1000",
        help="comma-separated TOKENS@RATE",
    )
    parser.add_argument("--variants", default="native,plain,capped,adaptive,default,default+adaptive")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario and variant")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    with serve() as server, sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        for scenario in args.scenarios.split(","):
            tokens, rate = scenario.split("@")
            for variant in args.variants.split(","):
                for _ in range(args.repeat):
                    # a fresh browser per run: no run inherits another's memory or processes
                    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    try:
                        result = run_one(browser, server, variant, int(tokens), float(rate), Path(logs))
                    finally:
                        browser.close()
                    results.append(result)
                    print(json.dumps(asdict(result)), flush=True)
    (out / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    table = markdown_table(results)
    (out / "results.md").write_text(table)
    chart(results, out / "results.png")
    print(table)


def chart(results: list[Result], path: Path) -> None:
    """Frames per second and tail lag per scenario and variant, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(f"{r.tokens} @ {r.rate:g}/s" for r in results))
    variants = list(dict.fromkeys(r.variant for r in results))
    figure, (fps_axis, lag_axis) = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(variants)
    for n, variant in enumerate(variants):
        rows = {f"{r.tokens} @ {r.rate:g}/s": r for r in results if r.variant == variant}
        xs = [i + n * width for i in range(len(scenarios))]
        fps_axis.bar(xs, [(rows[s].fps or 0) if s in rows else 0 for s in scenarios], width, label=variant)
        lag_axis.bar(
            xs,
            [max(1.0, rows[s].tail_lag_ms or 120_000.0) if s in rows else 0 for s in scenarios],
            width,
            label=variant,
        )
    for axis in (fps_axis, lag_axis):
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(scenarios))], scenarios, fontsize=8)
    fps_axis.set_ylabel("frames per second while streaming (higher is better)")
    lag_axis.set_ylabel("ms from last server token to full text (log; never = 120 s)")
    lag_axis.set_yscale("log")
    fps_axis.legend(fontsize=8)
    figure.suptitle("smart-agent in headless Chromium (2 cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
