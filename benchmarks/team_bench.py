"""Team benchmark: N members streaming at once into the real app in headless Chromium, then the
synthesis, with the page-wide budget shared by the members' streams and without it (each stream
capped on its own).

Per run: stream events per second the page received while the members wrote (and in its busiest
second), frames per second then and during the synthesis, and the lag from the server's last
member token to the page's last member event.

    python -m benchmarks.team_bench --members 2,4,8 --tokens 1000 --rate 200
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from tests.chat_page import ChatPage
from tests.harness import CHROMIUM, CHROMIUM_ARGS, clean_env, running_app
from tests.scripted_server import MODEL_ID, ScriptedServer, serve

FRAME_PROBE = """
(() => {
  const b = window.__frames = [];
  function tick(t) { b.push(performance.timeOrigin + t); requestAnimationFrame(tick); }
  requestAnimationFrame(tick);
})();
"""
VARIANTS = {"shared": "1", "per-stream": "0"}


@dataclass
class TeamResult:
    """One team turn's figures."""

    members: int
    tokens: int
    rate: float
    variant: str
    member_events_per_s: float
    busiest_second: int
    members_fps: float
    synthesis_fps: float | None
    member_lag_ms: float | None
    wall_s: float


def team_file(folder: Path, members: int) -> Path:
    """A team of `members` scripted members and a scripted synthesiser."""
    names = [f"m{i}" for i in range(members)]
    text = "".join(f'[[members]]\nname = "{n}"\nprompt = "#member {n}"\n\n' for n in names)
    path = folder / f"team-{members}.toml"
    path.write_text(text + '[synthesiser]\nprompt = "#member synth"\n')
    return path


def _fps(frames: list[float], start: float, end: float, offset: float) -> float:
    inside = [f for f in frames if start + offset <= f / 1000 <= end + offset]
    return len(inside) / max(end - start, 1e-9)


def run_one(
    browser: Browser, server: ScriptedServer, members: int, tokens: int, rate: float, variant: str, logs: Path
) -> TeamResult:
    """One team turn of `members` members, each `tokens` tokens at `rate` tok/s, then the synthesis."""
    env = clean_env(OPENAI_API_KEY="bench", SMART_AGENT_TEAM_SHARED_BUDGET=VARIANTS[variant])
    flags = ["--base-url", server.url, "--model", MODEL_ID, "--profile", "team"]
    flags += ["--team-config", str(team_file(logs, members))]
    with running_app(*flags, env=env, log_dir=logs) as (url, _):
        chat = ChatPage.open(browser, url, init_script=FRAME_PROBE)
        try:
            first_span = len(server.spans)
            started = time.monotonic()
            chat.send(f"#script tokens={tokens} rate={rate:g}")
            chat.wait_turns(1, timeout=tokens / rate * 2 + 120)
            wall = time.monotonic() - started
            frames = chat.page.evaluate("() => window.__frames")
            offset = time.time() - time.monotonic()
        finally:
            chat.close()
    stream = [(t, raw) for t, name, raw in chat.frames if name in {"stream_start", "stream_token"}]
    answer = [t for t, raw in stream if "synth-" in raw]
    member_times = [t for t, raw in stream if "synth-" not in raw and (not answer or t < answer[0])]
    start, end = member_times[0], member_times[-1]
    busiest = max(sum(1 for u in member_times[i:] if u < t + 1.0) for i, t in enumerate(member_times))
    spans = [s for s in server.spans[first_span:] if s.member != "synth" and s.end is not None]
    last_token = max((s.end for s in spans if s.end is not None), default=None)
    return TeamResult(
        members=members,
        tokens=tokens,
        rate=rate,
        variant=variant,
        member_events_per_s=len(member_times) / max(end - start, 1e-9),
        busiest_second=busiest,
        members_fps=_fps(frames, start, end, offset),
        synthesis_fps=_fps(frames, answer[0], answer[-1], offset) if len(answer) > 1 else None,
        member_lag_ms=None if last_token is None else (end - last_token) * 1000,
        wall_s=wall,
    )


def markdown_table(results: list[TeamResult]) -> str:
    """The results as a markdown table."""
    head = (
        "| members x tokens @ rate | budget | member events/s | busiest second | fps (members) "
        "| fps (synthesis) | member lag ms |\n|---|---|---|---|---|---|---|\n"
    )
    rows = [
        f"| {r.members} x {r.tokens} @ {r.rate:g}/s | {r.variant} | {r.member_events_per_s:.1f} "
        f"| {r.busiest_second} | {r.members_fps:.1f} | "
        f"{'—' if r.synthesis_fps is None else f'{r.synthesis_fps:.1f}'} | "
        f"{'—' if r.member_lag_ms is None else f'{r.member_lag_ms:.0f}'} |"
        for r in results
    ]
    return head + "\n".join(rows) + "\n"


def main() -> None:
    """Run every team size with each budget variant; write JSON and markdown into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="2,3,4,8")
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[TeamResult] = []
    with serve() as server, sync_playwright() as playwright, tempfile.TemporaryDirectory() as logs:
        for members in (int(m) for m in args.members.split(",")):
            for variant in args.variants.split(","):
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    result = run_one(browser, server, members, args.tokens, args.rate, variant, Path(logs))
                finally:
                    browser.close()
                results.append(result)
                print(json.dumps(asdict(result)), flush=True)
    (out / "team.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    table = markdown_table(results)
    (out / "team.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
