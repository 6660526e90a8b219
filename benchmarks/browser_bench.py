"""Browser benchmark: the real app in headless Chromium against the scripted model server.

Measures per reply: stream_token frames and bytes received, time from submit to first visible
text, lag from the server's last token to the complete text on the page, frames per second
(requestAnimationFrame), main-thread saturation (Long Animation Frames), CPU seconds (and the
browser's as a share of one core) and JS heap growth. A scenario `TOKENS@RATEx4` runs the page
with its CPU throttled 4x (Chrome DevTools Protocol), like a low-end laptop.

    python -m benchmarks.browser_bench --scenarios 5000@200,2000@100x4 --variants native,today,default
    python -m benchmarks.browser_bench --preset render   # issue 14's table, median of 3 runs
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from playwright.sync_api import Browser, CDPSession, sync_playwright

from benchmarks import long_chat
from tests.chat_page import REPLY, ChatPage, words
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
    # the product's defaults: capped batching + segments, paced by the page's render reports
    "default": [],
    # the defaults before render-aware pacing: the fixed cap and segment size for every page
    "today": ["--no-render-pacing"],
    # the defaults plus adaptive batching, per segment
    "default+adaptive": ["--adaptive-batching"],
    # the default without the live stats line
    "nostats": [],
    # the defaults before issue 28: Chainlit's smooth cursor pulse (PAGE_CSS)
    "previous": [],
}
EXTRA_ENV: dict[str, dict[str, str]] = {
    "nostats": {"SMART_AGENT_SHOW_STATS": "0"},
    "previous": {"SMART_AGENT_PAGE_HOLD": "0"},  # before issue 28, a silent page was sent to all the same
}


def variant_env(variant: str, **env: str) -> dict[str, str]:
    """The app's environment for a variant: a scripted model's key, `env`, then the variant's own."""
    return clean_env(OPENAI_API_KEY="bench", **{**env, **EXTRA_ENV.get(variant, {})})


# Style added to the page after smart-agent's own: Chainlit 2.12's streaming cursor animation.
PAGE_CSS: dict[str, str] = {
    "previous": ":root {--loading-cursor-animation: loading-cursor-pulse 2s cubic-bezier(.4,0,.6,1) infinite}"
}

# Records animation frames, Long Animation Frames and when the reply's text first shows, last
# changes and is complete; checked once per frame inside the page.
PAGE_PROBE = """
(() => {
  const b = window.__bench = {raf: 0, rafFirst: null, rafLast: null, loaf: [], longtasks: 0,
    needle: null, skip: 0, first: null, done: null, lastLen: 0, lastChange: null, inWindow: 0,
    prev: null, gaps: []};
  try {
    new PerformanceObserver(l => { for (const e of l.getEntries()) b.loaf.push([e.startTime, e.duration]); })
      .observe({type: 'long-animation-frame', buffered: true});
  } catch (e) {}
  try { new PerformanceObserver(l => { b.longtasks += l.getEntries().length; }).observe({type: 'longtask'}); }
  catch (e) {}
  const sel = '[data-step-type="assistant_message"] .message-content';
  function tick(t) {
    b.raf += 1;
    // frame gaps over 50 ms while the reply streams, as [start, length] on the page's clock
    if (b.first !== null && b.done === null && b.prev !== null && t - b.prev > 50)
      b.gaps.push([performance.timeOrigin + b.prev, t - b.prev]);
    b.prev = t;
    if (b.needle !== null && b.done === null) {
      // the reply may span several messages (segments): watch the newest one's markdown part
      const els = document.querySelectorAll(sel);
      // in a resumed chat the earlier replies are not this one's (b.skip: how many were there)
      let el = els.length > b.skip ? els[els.length - 1].firstElementChild : null;
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


# Issue 14's scenarios: fast bursts, a very long reply, a throttled page, browser CPU, heap.
PRESETS: dict[str, tuple[str, str]] = {
    "render": ("5000@2000,100000@2000,2000@100x4,5000@200x4,5000@200,10000@500", "native,today,default"),
    # issue 28's: a fresh chat, a long resumed chat with a full sidebar, bursts, a throttled long reply
    "users": ("5000@200,5000@200h,5000@2000,100000@2000x4", "native,previous,default"),
    # issue 28's first visible text after the model's first token: 20 short replies (p95), from a
    # model that answers at once (the page is still showing the user's message) and from one that
    # takes 500 ms to its first token, as real models do
    "first": ("200@200,200@200+500", "default"),
}
PRESET_RUNS = {"first": 20}


@dataclass
class Result:
    """One reply's figures."""

    variant: str
    tokens: int
    rate: float
    throttle: float
    completed: bool
    exact: bool
    frames: int
    text_updates: int
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
    browser_cpu_share: float | None
    heap_growth_mb: float | None
    history: bool = False  # into a resumed chat of 200 messages, 500 threads in the sidebar
    main_thread_ms_per_s: dict[str, float] | None = None  # script, recalcstyle, layout, task (all)
    frame_gaps_ms: list[float] | None = None  # every gap between frames over 50 ms while streaming
    # the page's first text after the model server sent the first text token (one machine's wall clock)
    first_text_after_model_ms: float | None = None
    loaf_p95_ms: float | None = None  # Long Animation Frames while streaming: p95 and longest
    loaf_max_ms: float | None = None
    dom_nodes: int | None = None  # elements on the page once the reply is complete
    heap_mb: float | None = None  # the page's JS heap after a full collection, reply complete
    first_delay_ms: float = 0.0  # the model's wait before its first token


def markers(text: str) -> list[str]:
    """The block markers of a scripted markdown reply, in order."""
    return re.findall(r"m\d{5}", text)


def style_variant(chat: ChatPage, variant: str) -> None:
    """Give the page the variant's own style, if it has one (`PAGE_CSS`)."""
    if variant in PAGE_CSS:
        chat.page.add_style_tag(content=PAGE_CSS[variant])


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


def _text_updates(chat: ChatPage) -> int:
    """Events that changed the reply's text on the page: stream events and segments' final messages."""
    reply = [
        p
        for event in ("stream_start", "new_message")
        for p in chat.payloads(event)
        if p.get("type") == "assistant_message" and p.get("name") != "stats"
    ]
    return chat.count("stream_token") + len(reply)


def _heap_mb(cdp: CDPSession) -> float:
    """The page's JS heap in use after a full garbage collection, in MB."""
    cdp.send("HeapProfiler.collectGarbage")
    return float(cdp.send("Runtime.getHeapUsage")["usedSize"]) / 1e6


MAIN_THREAD = ("ScriptDuration", "RecalcStyleDuration", "LayoutDuration", "TaskDuration")
"""The renderer main thread's busy time by kind (the DevTools Protocol's Performance metrics)."""


def _main_thread(cdp: CDPSession) -> dict[str, float]:
    """Seconds of the page's main thread spent so far, by kind."""
    found = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {name: float(found.get(name, 0.0)) for name in MAIN_THREAD}


def run_one(
    browser: Browser,
    server: ScriptedServer,
    variant: str,
    tokens: int,
    rate: float,
    log_dir: Path,
    throttle: float = 1.0,
    history: bool = False,
    first_delay_ms: float = 0.0,
) -> Result:
    """Stream one reply of `tokens` tokens at `rate` tok/s to a page throttled `throttle`x and measure it;
    with `history`, into a resumed chat of 200 messages, with 500 threads in the sidebar."""
    # The figures in the README were measured with the live stats line on (its default until issue
    # 24): every variant keeps it but "nostats".
    env = variant_env(variant, SMART_AGENT_SHOW_STATS="1")
    flags = ["--base-url", server.url, "--model", MODEL_ID, *VARIANTS[variant]]
    expected = "".join(script_tokens(tokens, "markdown"))
    thread = long_chat.seed(log_dir / "data") if history else None
    with running_app(*flags, env=env, log_dir=log_dir) as (url, app):
        app_proc = psutil.Process(app.pid)
        login = (long_chat.USER, long_chat.PASSWORD) if history else None
        chat = ChatPage.open(browser, url, init_script=PAGE_PROBE, login=login)
        try:
            style_variant(chat, variant)
            if thread is not None:
                long_chat.resume(chat, url, thread)
            needle = expected.split()[-1]
            chat.page.evaluate(
                """([n, sel]) => {
                    window.__bench.skip = document.querySelectorAll(sel).length;
                    window.__bench.needle = n;
                }""",
                [needle, REPLY],
            )
            cdp = chat.page.context.new_cdp_session(chat.page)
            heap0 = _heap_mb(cdp)
            cdp.send("Performance.enable")
            main0 = _main_thread(cdp)
            if throttle != 1:
                cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
            browsers = _browser_processes()
            cpu0 = (_tree_cpu(browsers), _tree_cpu([app_proc]))
            ends_before, starts_before = len(server.stream_ends), len(server.text_starts)
            submitted = time.time()
            chat.send(
                f"#script tokens={tokens} rate={rate:g} kind=markdown first_delay={first_delay_ms / 1000:g}"
            )
            duration = tokens / rate + first_delay_ms / 1000
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
            main1 = _main_thread(cdp)
            state = chat.page.evaluate("() => window.__bench")
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
            heap1 = _heap_mb(cdp) if state["done"] is not None else None
            shown = " ".join(chat.replies())
            server_end = server.stream_ends[-1] if len(server.stream_ends) > ends_before else None
            server_start = (
                server.text_starts[starts_before] if len(server.text_starts) > starts_before else None
            )
            first, done = state["first"], state["done"]
            fps = loaf = None
            durations: list[float] = []
            window_end = done or state["lastChange"]
            if first is not None and window_end is not None and window_end > first:
                span = (window_end - first) / 1000
                fps = ((state["rafLast"] or state["raf"]) - state["rafFirst"]) / span
                origin = chat.page.evaluate("performance.timeOrigin")
                durations = sorted(d for start, d in state["loaf"] if first <= origin + start <= window_end)
                loaf = sum(durations) / span
            return Result(
                variant=variant,
                tokens=tokens,
                rate=rate,
                throttle=throttle,
                completed=done is not None,
                exact=markers(shown) == markers(expected) and words(shown)[-1:] == ["END."],
                frames=chat.count("stream_token"),
                text_updates=_text_updates(chat),
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
                browser_cpu_share=(cpu1[0] - cpu0[0]) / wall if wall > 0 else None,
                heap_growth_mb=None if heap1 is None else heap1 - heap0,
                history=history,
                frame_gaps_ms=[round(length, 1) for _, length in state["gaps"]],
                first_text_after_model_ms=None
                if first is None or server_start is None
                else first - server_start * 1000,
                loaf_p95_ms=_p95(durations) if durations else 0.0,
                loaf_max_ms=durations[-1] if durations else 0.0,
                dom_nodes=int(chat.page.evaluate("document.getElementsByTagName('*').length")),
                heap_mb=heap1,
                first_delay_ms=first_delay_ms,
                main_thread_ms_per_s={
                    name.removesuffix("Duration").lower(): 1000 * (main1[name] - main0[name]) / wall
                    for name in MAIN_THREAD
                },
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


def scenario_label(r: Result) -> str:
    """e.g. `5000 tok @ 200/s, 4x CPU`."""
    throttled = f", {r.throttle:g}x CPU" if r.throttle != 1 else ""
    waits = f", first token after {r.first_delay_ms:g} ms" if r.first_delay_ms else ""
    return f"{r.tokens} tok @ {r.rate:g}/s{throttled}{waits}" + (", long chat" if r.history else "")


def markdown_table(results: list[Result]) -> str:
    """The results as a markdown table, one row per run."""
    head = (
        "| scenario | variant | complete | exact | frames | KB | first text ms | tail lag ms | fps "
        "| LoAF ms/s | browser CPU s | browser CPU share | heap growth MB | app CPU s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = [
        f"| {scenario_label(r)} | {r.variant} | {_fmt(r.completed)} "
        f"({r.shown_fraction:.0%}) | {_fmt(r.exact)} | {r.frames} | {r.frame_bytes / 1024:.0f} "
        f"| {_fmt(r.ttft_ms)} | {_fmt(r.tail_lag_ms)} | {_fmt(r.fps, 1)} | {_fmt(r.loaf_ms_per_s)} "
        f"| {r.browser_cpu_s:.1f} | {_share(r.browser_cpu_share)} | {_fmt(r.heap_growth_mb, 1)} "
        f"| {r.app_cpu_s:.1f} |"
        for r in results
    ]
    return head + "\n".join(rows) + "\n"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if len(known) == len(values) and known else None


def median_table(results: list[Result]) -> str:
    """Median per scenario and variant over the repeated runs (a run that never completed has no lag)."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((scenario_label(r), r.variant), []).append(r)
    head = (
        "| scenario | variant | runs | complete | exact | fps | tail lag ms | LoAF ms/s | browser CPU share "
        "| heap growth MB | text updates/s | first text after the model's, ms, median / p95 |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for (label, variant), runs in groups.items():
        complete = sum(r.completed for r in runs)
        exact = sum(r.exact for r in runs)
        rates = [r.text_updates / r.wall_s if r.wall_s else None for r in runs]
        rows.append(
            f"| {label} | {variant} | {len(runs)} | {complete}/{len(runs)} | {exact}/{len(runs)} "
            f"| {_fmt(_median([r.fps for r in runs]), 1)} | {_fmt(_median([r.tail_lag_ms for r in runs]))} "
            f"| {_fmt(_median([r.loaf_ms_per_s for r in runs]))} "
            f"| {_share(_median([r.browser_cpu_share for r in runs]))} "
            f"| {_fmt(_median([r.heap_growth_mb for r in runs]), 1)} | {_fmt(_median(rates), 1)} "
            f"| {_after_model([r.first_text_after_model_ms for r in runs])} |"
        )
    return head + "\n".join(rows) + "\n"


def _after_model(values: list[float | None]) -> str:
    """Median and p95 of the first text's delay after the model's first token."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return "—"
    return f"{statistics.median(known):.0f} / {_p95(known):.0f}"


def _p95(ordered: list[float]) -> float:
    """The 95th percentile of sorted, non-empty values (nearest rank below)."""
    return ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    """Run the scenarios by variants and write JSON and markdown into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios",
        default="500@100,5000@200,5000@2000,20000@500,50000@1000",
        help="comma-separated TOKENS@RATE, TOKENS@RATExN for a page whose CPU is throttled N times; "
        "a trailing h: into a resumed chat of 200 messages with 500 threads in the sidebar; a trailing "
        "+MS: the model waits MS milliseconds before its first token",
    )
    parser.add_argument("--variants", default="native,plain,capped,adaptive,default,default+adaptive")
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario and variant")
    parser.add_argument("--native-repeat", type=int, default=1, help="runs of the native variant")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a named set of scenarios and variants")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    scenarios, variants, repeat, name = args.scenarios, args.variants, args.repeat, "results"
    if args.preset:
        scenarios, variants = PRESETS[args.preset]
        repeat, name = max(repeat, PRESET_RUNS.get(args.preset, 3)), args.preset
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    with serve() as server, sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        for scenario in scenarios.split(","):
            tokens, _, rest = scenario.partition("@")
            rest, _, wait = rest.partition("+")  # +MS: the model's wait before its first token
            history = rest.endswith("h")  # into a long resumed chat, with a full sidebar
            rate, _, throttle = rest.removesuffix("h").partition("x")
            for variant in variants.split(","):
                for _ in range(args.native_repeat if variant == "native" else repeat):
                    # A fresh browser and data folder per run: no run inherits another's memory,
                    # processes or chat history (each thread in the sidebar costs every update).
                    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    run_dir = Path(logs) / f"run-{len(results)}"
                    run_dir.mkdir()
                    try:
                        result = run_one(
                            browser,
                            server,
                            variant,
                            int(tokens),
                            float(rate),
                            run_dir,
                            float(throttle or 1),
                            history,
                            float(wait or 0),
                        )
                    finally:
                        browser.close()
                    results.append(result)
                    print(json.dumps(asdict(result)), flush=True)
    (out / f"{name}.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    table = markdown_table(results)
    if repeat > 1:
        table = median_table(results) + "\nEvery run:\n\n" + table
    (out / f"{name}.md").write_text(table)
    chart(results, out / f"{name}.png")
    print(table)


def chart(results: list[Result], path: Path) -> None:
    """Frames per second, tail lag and browser CPU per scenario and variant (medians), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(scenario_label(r) for r in results))
    variants = list(dict.fromkeys(r.variant for r in results))
    figure, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    fps_axis, lag_axis, cpu_axis = axes
    width = 0.8 / len(variants)
    for n, variant in enumerate(variants):
        runs: dict[str, list[Result]] = {}
        for r in results:
            if r.variant == variant:
                runs.setdefault(scenario_label(r), []).append(r)
        xs = [i + n * width for i in range(len(scenarios))]

        def median(label: str, figure_of: Any, never: float, runs: dict[str, list[Result]] = runs) -> float:
            values = [figure_of(r) for r in runs.get(label, [])]
            return float(statistics.median([never if v is None else v for v in values])) if values else 0.0

        fps_axis.bar(xs, [median(s, lambda r: r.fps, 0.0) for s in scenarios], width, label=variant)
        lags = [max(1.0, median(s, lambda r: r.tail_lag_ms, 120_000.0)) for s in scenarios]
        lag_axis.bar(xs, lags, width, label=variant)
        shares = [100 * median(s, lambda r: r.browser_cpu_share, 0.0) for s in scenarios]
        cpu_axis.bar(xs, shares, width, label=variant)
    for axis in axes:
        ticks = [i + 0.4 - width / 2 for i in range(len(scenarios))]
        axis.set_xticks(ticks, scenarios, fontsize=7, rotation=20)
    fps_axis.set_ylabel("frames per second while streaming (higher is better)")
    lag_axis.set_ylabel("ms from last server token to full text (log; never = 120 s)")
    lag_axis.set_yscale("log")
    cpu_axis.set_ylabel("browser CPU, % of one core (lower is better)")
    fps_axis.legend(fontsize=8)
    figure.suptitle("smart-agent in headless Chromium (2 cores), median of the runs")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
